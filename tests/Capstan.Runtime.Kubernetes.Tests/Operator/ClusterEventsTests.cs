using Capstan.Runtime.Kubernetes.Cluster;
using k8s;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Tests.Operator;

public sealed class ClusterEventsTests
{
    [Fact]
    public async Task Record_SameEventTwice_CountsItOnOneEvent()
    {
        await using var server = await FakeApiServer.FakeKubernetesApiServer.StartAsync();
        using var client = server.CreateClient();
        var events = new ClusterEvents(client, "capstan-operator", "op-a");
        var involved = new V1ObjectReference { ApiVersion = "capstan.dev/v1alpha1", Kind = "TrainJob", Name = "mnist", NamespaceProperty = "default", Uid = "u-1" };

        await events.RecordAsync(involved, "Warning", "BackOff", "pod failed", CancellationToken.None);
        await events.RecordAsync(involved, "Warning", "BackOff", "pod failed", CancellationToken.None);
        await events.RecordAsync(involved, "Normal", "Created", "Created Job mnist", CancellationToken.None);

        var stored = (await client.CoreV1.ListNamespacedEventAsync("default")).Items;
        Assert.Equal(2, stored.Count);
        var backOff = stored.Single(e => e.Reason == "BackOff");
        Assert.Equal(2, backOff.Count);
        Assert.Equal("mnist", backOff.InvolvedObject.Name);
        Assert.Equal("op-a", backOff.ReportingInstance);
    }
}
