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
}
