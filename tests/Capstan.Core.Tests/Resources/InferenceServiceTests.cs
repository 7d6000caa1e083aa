using Capstan.Core.Registry;
using Capstan.Core.Resources;

namespace Capstan.Core.Tests.Resources;

public sealed class InferenceServiceTests
{
    private const string Header = """
        apiVersion: capstan.dev/v1alpha1
        kind: InferenceService
        metadata:
          name: iris
        spec:
          model: models:/iris@champion

        """;

    private const string FullService = """
        apiVersion: capstan.dev/v1alpha1
        kind: InferenceService
        metadata: {name: iris}
        spec:
          model: models:/iris-classifier@champion
          canary: {model: models:/iris-classifier@candidate, trafficPercent: 10}
          replicas: 2
          autoscaling: {minReplicas: 2, maxReplicas: 6, metric: cpu, target: 70}
          batching: {maxBatchSize: 16, maxLatency: 2}
          resources: {requests: {cpu: 500m}, limits: {cpu: "2"}}
          env: [{name: A, value: b}]
          affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: gpu, operator: In, values: ["a100"]}]}]}}}
          tolerations: [{key: dedicated, operator: Equal, value: inference, effect: NoSchedule}]
          nodeSelector: {kubernetes.io/os: linux}
        """;

    private static ResourceLoadResult Read(string specLines) => ResourceLoader.Read(Header + specLines, "isvc.yaml");

    private static ResourceError SingleError(string specLines) => Assert.Single(Read(specLines).Errors);

