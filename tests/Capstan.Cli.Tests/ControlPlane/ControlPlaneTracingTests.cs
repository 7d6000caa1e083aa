using Capstan.Core.ControlPlane;
using Capstan.Core.Observability;
using Capstan.Core.Resources;
using Capstan.Server;
using Capstan.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Capstan.Cli.Tests.ControlPlane;

/// <summary><c>capstan server</c>'s traces to a collector on loopback: API requests in the caller's trace, and reconcile passes.</summary>
public sealed class ControlPlaneTracingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Traces_ApiRequestsContinueTheCallersTraceAndEveryReconcilePassIsASpan()
    {
        using var home = new TempHome();
        await using var collector = await OtlpCollector.StartAsync();
        var tracing = new TracingSettings { Endpoint = collector.HttpEndpoint, ExportDelay = TimeSpan.FromMilliseconds(50) };
        await using var app = await CapstanServer.BuildAsync(new ServerOptions { Host = "127.0.0.1", Port = 0, Home = home.Root, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning, Tracing = tracing }, Ct);
        await app.StartAsync(Ct);
        var resources = app.Services.GetRequiredService<IResourceStore>();
        await HelloJob.RunAsync(resources, Ct);

        // An MLflow client's call with a traceparent (as an instrumented training script sends it).
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=hello");
        request.Headers.Add("traceparent", "00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01");
        using (var response = await http.SendAsync(request, Ct))
        {
            response.EnsureSuccessStatusCode();
        }

        await http.GetStringAsync("/metrics", Ct);
        var api = await collector.WaitForAsync(s => s.TraceId == "5bd66ef5095369c7b0d1f8f4bd33716a", TimeSpan.FromSeconds(20), Ct);
        Assert.Equal("c532cb4098ac3dd2", api.ParentSpanId);
        Assert.Equal("capstan-server", api.Resource["service.name"].StringValue);
        Assert.Equal(200, api.Attribute("http.response.status_code")?.IntValue);

        var reconcile = await collector.WaitForAsync(
            s => s.Span.Name == "reconcile TrainJob" && s.Attribute("capstan.key")?.StringValue == "default/hello" && s.Attribute("capstan.result") is not null,
            TimeSpan.FromSeconds(20),
            Ct);
        Assert.Empty(reconcile.ParentSpanId);
        Assert.DoesNotContain(collector.Spans, s => s.Attribute("url.path")?.StringValue is "/metrics" or "/v1/traces");
    }
}
