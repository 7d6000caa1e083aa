using k8s;
using k8s.Models;

namespace Capstan.Cli.Tests.Kubernetes;

/// <summary><c>capstan render -f</c> prints what the operator would create, and refuses a bad file as apply does.</summary>
public sealed class RenderCommandTests : IDisposable
{
    private readonly TempHome _home = new();

    public void Dispose() => _home.Dispose();

    private static string Example(string file) => Path.Combine(AppContext.BaseDirectory, "examples", file);

    private string Write(string yaml)
    {
        var path = Path.Combine(_home.Root, "job.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    [Fact]
    public async Task Render_DistributedExample_PrintsTheServiceAndTheIndexedJobAsYamlDocuments()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "render", "-f", Example("trainjob-distributed.yaml"));

        Assert.Equal(0, result.ExitCode);
        var objects = KubernetesYaml.LoadAllFromString(result.Out);
        Assert.Equal(["Service", "Job"], objects.Select(o => ((IKubernetesObject)o).Kind));
        var job = Assert.IsType<V1Job>(objects[1]);
        Assert.Equal("Indexed", job.Spec.CompletionMode);
        Assert.Equal("distributed-hello-0.distributed-hello", job.Spec.Template.Spec.Containers[0].Env.Single(e => e.Name == "MASTER_ADDR").Value);
        Assert.Contains("\n---\n", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Render_KueueInANamespace_SuspendsTheJobThere()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "render", "-f", Example("trainjob-distributed.yaml"), "--gang-scheduler", "Kueue", "--kueue-queue", "team-a", "-n", "ml");

        Assert.Equal(0, result.ExitCode);
        var job = KubernetesYaml.LoadAllFromString(result.Out).OfType<V1Job>().Single();
        Assert.True(job.Spec.Suspend);
        Assert.Equal("team-a", job.Metadata.Labels["kueue.x-k8s.io/queue-name"]);
        Assert.Equal("ml", job.Metadata.NamespaceProperty);
    }

    [Fact]
    public async Task Render_InferenceServiceWithGatewayApi_PrintsAWeightedRoute()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "render", "-f", Example("inferenceservice-iris.yaml"), "--gateway-api", "-o", "json");

        Assert.Equal(0, result.ExitCode);
        var list = System.Text.Json.Nodes.JsonNode.Parse(result.Out)!;
        var kinds = list["items"]!.AsArray().Select(i => i!["kind"]!.GetValue<string>()).ToList();
        Assert.Equal(["Service", "Service", "Service", "Deployment", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "HTTPRoute"], kinds);
    }

    [Fact]
    public async Task Render_InvalidFile_PrintsEachErrorWithLineAndRendersNothing()
    {
        var path = Write("""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata:
              name: bad
            spec:
              command: [python]
              replicas: 0
              gpus: 2
            """);

        var result = await CliHarness.RunAsync(_home.Environment, "render", "-f", path);

        Assert.Equal(ExitCodes.UserError, result.ExitCode);
        Assert.Equal("", result.Out);
        Assert.Contains($"{path}:7:13: spec.replicas: must be at least 1, got 0", result.Error, StringComparison.Ordinal);
        Assert.Contains($"{path}:8:3: spec.gpus: unknown field 'gpus'", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Render_RelativeWorkingDir_PointsAtTheFieldInTheFile()
    {
        var path = Write("""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata:
              name: wd
            spec:
              command: [python, train.py]
              workingDir: src
            """);

        var result = await CliHarness.RunAsync(_home.Environment, "render", "-f", path);

        Assert.Equal(ExitCodes.UserError, result.ExitCode);
        Assert.Equal("", result.Out);
        Assert.Contains($"{path}:7:15: spec.workingDir: 'src' is relative", result.Error, StringComparison.Ordinal);
    }
}
