using Capstan.Core.Storage;
using Capstan.Core.Tracking;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Capstan.Server.Health;

/// <summary>Liveness (<c>/healthz</c>: the process answers) and readiness (<c>/readyz</c>: the store answers).</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Text("ok")).WithName("Healthz").WithTags("Health");
        app.MapGet("/readyz", ReadyAsync).WithName("Readyz").WithTags("Health");
        return app;
    }

    private static async Task<IResult> ReadyAsync(IMetadataStore store, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        try
        {
            await store.SearchExperimentsAsync(new ExperimentSearch(MaxResults: 1), cancellationToken);
            return TypedResults.Text("ready");
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            Log.NotReady(loggers.CreateLogger(typeof(HealthApi)), exception);
            return TypedResults.Text("metadata store not ready", statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }
}
