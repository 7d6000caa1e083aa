using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Rendering;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Tests;

public sealed class InferenceServiceRendererTests
{
    private static InferenceService Example() =>
        Assert.IsType<InferenceService>(Assert.Single(ResourceLoader.LoadFile(Path.Combine(Repository.Examples, "inferenceservice-iris.yaml"))));

    private static InferenceService Load(string yaml) => Assert.IsType<InferenceService>(Assert.Single(ResourceLoader.Load(yaml, "test.yaml")));

    [Fact]
    public void Example_Render_DeploymentServesTheModelWithTheServerImage()
    {
        var objects = InferenceServiceRenderer.Render(Example(), RenderOptions.Default);

        var deployment = objects.Predictor;
        Assert.Equal("iris-predictor", deployment.Metadata.Name);
        var container = Assert.Single(deployment.Spec.Template.Spec.Containers);
        Assert.Equal(RenderOptions.DefaultServingImage, container.Image);
        Assert.Equal(["serve", "models:/iris-classifier@champion", "--name", "iris"], container.Args.Take(4));
        Assert.Contains("--max-batch-size", container.Args);
        Assert.Equal("/v2/health/ready", container.ReadinessProbe.HttpGet.Path);
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.Equal("inference", Assert.Single(deployment.Spec.Template.Spec.Tolerations).Value);
        Assert.Equal("0", container.Env.Single(e => e.Name == "DOTNET_gcServer").Value);
        Assert.Equal(RenderOptions.DefaultApiUrl, container.Env.Single(e => e.Name == "CAPSTAN_URL").Value);
        Assert.Equal("iris", container.Env.Single(e => e.Name == "OTEL_SERVICE_NAME").Value);
    }

    [Fact]
    public void Render_SpecEnvNamingTheTraceService_OverridesTheDefault()
    {
        var service = Example();
        service.Spec.Env!.Add(new k8s.Models.V1EnvVar { Name = "OTEL_SERVICE_NAME", Value = "fraud-scoring" });
        var container = Assert.Single(InferenceServiceRenderer.Render(service, RenderOptions.Default).Predictor.Spec.Template.Spec.Containers);
        Assert.Equal("fraud-scoring", container.Env.Single(e => e.Name == "OTEL_SERVICE_NAME").Value);
    }

    [Fact]
    public void Example_Render_AutoscalesOnCpuAndLeavesReplicasToTheAutoscaler()
    {
        var objects = InferenceServiceRenderer.Render(Example(), RenderOptions.Default);

        var hpa = Assert.IsType<V2HorizontalPodAutoscaler>(objects.Autoscaler);
        Assert.Equal(("Deployment", "iris-predictor"), (hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name));
        Assert.Equal((2, 6), (hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas));
        var metric = Assert.Single(hpa.Spec.Metrics);
        Assert.Equal(("cpu", 70), (metric.Resource.Name, metric.Resource.Target.AverageUtilization));
        Assert.Null(objects.Predictor.Spec.Replicas);
    }

    [Fact]
    public void Render_RpsAutoscaling_UsesThePodsMetric()
    {
        var service = Load("""
            apiVersion: capstan.dev/v1alpha1
            kind: InferenceService
            metadata: {name: rps}
            spec:
              model: models:/m/1
              autoscaling: {maxReplicas: 4, metric: rps, target: 50}
            """);

        var metric = Assert.Single(InferenceServiceRenderer.Render(service, RenderOptions.Default).Autoscaler!.Spec.Metrics);

        Assert.Equal("Pods", metric.Type);
        Assert.Equal(InferenceServiceRenderer.RequestsPerSecondMetric, metric.Pods.Metric.Name);
        Assert.Equal("50", metric.Pods.Target.AverageValue.ToString());
    }

    [Fact]
    public void Render_CpuAutoscalingWithoutACpuRequest_FailsNamingTheField()
    {
        var service = Load("""
            apiVersion: capstan.dev/v1alpha1
            kind: InferenceService
            metadata: {name: nocpu}
            spec:
              model: models:/m/1
              autoscaling: {maxReplicas: 4}
            """);

        var error = Assert.Single(Assert.Throws<ResourceValidationException>(() => InferenceServiceRenderer.Render(service, RenderOptions.Default)).Errors);

        Assert.Equal("spec.resources.requests.cpu", error.FieldPath);
    }

