using System.Diagnostics;
using k8s;
using static Capstan.Runtime.Kubernetes.Tests.Operator.OperatorHarness;

namespace Capstan.Runtime.Kubernetes.Tests.Operator;

/// <summary>Two operator replicas against one API server: one leads and reconciles; when it stops, the other takes over.</summary>
public sealed class LeaderElectionTests : IAsyncLifetime
{
    private OperatorHarness _cluster = null!;

    public async ValueTask InitializeAsync() => _cluster = await OperatorHarness.StartAsync();

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task TwoReplicas_OneLeads_TheOtherTakesOverWhenItStops()
    {
        var a = await _cluster.StartOperatorAsync(FastOptions("op-a"));
        var b = await _cluster.StartOperatorAsync(FastOptions("op-b"));
        await WaitForAsync(() => a.IsLeader || b.IsLeader, "a leader");
        var (leader, standby) = a.IsLeader ? (a, b) : (b, a);
        Assert.False(standby.IsLeader);
        var lease = await _cluster.Client.CoordinationV1.ReadNamespacedLeaseAsync("capstan-operator", "capstan-system");
        Assert.Equal(leader.Identity, lease.Spec.HolderIdentity);

        await _cluster.CreateTrainJobAsync("first");
        await WaitForAsync(() => _cluster.Phase("first") == "Pending", "the leader to reconcile");
        var firstEvents = await _cluster.EventsAsync("first");
        Assert.NotEmpty(firstEvents);
        Assert.All(firstEvents, e => Assert.Equal(leader.Identity, e.ReportingInstance));
        Assert.False(standby.IsLeader);

        await _cluster.StopAsync(leader);
        await WaitForAsync(() => standby.IsLeader, "the standby to take the lease");
        await _cluster.CreateTrainJobAsync("second");

        await WaitForAsync(() => _cluster.Phase("second") == "Pending", "the new leader to reconcile");
        var secondEvents = await _cluster.EventsAsync("second");
        Assert.NotEmpty(secondEvents);
        Assert.All(secondEvents, e => Assert.Equal(standby.Identity, e.ReportingInstance));
        lease = await _cluster.Client.CoordinationV1.ReadNamespacedLeaseAsync("capstan-operator", "capstan-system");
        Assert.Equal(standby.Identity, lease.Spec.HolderIdentity);
        Assert.Equal(1, lease.Spec.LeaseTransitions);
        Assert.Equal(2, _cluster.Count("POST", "/jobs", 201));
    }

    [Fact]
    public async Task Leader_StopsCleanly_ReleasesTheLease()
    {
        var a = await _cluster.StartOperatorAsync(FastOptions("op-a"));
        await WaitForAsync(() => a.IsLeader, "op-a to lead");
        var held = await _cluster.Client.CoordinationV1.ReadNamespacedLeaseAsync("capstan-operator", "capstan-system");
        Assert.Equal("op-a", held.Spec.HolderIdentity);

        await _cluster.StopAsync(a);

        var lease = await _cluster.Client.CoordinationV1.ReadNamespacedLeaseAsync("capstan-operator", "capstan-system");
        Assert.Equal("", lease.Spec.HolderIdentity);
        Assert.Equal(1, lease.Spec.LeaseDurationSeconds);
        Assert.Equal(held.Spec.LeaseTransitions, lease.Spec.LeaseTransitions);
    }

    [Fact]
    public async Task Leader_StopsCleanly_StandbyTakesOverWithoutWaitingOutTheLease()
    {
        // A lease long enough that a standby waiting it out would fail the test.
        static Capstan.Runtime.Kubernetes.Operator.OperatorOptions Slow(string identity) =>
            FastOptions(identity) with { LeaseDuration = TimeSpan.FromSeconds(30), RenewDeadline = TimeSpan.FromSeconds(20) };
        var a = await _cluster.StartOperatorAsync(Slow("op-a"));
        await WaitForAsync(() => a.IsLeader, "op-a to lead");
        var b = await _cluster.StartOperatorAsync(Slow("op-b"));
        await Task.Delay(500);
        Assert.False(b.IsLeader);

        var clock = Stopwatch.StartNew();
        await _cluster.StopAsync(a);
        await WaitForAsync(() => b.IsLeader, "the standby to take the released lease", seconds: 10);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        var lease = await _cluster.Client.CoordinationV1.ReadNamespacedLeaseAsync("capstan-operator", "capstan-system");
        Assert.Equal("op-b", lease.Spec.HolderIdentity);
        Assert.Equal(1, lease.Spec.LeaseTransitions);
    }
}
