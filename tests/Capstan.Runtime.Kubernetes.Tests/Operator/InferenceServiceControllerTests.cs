using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using static Capstan.Runtime.Kubernetes.Tests.Operator.OperatorHarness;

namespace Capstan.Runtime.Kubernetes.Tests.Operator;

/// <summary>The InferenceService controller against the fake API server, with the test playing the Deployment controller.</summary>
public sealed class InferenceServiceControllerTests : IAsyncLifetime
{
    private OperatorHarness _cluster = null!;

    public async ValueTask InitializeAsync() => _cluster = await OperatorHarness.StartAsync();

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    private JsonObject Create(string name, JsonObject spec) => _cluster.Server.Objects.Create(_cluster.Server.Type("capstan.dev", "inferenceservices"), "default", new JsonObject
    {
        ["apiVersion"] = "capstan.dev/v1alpha1",
        ["kind"] = "InferenceService",
        ["metadata"] = new JsonObject { ["name"] = name },
        ["spec"] = spec,
    });

    private JsonObject Stored(string name) => _cluster.Server.Objects.Get(_cluster.Server.Type("capstan.dev", "inferenceservices"), "default", name);

    private async Task<V1Deployment?> DeploymentAsync(string name)
    {
        var list = await _cluster.Client.AppsV1.ListNamespacedDeploymentAsync("default");
        return list.Items.FirstOrDefault(d => d.Metadata.Name == name);
    }

    [Fact]
    public async Task InferenceService_DeploymentAvailable_IsReadyWithItsUrl()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        var created = Create("iris", new JsonObject
        {
            ["model"] = "models:/iris-classifier@champion",
            ["autoscaling"] = new JsonObject { ["minReplicas"] = 2, ["maxReplicas"] = 4, ["metric"] = "cpu", ["target"] = 70 },
            ["resources"] = new JsonObject { ["requests"] = new JsonObject { ["cpu"] = "500m" } },
        });

        await WaitForAsync(async () => await DeploymentAsync("iris-predictor") is not null, "the predictor Deployment", onTimeout: () => Stored("iris").ToJsonString());
        var uid = created["metadata"]!["uid"]!.GetValue<string>();
        var deployment = (await DeploymentAsync("iris-predictor"))!;
        Assert.Equal(uid, Assert.Single(deployment.Metadata.OwnerReferences).Uid);
        await WaitForAsync(async () => (await _cluster.Client.AutoscalingV2.ListNamespacedHorizontalPodAutoscalerAsync("default")).Items.Count == 1, "the HPA");
        await WaitForAsync(async () => (await _cluster.Client.PolicyV1.ListNamespacedPodDisruptionBudgetAsync("default")).Items.Count == 1, "the PDB");
        var service = await _cluster.Client.CoreV1.ReadNamespacedServiceAsync("iris", "default");
        Assert.Equal(uid, Assert.Single(service.Metadata.OwnerReferences).Uid);
        await WaitForAsync(() => Stored("iris")["status"]?["phase"]?.GetValue<string>() == "Starting", "phase Starting");

        // The Deployment controller reports an available replica.
        deployment.Status = new V1DeploymentStatus { Replicas = 2, ReadyReplicas = 2, AvailableReplicas = 2 };
        await _cluster.Client.AppsV1.ReplaceNamespacedDeploymentStatusAsync(deployment, "iris-predictor", "default");

        await WaitForAsync(() => Stored("iris")["status"]?["phase"]?.GetValue<string>() == "Ready", "phase Ready");
        var status = Stored("iris")["status"]!;
        Assert.StartsWith("http://iris.default.svc:", status["url"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("True", status["conditions"]!.AsArray().Single(c => c!["type"]!.GetValue<string>() == "Ready")!["status"]!.GetValue<string>());
        var writes = _cluster.Count("PUT", "/deployments/iris-predictor");
        var version = (await DeploymentAsync("iris-predictor"))!.Metadata.ResourceVersion;

        // A pass over an unchanged resource writes nothing to what it owns.
        _cluster.Server.Objects.Patch(_cluster.Server.Type("capstan.dev", "inferenceservices"), "default", "iris", "application/merge-patch+json", JsonNode.Parse("""{"metadata":{"labels":{"touched":"yes"}}}""")!, statusOnly: false);
        await WaitForAsync(async () => (await _cluster.Client.AppsV1.ReadNamespacedDeploymentAsync("iris-predictor", "default")).Metadata.Labels.ContainsKey("touched"), "the label rendered onto the Deployment");
        Assert.Equal(writes + 1, _cluster.Count("PUT", "/deployments/iris-predictor"));
        Assert.NotEqual(version, (await DeploymentAsync("iris-predictor"))!.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task InferenceService_Deleted_ItsObjectsAreGarbageCollected()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        Create("iris", new JsonObject { ["model"] = "models:/iris-classifier@champion", ["replicas"] = 1 });
        await WaitForAsync(async () => await DeploymentAsync("iris-predictor") is not null, "the Deployment");

        await _cluster.Client.CustomObjects.DeleteNamespacedCustomObjectAsync("capstan.dev", "v1alpha1", "default", "inferenceservices", "iris");

        await WaitForAsync(async () => await DeploymentAsync("iris-predictor") is null, "the Deployment collected");
        Assert.Empty((await _cluster.Client.CoreV1.ListNamespacedServiceAsync("default")).Items);
        Assert.Empty((await _cluster.Client.PolicyV1.ListNamespacedPodDisruptionBudgetAsync("default")).Items);
    }

    [Fact]
    public async Task InferenceService_CpuAutoscalingWithoutRequest_FailsWithInvalidSpec()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));

        Create("iris", new JsonObject
        {
            ["model"] = "models:/iris-classifier@champion",
            ["autoscaling"] = new JsonObject { ["minReplicas"] = 1, ["maxReplicas"] = 2, ["metric"] = "cpu", ["target"] = 70 },
        });

        await WaitForAsync(() => Stored("iris")["status"]?["phase"]?.GetValue<string>() == "Failed", "phase Failed");
        Assert.Contains("requests.cpu", Stored("iris")["status"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Null(await DeploymentAsync("iris-predictor"));
        var events = await _cluster.Client.CoreV1.ListNamespacedEventAsync("default");
        Assert.Contains(events.Items, e => e.InvolvedObject.Name == "iris" && e.Type == "Warning" && e.Reason == "InvalidSpec");
    }
}
