using System.Globalization;
using System.Net;
using Capstan.Runtime.Kubernetes.Operator;
using static Capstan.Runtime.Kubernetes.Tests.Operator.OperatorHarness;

namespace Capstan.Runtime.Kubernetes.Tests.Operator;

/// <summary>
/// Each replica's /metrics, /healthz and /readyz on loopback, as the kubelet's probes and Prometheus read them: the
/// leader counts its reconcile passes, and the leader gauge moves to the standby when the leader stops.
/// </summary>
public sealed class OperatorMetricsTests : IAsyncLifetime
{
    private OperatorHarness _cluster = null!;

    public async ValueTask InitializeAsync() => _cluster = await OperatorHarness.StartAsync();

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    /// <summary>One sample's value from the text format, or null when the series is absent.</summary>
    private static double? Sample(string text, string series) =>
        text.Split('\n').Where(l => l.StartsWith(series + " ", StringComparison.Ordinal)).Select(l => double.Parse(l[(series.Length + 1)..], CultureInfo.InvariantCulture)).Cast<double?>().FirstOrDefault();

    [Fact]
    public async Task Replicas_ServeProbesAndMetrics_LeaderCountsReconcilesAndTheGaugeFollowsTheLease()
    {
        var metricsA = new OperatorMetrics();
        var metricsB = new OperatorMetrics();
        var a = await _cluster.StartOperatorAsync(FastOptions("op-a") with { Metrics = metricsA });
        var b = await _cluster.StartOperatorAsync(FastOptions("op-b") with { Metrics = metricsB });
        await using var endpointA = metricsA.BuildEndpoint(new IPEndPoint(IPAddress.Loopback, 0), () => a.ExecuteTask is { IsCompleted: false });
        await using var endpointB = metricsB.BuildEndpoint(new IPEndPoint(IPAddress.Loopback, 0), () => b.ExecuteTask is { IsCompleted: false });
        await endpointA.StartAsync(TestContext.Current.CancellationToken);
        await endpointB.StartAsync(TestContext.Current.CancellationToken);
        using var httpA = new HttpClient { BaseAddress = new Uri(endpointA.Urls.Single()) };
        using var httpB = new HttpClient { BaseAddress = new Uri(endpointB.Urls.Single()) };
        foreach (var http in new[] { httpA, httpB })
        {
            Assert.Equal("ok", await http.GetStringAsync("/healthz", TestContext.Current.CancellationToken));
            Assert.Equal("ok", await http.GetStringAsync("/readyz", TestContext.Current.CancellationToken));
        }

        await WaitForAsync(() => a.IsLeader || b.IsLeader, "a leader");
        var (leader, standby, leaderHttp, standbyHttp) = a.IsLeader ? (a, b, httpA, httpB) : (b, a, httpB, httpA);
        await _cluster.CreateTrainJobAsync("mnist");
        await WaitForAsync(() => _cluster.Phase("mnist") == "Pending", "the leader to reconcile");

        var text = await leaderHttp.GetStringAsync("/metrics", TestContext.Current.CancellationToken);
        Assert.Equal(1, Sample(text, "capstan_operator_leader"));
        Assert.True(Sample(text, "capstan_reconcile_total{kind=\"TrainJob\",result=\"success\"}") >= 1, text);
        Assert.True(Sample(text, "capstan_reconcile_duration_seconds_count{kind=\"TrainJob\"}") >= 1, text);
        Assert.NotNull(Sample(text, "capstan_workqueue_depth{kind=\"InferenceService\"}"));
        Assert.NotNull(Sample(text, "process_cpu_seconds_total"));
        var standbyText = await standbyHttp.GetStringAsync("/metrics", TestContext.Current.CancellationToken);
        Assert.Equal(0, Sample(standbyText, "capstan_operator_leader"));
        Assert.Null(Sample(standbyText, "capstan_reconcile_total{kind=\"TrainJob\",result=\"success\"}"));

        await _cluster.StopAsync(leader);
        await WaitForAsync(() => standby.IsLeader, "the standby to take the lease");
        Assert.Equal(1, Sample(await standbyHttp.GetStringAsync("/metrics", TestContext.Current.CancellationToken), "capstan_operator_leader"));
        Assert.Equal(0, Sample(await leaderHttp.GetStringAsync("/metrics", TestContext.Current.CancellationToken), "capstan_operator_leader"));
        using var stopped = await leaderHttp.GetAsync("/readyz", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, stopped.StatusCode);
    }
}