    [Fact]
    public void Load_MinimalService_FillsTheDefaultsGetShows()
    {
        var service = Assert.IsType<InferenceService>(Assert.Single(ResourceLoader.Load(Header, "isvc.yaml")));

        Assert.Equal(("iris", 1, 8080, 8081, 30), (service.Spec.ModelName, service.Spec.Replicas, service.Spec.Port, service.Spec.GrpcPort, service.Spec.Timeout));
        var yaml = ResourceSerializer.ToYaml(service);
        Assert.Contains("modelName: iris\n", yaml, StringComparison.Ordinal);
        Assert.Contains("timeout: 30\n", yaml, StringComparison.Ordinal);
        Assert.DoesNotContain("canary", yaml, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_AutoscalingAndBatchingWithoutValues_FillsKServeLikeDefaults()
    {
        var service = (InferenceService)Assert.Single(Read("""
              replicas: 2
              autoscaling: {maxReplicas: 5}
              batching: {}
            """).Resources);

        Assert.Equal((2, 5, "cpu", 80), (service.Spec.Autoscaling!.MinReplicas, service.Spec.Autoscaling.MaxReplicas, service.Spec.Autoscaling.Metric, service.Spec.Autoscaling.Target));
        Assert.Equal((32, 5), (service.Spec.Batching!.MaxBatchSize, service.Spec.Batching.MaxLatency));
    }

    [Fact]
    public void Load_RpsMetricWithoutTarget_DefaultsToHundredRequestsPerSecond()
    {
        var service = (InferenceService)Assert.Single(Read("  autoscaling: {maxReplicas: 3, metric: rps}").Resources);

        Assert.Equal(100, service.Spec.Autoscaling!.Target);
    }

    [Fact]
    public void Load_FullService_BindsCanaryAndKubernetesFields()
    {
        var service = Assert.IsType<InferenceService>(Assert.Single(ResourceLoader.Load(FullService, "full.yaml")));

        Assert.Equal(("models:/iris-classifier@candidate", 10), (service.Spec.Canary!.Model, service.Spec.Canary.TrafficPercent));
        Assert.Equal("inference", service.Spec.Tolerations![0].Value);
        Assert.Equal(0.5m, service.Spec.Resources!.Requests["cpu"].ToDecimal());
        Assert.Equal("linux", service.Spec.NodeSelector!["kubernetes.io/os"]);
        Assert.Equal((16, 2), (service.Spec.Batching!.MaxBatchSize, service.Spec.Batching.MaxLatency));
    }

    [Fact]
    public void Load_SerializedService_ReadsBackTheSameResource()
    {
        var service = Assert.Single(ResourceLoader.Load(FullService, "full.yaml"));

        var again = Assert.Single(ResourceLoader.Load(ResourceSerializer.ToYaml(service), "written.yaml"));

        Assert.Equal(ResourceSerializer.ToJson(service), ResourceSerializer.ToJson(again));
        Assert.Equal(ResourceSerializer.ToJson(service), ResourceSerializer.ToJson(ResourceSerializer.FromJson(ResourceSerializer.ToJson(service))));
    }

    [Theory]
    [InlineData("  canary: {model: models:/iris/2, trafficPercent: 101}", 7, 51, "spec.canary.trafficPercent", "must be between 0 and 100, got 101")]
    [InlineData("  canary: {model: models:/iris/2, trafficPercent: -5}", 7, 51, "spec.canary.trafficPercent", "must be between 0 and 100, got -5")]
    [InlineData("  canary: {trafficPercent: 10}", 7, 3, "spec.canary.model", "missing required field 'model'")]
    [InlineData("  canary: {model: models:/iris/2}", 7, 3, "spec.canary.trafficPercent", "missing required field 'trafficPercent'")]
    [InlineData("  canary: {model: models:/iris@champion, trafficPercent: 10}", 7, 19, "spec.canary.model", "is the same as spec.model ('models:/iris@champion'): a canary serves a different version")]
    [InlineData("  canary: {model: models:/iris, trafficPercent: 10}", 7, 19, "spec.canary.model", "'models:/iris' names no version: use models:/NAME/VERSION, models:/NAME@ALIAS or a path to an .onnx file")]
    [InlineData("  autoscaling: {minReplicas: 3, maxReplicas: 2}", 7, 46, "spec.autoscaling.maxReplicas", "must be at least minReplicas (3), got 2")]
    [InlineData("  autoscaling: {minReplicas: 3}", 7, 3, "spec.autoscaling.maxReplicas", "missing required field 'maxReplicas'")]
    [InlineData("  autoscaling: {maxReplicas: 3, metric: memory}", 7, 41, "spec.autoscaling.metric", "'memory' is not a valid metric (allowed: cpu, rps)")]
    [InlineData("  autoscaling: {maxReplicas: 3, target: 150}", 7, 41, "spec.autoscaling.target", "is a percentage of the CPU request for metric cpu: at most 100, got 150")]
    [InlineData("  batching: {maxBatchSize: 0}", 7, 28, "spec.batching.maxBatchSize", "must be at least 1, got 0")]
    [InlineData("  replicas: 4\n  autoscaling: {maxReplicas: 3}", 8, 30, "spec.autoscaling.maxReplicas", "must be at least minReplicas (4), got 3")]
    [InlineData("  timeout: 0", 7, 12, "spec.timeout", "must be at least 1, got 0")]
    [InlineData("  port: 70000", 7, 9, "spec.port", "must be between 1 and 65535, got 70000")]
    [InlineData("  grpcPort: 8080", 7, 13, "spec.grpcPort", "must differ from spec.port (8080): REST and gRPC listen on ports of their own")]
    [InlineData("  modelName: a/b", 7, 14, "spec.modelName", "'a/b' is not a valid model name: it may not be empty or contain '/'")]
    [InlineData("  tolerations: [{key: a, operator: Maybe}]", 7, 36, "spec.tolerations[0].operator", "'Maybe' is not a valid operator (allowed: Equal, Exists)")]
    [InlineData("  batching: {maxBatchSize: 8, maxLatency: 2ms}", 7, 43, "spec.batching.maxLatency", "expected an integer, got '2ms'")]
    public void Read_InvalidSpec_ReportsFieldPathLineAndColumn(string line, int lineNumber, int column, string path, string message)
    {
        var error = SingleError(line);

        Assert.Equal(new ResourceError("isvc.yaml", lineNumber, column, path, message), error);
    }

    [Fact]
    public void Read_NoModel_SaysTheFieldIsMissing()
    {
        var errors = ResourceLoader.Read("""
            apiVersion: capstan.dev/v1alpha1
            kind: InferenceService
            metadata: {name: iris}
            spec: {replicas: 1}
            """, "isvc.yaml").Errors;

        Assert.Equal("isvc.yaml:4:1: spec.model: missing required field 'model'", Assert.Single(errors).ToString());
    }

    [Theory]
    [InlineData("models:/iris@champion", ModelReferenceKind.RegistryAlias, "iris", null, "champion")]
    [InlineData("models:/team/iris/3", ModelReferenceKind.RegistryVersion, "team/iris", 3L, null)]
    [InlineData("/models/iris.onnx", ModelReferenceKind.Uri, null, null, null)]
    [InlineData("s3://bucket/iris.onnx", ModelReferenceKind.Uri, null, null, null)]
    public void ModelReference_Parse_SplitsNameVersionAndAlias(string text, ModelReferenceKind kind, string? name, long? version, string? alias)
    {
        var reference = ModelReference.Parse(text);

        Assert.Equal((kind, name, version, alias), (reference.Kind, reference.Name, reference.Version, reference.Alias));
    }
}
