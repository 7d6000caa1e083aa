using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Capstan.Server.ControlPlane;

/// <summary>
/// Log subresources, like a pod's: plain text, chunked, each line flushed as it is written.
/// <c>GET /api/v1/namespaces/{ns}/trainjobs/{name}/log?follow=true</c> reads every attempt and with follow ends when the
/// job reaches a terminal phase; <c>…/inferenceservices/{name}/log</c> reads the service's current server process and
/// with follow ends when that process exits.
/// </summary>
public static class ResourceLogApi
{
    public static IEndpointRouteBuilder MapResourceLogApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/namespaces/{namespace}/trainjobs/{name}/log", StreamJobAsync)
            .WithName("ReadTrainJobLog")
            .WithTags("Resources")
            .Produces<string>(StatusCodes.Status200OK, "text/plain")
            .ProducesProblem(StatusCodes.Status404NotFound);
        app.MapGet("/api/v1/namespaces/{namespace}/inferenceservices/{name}/log", StreamServiceAsync)
            .WithName("ReadInferenceServiceLog")
            .WithTags("Resources")
            .Produces<string>(StatusCodes.Status200OK, "text/plain")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static Task StreamJobAsync(HttpContext context, string @namespace, string name, bool? follow, [FromServices] IResourceStore resources, [FromServices] IWorkloadRuntime runtime) =>
        StreamAsync(context, TrainJobLogs.ReadAsync(resources, runtime, @namespace, name, follow == true, cancellationToken: context.RequestAborted));

    private static async Task StreamServiceAsync(HttpContext context, string @namespace, string name, bool? follow, [FromServices] IResourceStore resources, [FromServices] IWorkloadRuntime runtime)
    {
        var service = await resources.GetAsync<InferenceService>(@namespace, name, context.RequestAborted);
        var lines = service.Status?.WorkloadId is { } workloadId
            ? runtime.ReadLogsAsync(workloadId, follow == true, context.RequestAborted)
            : AsyncEnumerable.Empty<string>();
        await StreamAsync(context, lines);
    }

    private static async Task StreamAsync(HttpContext context, IAsyncEnumerable<string> source)
    {
        var cancellationToken = context.RequestAborted;
        await using var lines = source.GetAsyncEnumerator(cancellationToken);

        // The first line (or the job's absence) decides the status code: a missing job is a 404, not an empty 200.
        var any = await lines.MoveNextAsync();
        context.Response.ContentType = "text/plain; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        await context.Response.StartAsync(cancellationToken);
        while (any)
        {
            await context.Response.WriteAsync(lines.Current + "\n", cancellationToken);
            await context.Response.Body.FlushAsync(cancellationToken);
            any = await lines.MoveNextAsync();
        }
    }
}
