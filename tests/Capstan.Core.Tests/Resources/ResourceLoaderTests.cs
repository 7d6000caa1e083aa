using Capstan.Core.Resources;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace Capstan.Core.Tests.Resources;

public sealed class ResourceLoaderTests
{
    private static string DataFile(string name) => Path.Combine(AppContext.BaseDirectory, "Resources", "Data", name);

    [Fact]
    public void LoadFile_FullTrainJob_BindsEveryKubernetesStructure()
    {
        var job = Assert.IsType<TrainJob>(Assert.Single(ResourceLoader.LoadFile(DataFile("trainjob-full.yaml"))));

        Assert.Equal(("resnet-imagenet", "vision"), (job.Metadata.Name, job.Metadata.Namespace));
        Assert.Equal("capstan", job.Metadata.Labels!["app.kubernetes.io/part-of"]);
        var spec = job.Spec;
        Assert.Equal(["python", "train.py"], spec.Command!);
        Assert.Equal("0.01", spec.Params!["lr"]);
        Assert.Equal("api-key", spec.Env![1].ValueFrom.SecretKeyRef.Key);
        Assert.True(spec.Env[2].ValueFrom.ConfigMapKeyRef.Optional);
        Assert.Equal("s3-credentials", spec.EnvFrom![0].SecretRef.Name);
        Assert.Equal("TRAIN_", spec.EnvFrom[1].Prefix);
        Assert.Equal(0.5m, spec.Resources!.Requests["cpu"].ToDecimal());
        Assert.Equal(1m, spec.Resources.Limits["nvidia.com/gpu"].ToDecimal());
        var required = spec.Affinity!.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0];
        Assert.Equal(("nvidia.com/gpu.product", "In", 2), (required.Key, required.OperatorProperty, required.Values.Count));
        var antiAffinity = spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0];
        Assert.Equal((100, "kubernetes.io/hostname"), (antiAffinity.Weight, antiAffinity.PodAffinityTerm.TopologyKey));
        Assert.Equal(3600L, spec.Tolerations![1].TolerationSeconds);
        Assert.Equal((2, 8, RestartPolicy.OnFailure, 4), (spec.Replicas, spec.NprocPerNode, spec.RestartPolicy, spec.BackoffLimit));
        Assert.Equal(("resnet50", "candidate"), (spec.Outputs!.Model!.Register!.Model, spec.Outputs.Model.Register.Alias));
    }

    [Fact]
    public void ToYaml_FullTrainJob_PreservesEveryFieldOfTheFile()
    {
        var text = File.ReadAllText(DataFile("trainjob-full.yaml"));
        var job = Assert.Single(ResourceLoader.Load(text, "trainjob-full.yaml"));

        var written = ResourceSerializer.ToYaml(job);

        AssertContains(Parse(text), Parse(written), "");
    }

    [Fact]
    public void Load_SerializedTrainJob_ReadsBackTheSameResource()
    {
        var job = Assert.Single(ResourceLoader.LoadFile(DataFile("trainjob-full.yaml")));

        var again = Assert.Single(ResourceLoader.Load(ResourceSerializer.ToYaml(job), "written.yaml"));

        Assert.Equal(ResourceSerializer.ToJson(job), ResourceSerializer.ToJson(again));
        Assert.Equal(ResourceSerializer.ToJson(job), ResourceSerializer.ToJson(ResourceSerializer.FromJson(ResourceSerializer.ToJson(job))));
    }

    [Fact]
    public void LoadFile_MultiDocument_ReturnsEachResourceInOrderAndSkipsEmptyDocuments()
    {
        var jobs = ResourceLoader.LoadFile(DataFile("two-jobs.yaml"));

        Assert.Equal(["prepare", "train"], jobs.Select(j => j.Metadata.Name!));
        Assert.All(jobs, job => Assert.IsType<TrainJob>(job));
    }

    [Fact]
    public void ToYaml_SeveralResources_WritesOneDocumentEach()
    {
        var jobs = ResourceLoader.LoadFile(DataFile("two-jobs.yaml"));

        var again = ResourceLoader.Load(ResourceSerializer.ToYaml(jobs), "both.yaml");

        Assert.Equal(["prepare", "train"], again.Select(j => j.Metadata.Name!));
    }

    [Fact]
    public void KubernetesYaml_WithCentrallyPinnedYamlDotNet_ReadsKubernetesModels()
    {
        var job = (TrainJob)Assert.Single(ResourceLoader.LoadFile(DataFile("trainjob-full.yaml")));

        var affinity = k8s.KubernetesYaml.Deserialize<V1Affinity>(k8s.KubernetesYaml.Serialize(job.Spec.Affinity));

        Assert.Equal(50, affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight);
    }

    private static YamlNode Parse(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return stream.Documents[0].RootNode;
    }

    /// <summary>Every field and value of <paramref name="expected"/> is in <paramref name="actual"/>, which may hold more (defaults).</summary>
    private static void AssertContains(YamlNode expected, YamlNode actual, string path)
    {
        switch (expected)
        {
            case YamlMappingNode map:
                var actualMap = Assert.IsType<YamlMappingNode>(actual);
                foreach (var (key, value) in map.Children)
                {
                    Assert.True(actualMap.Children.ContainsKey(key), $"{path}.{key} is missing");
                    AssertContains(value, actualMap.Children[key], $"{path}.{key}");
                }

                break;
            case YamlSequenceNode list:
                var actualList = Assert.IsType<YamlSequenceNode>(actual);
                Assert.Equal(list.Children.Count, actualList.Children.Count);
                for (var i = 0; i < list.Children.Count; i++)
                {
                    AssertContains(list.Children[i], actualList.Children[i], $"{path}[{i}]");
                }

                break;
            default:
                Assert.Equal(((YamlScalarNode)expected).Value, Assert.IsType<YamlScalarNode>(actual).Value);
                break;
        }
    }

    [Fact]
    public void Load_JsonAsWrittenByTheServer_ReadsQuotedTimestamps()
    {
        var json = """
            {"apiVersion":"capstan.dev/v1alpha1","kind":"TrainJob","metadata":{"name":"mnist","creationTimestamp":"2026-01-02T03:04:05+00:00"},
             "spec":{"command":["python"]},"status":{"startTime":"2026-01-02T03:04:06Z","phase":"Running"}}
            """;

        var job = Assert.IsType<TrainJob>(Assert.Single(ResourceLoader.Load(json, "body.json")));

        Assert.Equal(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero), job.Metadata.CreationTimestamp);
        Assert.Equal(TrainJobPhase.Running, job.Status!.Phase);
    }
}
