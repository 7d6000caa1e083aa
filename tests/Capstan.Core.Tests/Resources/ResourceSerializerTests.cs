using Capstan.Core.Resources;

namespace Capstan.Core.Tests.Resources;

public sealed class ResourceSerializerTests
{
    private const string MinimalJob = """
        apiVersion: capstan.dev/v1alpha1
        kind: TrainJob
        metadata:
          name: iris
        spec:
          command: [python, train.py]
        """;

    [Fact]
    public void ToYaml_MinimalTrainJob_ShowsEveryDefault()
    {
        var job = Assert.Single(ResourceLoader.Load(MinimalJob, "iris.yaml"));

        var yaml = ResourceSerializer.ToYaml(job);

        Assert.Equal(
            """
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata:
              name: iris
              namespace: default
            spec:
              command:
              - python
              - train.py
              replicas: 1
              nprocPerNode: 1
              restartPolicy: Never
              backoffLimit: 0
              priority: 0
              experiment: iris

            """,
            yaml);
    }

    [Fact]
    public void ApplyDefaults_RestartingJob_AllowsThreeRetries()
    {
        var job = Assert.Single(ResourceLoader.Load(MinimalJob + "\n  restartPolicy: OnFailure\n", "iris.yaml"));

        Assert.Equal(TrainJobSpec.DefaultRetryingBackoffLimit, ((TrainJob)job).Spec.BackoffLimit);
    }

    [Fact]
    public void ToJson_TrainJob_UsesKubernetesFieldNamesAndOmitsNulls()
    {
        var job = Assert.Single(ResourceLoader.Load(
            MinimalJob + "\n  resources: {limits: {nvidia.com/gpu: 1, memory: 2Gi}}\n  tolerations: [{key: gpu, operator: Exists}]\n",
            "iris.yaml"));

        var json = ResourceSerializer.ToJson(job);

        Assert.Contains("\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"1\",\"memory\":\"2Gi\"}}", json, StringComparison.Ordinal);
        Assert.Contains("\"tolerations\":[{\"key\":\"gpu\",\"operator\":\"Exists\"}]", json, StringComparison.Ordinal);
        Assert.DoesNotContain("null", json, StringComparison.Ordinal);
        Assert.StartsWith("{\"apiVersion\":\"capstan.dev/v1alpha1\",\"kind\":\"TrainJob\",\"metadata\":", json, StringComparison.Ordinal);
    }

    [Fact]
    public void ToYaml_StringsThatLookLikeNumbers_AreQuotedSoTheyReadBackAsStrings()
    {
        var job = Assert.Single(ResourceLoader.Load(MinimalJob + "\n  params: {lr: 0.01, flag: true}\n  nodeSelector: {gpu: \"true\"}\n", "iris.yaml"));

        var yaml = ResourceSerializer.ToYaml(job);

        Assert.Contains("lr: \"0.01\"", yaml, StringComparison.Ordinal);
        Assert.Contains("gpu: \"true\"", yaml, StringComparison.Ordinal);
        Assert.Equal("true", ((TrainJob)Assert.Single(ResourceLoader.Load(yaml, "again.yaml"))).Spec.NodeSelector!["gpu"]);
    }

    [Fact]
    public void ToYaml_Status_WritesConditionsAsKubernetesDoes()
    {
        var job = (TrainJob)Assert.Single(ResourceLoader.Load(MinimalJob, "iris.yaml"));
        job.Status = new TrainJobStatus
        {
            Phase = TrainJobPhase.Running,
            ObservedGeneration = 1,
            Conditions = [new ResourceCondition { Type = "Running", Status = ConditionStatus.True, Reason = "Started" }],
        };

        var yaml = ResourceSerializer.ToYaml(job);

        Assert.Equal(
            """
            status:
              phase: Running
              conditions:
              - type: Running
                status: "True"
                reason: Started
              observedGeneration: 1

            """,
            yaml[yaml.IndexOf("status:", StringComparison.Ordinal)..]);
    }

    [Fact]
    public void Load_ServerSetMetadata_RoundTripsThroughYaml()
    {
        var job = (TrainJob)Assert.Single(ResourceLoader.Load(MinimalJob, "iris.yaml"));
        job.Metadata.Uid = "0d1f6c1e-6b1a-4c51-9a55-2f0c2b0e8a11";
        job.Metadata.Generation = 3;
        job.Metadata.ResourceVersion = "17";
        job.Metadata.CreationTimestamp = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        job.Status = new TrainJobStatus { StartTime = job.Metadata.CreationTimestamp, Attempts = 1, RunId = "1234" };

        var again = (TrainJob)Assert.Single(ResourceLoader.Load(ResourceSerializer.ToYaml(job), "again.yaml"));

        Assert.Equal(ResourceSerializer.ToJson(job), ResourceSerializer.ToJson(again));
        Assert.Equal(job.Metadata.CreationTimestamp, again.Status!.StartTime);
    }
}
