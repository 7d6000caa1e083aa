using System.Text.Json.Nodes;
using Capstan.Runtime.Kubernetes.Operator;
using Capstan.Runtime.Kubernetes.Rendering;
using Capstan.Runtime.Kubernetes.Tests.FakeApiServer;

namespace Capstan.Runtime.Kubernetes.Tests.Operator;

/// <summary>A running trial's log read incrementally through <c>pods/log</c>, as early stopping polls it.</summary>
public sealed class TrialMetricsTests : IAsyncLifetime
{
    private FakeKubernetesApiServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await FakeKubernetesApiServer.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    private void CreatePod(string trial) => _server.Objects.Create(_server.Type("", "pods"), "default", new JsonObject
    {
        ["apiVersion"] = "v1",
        ["kind"] = "Pod",
        ["metadata"] = new JsonObject { ["name"] = $"{trial}-abcde", ["namespace"] = "default", ["labels"] = new JsonObject { [CapstanLabels.TrainJob] = trial } },
        ["spec"] = new JsonObject { ["containers"] = new JsonArray(new JsonObject { ["name"] = TrainJobRenderer.ContainerName, ["image"] = "trainer:1" }) },
    });

    [Fact]
    public async Task Running_ACursorNobodyReadsFor30Minutes_IsDropped()
    {
        CreatePod("gone");
        CreatePod("live");
        _server.Objects.SetPodLog("default", "gone-abcde", "loss=1\n");
        _server.Objects.SetPodLog("default", "live-abcde", "loss=2\n");
        var clock = new ManualClock();
        var metrics = new TrialMetrics(_server.CreateClient(), clock);
        await metrics.ReadAsync("default", "gone", ["loss"], TestContext.Current.CancellationToken, running: true);
        await metrics.ReadAsync("default", "live", ["loss"], TestContext.Current.CancellationToken, running: true);
        Assert.Equal(2, metrics.CursorCount);

        // The "gone" trial's experiment was deleted: no final read ever comes; the live one is still polled.
        clock.Advance(TimeSpan.FromMinutes(31));
        await metrics.ReadAsync("default", "live", ["loss"], TestContext.Current.CancellationToken, running: true);
        Assert.Equal(1, metrics.CursorCount);
    }

    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = DateTimeOffset.UtcNow;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    private IEnumerable<ApiRequest> LogReads => _server.Requests.Where(r => r.Path.EndsWith("/log", StringComparison.Ordinal));

    [Fact]
    public async Task Running_RepeatedReads_AskOnlyForNewLinesAndNeitherRepeatNorLoseAMetric()
    {
        CreatePod("t1");
        _server.Objects.SetPodLog("default", "t1-abcde", "loss=5\nloss=4\n");
        var metrics = new TrialMetrics(_server.CreateClient());

        var (first, _) = await metrics.ReadAsync("default", "t1", ["loss"], TestContext.Current.CancellationToken, running: true);
        Assert.Equal([(0L, 5.0), (1L, 4.0)], first!.Select(m => (m.Step, m.Value)));
        Assert.DoesNotContain("sinceSeconds", LogReads.Single().Query, StringComparison.Ordinal);

        // Nothing new: the lines the second read gets again (sinceSeconds reaches back past them) are dropped.
        var (same, _) = await metrics.ReadAsync("default", "t1", ["loss"], TestContext.Current.CancellationToken, running: true);
        Assert.Equal(first!.Select(m => (m.Step, m.Value)), same!.Select(m => (m.Step, m.Value)));

        // Two more lines, one of them printing the same text as before: both are new, and the steps go on counting.
        _server.Objects.SetPodLog("default", "t1-abcde", "loss=5\nloss=4\nloss=4\nloss=3\n");
        var (more, _) = await metrics.ReadAsync("default", "t1", ["loss"], TestContext.Current.CancellationToken, running: true);
        Assert.Equal([(0L, 5.0), (1L, 4.0), (2L, 4.0), (3L, 3.0)], more!.Select(m => (m.Step, m.Value)));
        Assert.All(LogReads.Skip(1), r => Assert.Contains("sinceSeconds=", r.Query, StringComparison.Ordinal));
        Assert.All(LogReads, r => Assert.Contains("timestamps=true", r.Query, StringComparison.Ordinal));

        // Once the trial has ended its whole log is read again, from the start.
        var (final, _) = await metrics.ReadAsync("default", "t1", ["loss"], TestContext.Current.CancellationToken);
        Assert.Equal(more!.Select(m => (m.Step, m.Value)), final!.Select(m => (m.Step, m.Value)));
        Assert.DoesNotContain("sinceSeconds", LogReads.Last().Query, StringComparison.Ordinal);
    }
}
