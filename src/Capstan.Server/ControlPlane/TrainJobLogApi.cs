using Capstan.Core.ControlPlane;
using Capstan.Core.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace Capstan.Server.ControlPlane;

/// <summary>
/// <c>GET /api/v1/namespaces/{ns}/trainjobs/{name}/log?follow=true</c>, like a pod's log subresource: plain text,
/// chunked, each line flushed as it is written; with follow it ends when the job reaches a terminal phase.
/// </summary>
public static class TrainJobLogApi
{
    public static IEndpointRouteBuilder MapTrainJobLogApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/namespaces/{namespace}/trainjobs/{name}/log", StreamAsync)
            .WithName("ReadTrainJobLog")
            .WithTags("Resources")
            .Produces<string>(StatusCodes.Status200OK, "text/plain")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task StreamAsync(HttpContext context, string @namespace, string name, bool? follow, [FromServices] IResourceStore resources, [FromServices] IWorkloadRuntime runtime)
    {
        var cancellationToken = context.RequestAborted;
        await using var lines = TrainJobLogs.ReadAsync(resources, runtime, @namespace, name, follow == true, cancellationToken: cancellationToken).GetAsyncEnumerator(cancellationToken);

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