    [Fact]
    public void Example_Render_SpreadsPodsOverNodesAndBudgetsOneDisruption()
    {
        var objects = InferenceServiceRenderer.Render(Example(), RenderOptions.Default);

        var pod = objects.Predictor.Spec.Template.Spec;
        var term = Assert.Single(pod.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution);
        Assert.Equal("kubernetes.io/hostname", term.PodAffinityTerm.TopologyKey);
        Assert.Equal("kubernetes.io/hostname", Assert.Single(pod.TopologySpreadConstraints).TopologyKey);
        Assert.Equal("1", objects.DisruptionBudget.Spec.MaxUnavailable.ToString());
        Assert.True(objects.DisruptionBudget.Spec.Selector.MatchLabels.All(l => objects.Predictor.Spec.Template.Metadata.Labels[l.Key] == l.Value));
    }

    [Fact]
    public void Render_UserPodAntiAffinity_IsKeptVerbatim()
    {
        var service = Load("""
            apiVersion: capstan.dev/v1alpha1
            kind: InferenceService
            metadata: {name: own}
            spec:
              model: models:/m/1
              affinity:
                podAntiAffinity:
                  requiredDuringSchedulingIgnoredDuringExecution:
                    - topologyKey: topology.kubernetes.io/zone
                      labelSelector: {matchLabels: {app: own}}
            """);

        var affinity = InferenceServiceRenderer.Render(service, RenderOptions.Default).Predictor.Spec.Template.Spec.Affinity;

        Assert.Null(affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution);
        Assert.Equal("topology.kubernetes.io/zone", Assert.Single(affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution).TopologyKey);
    }

    [Fact]
    public void Example_RenderWithoutGatewayApi_CanarySharesTheServiceByReplicaRatio()
    {
        var objects = InferenceServiceRenderer.Render(Example(), RenderOptions.Default);

        var canary = Assert.IsType<V1Deployment>(objects.Canary);
        Assert.Equal("models:/iris-classifier@candidate", canary.Spec.Template.Spec.Containers[0].Args[1]);
        Assert.Equal(1, canary.Spec.Replicas);
        Assert.Null(objects.Route);
        Assert.Empty(objects.TrackServices);
        var selector = objects.Service.Spec.Selector;
        Assert.True(selector.All(s => canary.Spec.Template.Metadata.Labels[s.Key] == s.Value));
        Assert.True(selector.All(s => objects.Predictor.Spec.Template.Metadata.Labels[s.Key] == s.Value));
    }

    [Fact]
    public void Example_RenderWithGatewayApi_RouteSplitsByWeight()
    {
        var objects = InferenceServiceRenderer.Render(Example(), RenderOptions.Default with { GatewayApi = true, GatewayName = "public" });

        var route = Assert.IsType<Models.V1HttpRoute>(objects.Route);
        Assert.Equal("public", Assert.Single(route.Spec.ParentRefs!).Name);
        var rule = Assert.Single(route.Spec.Rules!);
        Assert.Equal("/v2/models/iris", rule.Matches![0].Path!.Value);
        Assert.Equal([("iris-stable", 90), ("iris-canary", 10)], rule.BackendRefs!.Select(b => (b.Name, b.Weight ?? 0)));
        Assert.Equal(["iris-stable", "iris-canary"], objects.TrackServices.Select(s => s.Metadata.Name));
        Assert.Equal("canary", objects.TrackServices[1].Spec.Selector[CapstanLabels.Track]);
    }

    [Theory]
    [InlineData(4, 25, 3, 1)]
    [InlineData(2, 10, 1, 1)]
    [InlineData(10, 10, 9, 1)]
    [InlineData(10, 50, 5, 5)]
    [InlineData(3, 0, 3, 0)]
    [InlineData(3, 100, 0, 3)]
    public void CanaryReplicas_Percent_SplitsThePods(int replicas, int percent, int stable, int canary)
    {
        Assert.Equal((stable, canary), InferenceServiceRenderer.CanaryReplicas(replicas, percent));
    }
}
