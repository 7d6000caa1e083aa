using Capstan.Core.Resources;

namespace Capstan.Cli.Tests;

/// <summary>Every spec in examples/ is one a user can apply as it is.</summary>
public sealed class ExamplesTests
{
    public static TheoryData<string> ExampleFiles() =>
        [.. Directory.EnumerateFiles(Path.Combine(AppContext.BaseDirectory, "examples"), "*.yaml").Select(f => Path.GetFileName(f)).Order()];

    [Theory]
    [MemberData(nameof(ExampleFiles))]
    public void Example_LoadFile_HasNoErrors(string file)
    {
        var resources = ResourceLoader.LoadFile(Path.Combine(AppContext.BaseDirectory, "examples", file));

        Assert.NotEmpty(resources);
    }

    [Fact]
    public void Examples_Folder_HasTheTabularAndDistributedJobs()
    {
        var files = ExampleFiles().Select(row => row.Data).ToList();

        Assert.Contains("trainjob-tabular.yaml", files);
        Assert.Contains("trainjob-distributed.yaml", files);
    }

    [Fact]
    public void DistributedExample_Load_HasTwoReplicas()
    {
        var job = Assert.IsType<TrainJob>(Assert.Single(ResourceLoader.LoadFile(Path.Combine(AppContext.BaseDirectory, "examples", "trainjob-distributed.yaml"))));

        Assert.Equal(2, job.Spec.Replicas);
        Assert.Equal("/bin/sh", job.Spec.Command![0]);
    }

    [Fact]
    public void InferenceServiceExample_Load_HasACanaryOnTheSameModel()
    {
        var service = Assert.IsType<InferenceService>(Assert.Single(ResourceLoader.LoadFile(Path.Combine(AppContext.BaseDirectory, "examples", "inferenceservice-iris.yaml"))));

        Assert.Equal("models:/iris-classifier@champion", service.Spec.Model);
        Assert.Equal(("models:/iris-classifier@candidate", 10), (service.Spec.Canary!.Model, service.Spec.Canary.TrafficPercent));
    }
}
