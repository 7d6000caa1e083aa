using System.Globalization;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Server;
using Capstan.Server.Dashboard;
using Capstan.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Capstan.Cli.Tests.ControlPlane;

/// <summary>
/// The control plane's own /metrics, read by a real Prometheus: reconcile passes and their time by kind, the work
/// queues, objects by phase and HTTP requests by endpoint, after a TrainJob ran as a real child process.
/// </summary>
public sealed class ControlPlaneMetricsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static double Value(IEnumerable<PrometheusSample> samples, string name, params (string Label, string Value)[] labels) =>
        samples.Where(s => s.Name == name && labels.All(l => s.Labels.GetValueOrDefault(l.Label) == l.Value)).Sum(s => s.Value);

    [Fact]
    public async Task Metrics_AfterATrainJobSucceeds_ReconcilesPhasesAndRequestsAreCountedAndPrometheusScrapesThem()
    {
        using var home = new TempHome();
        await using var app = await CapstanServer.BuildAsync(new ServerOptions { Host = "127.0.0.1", Port = 0, Home = home.Root, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning }, Ct);
        await app.StartAsync(Ct);
        var resources = app.Services.GetRequiredService<IResourceStore>();
        await HelloJob.RunAsync(resources, Ct);
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };

        Assert.Contains("hello", await http.GetStringAsync("/api/v1/namespaces/default/trainjobs/hello", Ct), StringComparison.Ordinal);
        var text = await http.GetStringAsync("/metrics", Ct);
        var samples = PrometheusText.Parse(text).ToList();
        Assert.True(Value(samples, "capstan_reconcile_total", ("kind", "TrainJob"), ("result", "success")) + Value(samples, "capstan_reconcile_total", ("kind", "TrainJob"), ("result", "requeue_after")) >= 2, text);
        Assert.True(Value(samples, "capstan_reconcile_duration_seconds_count", ("kind", "TrainJob")) >= 2, text);
        Assert.Equal(1, Value(samples, "capstan_resources", ("kind", "TrainJob"), ("phase", "Succeeded")));
        Assert.Equal(0, Value(samples, "capstan_resources", ("kind", "TrainJob"), ("phase", "Running")));
        Assert.Equal(0, Value(samples, "capstan_workqueue_depth", ("kind", "TrainJob")));
        Assert.Equal(1, Value(samples, "http_requests_received_total", ("code", "200"), ("method", "GET"), ("endpoint", "/api/v1/namespaces/{namespace}/{plural}/{name}")));
        Assert.Contains(samples, s => s.Name == "process_cpu_seconds_total");

        // A real Prometheus scrapes the same endpoint and can answer the query an alert on failed jobs would ask.
        using var prometheus = await PrometheusProcess.StartAsync("capstan", http.BaseAddress.Authority, Ct);
        var succeeded = await prometheus.QueryUntilAsync("sum by (kind, phase) (capstan_resources{kind=\"TrainJob\"})", r => r.GetArrayLength() >= 1, Ct);
        var byPhase = succeeded.EnumerateArray().ToDictionary(s => s.GetProperty("metric").GetProperty("phase").GetString()!, s => double.Parse(s.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture));
        Assert.Equal(1, byPhase["Succeeded"]);
        var reconciles = await prometheus.QueryUntilAsync("capstan_reconcile_total{kind=\"TrainJob\"}", r => r.GetArrayLength() >= 1, Ct);
        Assert.All(reconciles.EnumerateArray(), s => Assert.Equal("capstan", s.GetProperty("metric").GetProperty("job").GetString()));
    }
}
