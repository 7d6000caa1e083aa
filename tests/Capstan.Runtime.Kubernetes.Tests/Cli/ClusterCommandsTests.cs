using System.Text.Json.Nodes;
using Capstan.Cli;
using Capstan.Runtime.Kubernetes.Tests.Operator;
using k8s;
using k8s.Models;
using static Capstan.Runtime.Kubernetes.Tests.Operator.OperatorHarness;

namespace Capstan.Runtime.Kubernetes.Tests.Cli;

/// <summary><c>capstan apply/get/describe/logs/delete --context</c> and <c>capstan operator</c>, in-process, against the fake API server through a kubeconfig the test writes.</summary>
public sealed class ClusterCommandsTests : IAsyncLifetime
{
    private const string TrainJobYaml = """
        apiVersion: capstan.dev/v1alpha1
        kind: TrainJob
        metadata:
          name: mnist
          labels:
            team: vision
        spec:
          image: registry.example/trainer:1
          command: [python, train.py]
          backoffLimit: 2
          restartPolicy: OnFailure
        """;

    private OperatorHarness _cluster = null!;
    private string _folder = null!;
    private string _kubeconfig = null!;

    public async ValueTask InitializeAsync()
    {
        _cluster = await OperatorHarness.StartAsync();
        _folder = Directory.CreateTempSubdirectory("capstan-k8s-cli-").FullName;
        _kubeconfig = _cluster.Server.WriteKubeconfig(Path.Combine(_folder, "kubeconfig"), context: "lab");
    }

    public async ValueTask DisposeAsync()
    {
        await _cluster.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Apply_WithContext_CreatesThenConfiguresTheCustomResource()
    {
        var file = WriteFile("job.yaml", TrainJobYaml);

        var created = await RunAsync("apply", "-f", file, "--context", "lab", "--kubeconfig", _kubeconfig);
        var again = await RunAsync("apply", "-f", file, "--context", "lab", "--kubeconfig", _kubeconfig);
        var changed = await RunAsync("apply", "-f", WriteFile("job2.yaml", TrainJobYaml.Replace("trainer:1", "trainer:2", StringComparison.Ordinal)), "--context", "lab", "--kubeconfig", _kubeconfig);

        Assert.Equal((0, "trainjob/mnist created"), (created.ExitCode, created.Out.Trim()));
        Assert.Equal("trainjob/mnist unchanged", again.Out.Trim());
        Assert.Equal("trainjob/mnist configured", changed.Out.Trim());
        var stored = _cluster.TrainJob("mnist");
        Assert.Equal("registry.example/trainer:2", stored["spec"]!["image"]!.GetValue<string>());
        Assert.Equal("vision", stored["metadata"]!["labels"]!["team"]!.GetValue<string>());
        Assert.Equal(2, stored["metadata"]!["generation"]!.GetValue<long>());
        Assert.Equal(2, stored["spec"]!["backoffLimit"]!.GetValue<int>());
    }

    [Fact]
    public async Task Apply_KubeconfigFromEnvironment_UsesItsContext()
    {
        var result = await RunWithAsync(new() { ["KUBECONFIG"] = _kubeconfig }, "apply", "-f", WriteFile("job.yaml", TrainJobYaml), "--context", "lab");

        Assert.Equal(0, result.ExitCode);
        Assert.NotNull(_cluster.TryTrainJob("mnist"));
    }

    [Fact]
    public async Task Apply_UnknownContext_FailsWithOneLine()
    {
        var result = await RunAsync("apply", "-f", WriteFile("job.yaml", TrainJobYaml), "--context", "prod", "--kubeconfig", _kubeconfig);

        Assert.Equal(ExitCodes.UserError, result.ExitCode);
        Assert.Contains("context 'prod'", result.Error, StringComparison.Ordinal);
        Assert.Null(_cluster.TryTrainJob("mnist"));
    }

    [Fact]
    public async Task GetAndDescribe_WithContext_ShowWhatTheOperatorWrote()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        await RunAsync("apply", "-f", WriteFile("job.yaml", TrainJobYaml), "--context", "lab", "--kubeconfig", _kubeconfig);
        await WaitForAsync(async () => await _cluster.JobAsync("mnist") is not null, "the Job");
        await _cluster.SetJobStatusAsync("mnist", s => { s.Active = 1; s.StartTime = DateTime.UtcNow; });
        await WaitForAsync(() => _cluster.Phase("mnist") == "Running", "phase Running");

        var table = await RunAsync("get", "tj", "--context", "lab", "--kubeconfig", _kubeconfig);
        var yaml = await RunAsync("get", "trainjob/mnist", "-o", "yaml", "--context", "lab", "--kubeconfig", _kubeconfig);
        var describe = await RunAsync("describe", "tj", "mnist", "--context", "lab", "--kubeconfig", _kubeconfig);

        Assert.Equal(0, table.ExitCode);
        var row = table.Out.Split('\n').Single(l => l.StartsWith("mnist", StringComparison.Ordinal));
        Assert.Contains("Running", row, StringComparison.Ordinal);
        Assert.Contains($"uid: {_cluster.TrainJob("mnist")["metadata"]!["uid"]!.GetValue<string>()}", yaml.Out, StringComparison.Ordinal);
        Assert.Contains("phase: Running", yaml.Out, StringComparison.Ordinal);
        Assert.Equal(0, describe.ExitCode);
        Assert.Contains("Created", describe.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Logs_WithContext_PrintsThePodsLogs()
    {
        await _cluster.CreateTrainJobAsync("mnist");
        await _cluster.Client.CoreV1.CreateNamespacedPodAsync(new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "mnist-abcde", Labels = new Dictionary<string, string> { ["batch.kubernetes.io/job-name"] = "mnist" } },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "trainer", Image = "trainer:1" }] },
        }, "default");
        _cluster.Server.Objects.SetPodLog("default", "mnist-abcde", "epoch=1 loss=0.9\nepoch=2 loss=0.4\n");

        var result = await RunAsync("logs", "job/mnist", "--context", "lab", "--kubeconfig", _kubeconfig);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(["epoch=1 loss=0.9", "epoch=2 loss=0.4"], result.Out.Trim().Split('\n'));
    }

    [Fact]
    public async Task Delete_WithContext_RemovesTheResourceAndItsJob()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        await RunAsync("apply", "-f", WriteFile("job.yaml", TrainJobYaml), "--context", "lab", "--kubeconfig", _kubeconfig);
        await WaitForAsync(async () => await _cluster.JobAsync("mnist") is not null, "the Job");

        var result = await RunAsync("delete", "tj/mnist", "--context", "lab", "--kubeconfig", _kubeconfig);
        var missing = await RunAsync("get", "tj", "mnist", "--context", "lab", "--kubeconfig", _kubeconfig);

        Assert.Equal((0, "trainjob \"mnist\" deleted"), (result.ExitCode, result.Out.Trim()));
        Assert.Null(_cluster.TryTrainJob("mnist"));
        await WaitForAsync(async () => await _cluster.JobAsync("mnist") is null, "the Job to be collected");
        Assert.Equal(ExitCodes.UserError, missing.ExitCode);
        Assert.Contains("not found", missing.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Apply_ExampleExperiment_WithContext_TheOperatorRunsItsTrialsAndDescribeShowsTheBest()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        var applied = await RunAsync("apply", "-f", Path.Combine(Repository.Examples, "experiment-tabular.yaml"), "--context", "lab", "--kubeconfig", _kubeconfig);
        Assert.Equal((0, "experiment/iris-tuning created"), (applied.ExitCode, applied.Out.Trim()));

        // The example's 8 trials, 2 at a time; each prints its final metrics as the trainer does, lower log loss for a higher learning rate.
        var losses = new Dictionary<string, double>();
        for (var i = 1; i <= 8; i++)
        {
            var trial = $"iris-tuning-trial-{i}";
            await WaitForAsync(() => _cluster.TryTrainJob(trial) is not null, trial, onTimeout: () => Experiment()?["status"]?.ToJsonString() ?? "no status");
            var args = _cluster.TrainJob(trial)["spec"]!["args"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
            Assert.DoesNotContain(args, a => a.Contains("${", StringComparison.Ordinal));
            var rate = double.Parse(args[args.IndexOf("--learning-rate") + 1], System.Globalization.CultureInfo.InvariantCulture);
            losses[trial] = 1 - rate;
            await _cluster.RunJobPodAsync(trial, $"Training lightgbm on examples/data/iris.csv\nlog_loss={losses[trial].ToString("R", System.Globalization.CultureInfo.InvariantCulture)} accuracy=0.9\n");
            await _cluster.CompleteJobAsync(trial);
        }

        await WaitForAsync(() => Experiment()?["status"]?["phase"]?.GetValue<string>() == "Succeeded", "the experiment to succeed", onTimeout: () => Experiment()?["status"]?.ToJsonString() ?? "no status");
        var described = await RunAsync("describe", "experiment", "iris-tuning", "--context", "lab", "--kubeconfig", _kubeconfig);
        Assert.Equal(0, described.ExitCode);
        var best = losses.MinBy(l => l.Value);
        var line = described.Out.Split('\n').Single(l => l.TrimStart().StartsWith("Best trial:", StringComparison.Ordinal));
        Assert.Contains($" {best.Key} (", line, StringComparison.Ordinal);
        Assert.EndsWith($"log_loss={best.Value.ToString("G6", System.Globalization.CultureInfo.InvariantCulture)}", line.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OperatorCommand_RunsTheControllersUntilStopped()
    {
        using var stop = new CancellationTokenSource();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var context = new CliContext(CliContext.CreatePlainConsole(stdout), CliContext.CreatePlainConsole(stderr), _ => null);
        var running = CapstanCli.RunAsync(["operator", "--kubeconfig", _kubeconfig, "--identity", "cli-op", "--lease-namespace", "default"], context, stop.Token);

        await _cluster.CreateTrainJobAsync("mnist", new JsonObject { ["image"] = "trainer:1" });
        await WaitForAsync(async () => await _cluster.JobAsync("mnist") is not null, "the operator to create the Job");
        var held = await _cluster.Client.CoordinationV1.ReadNamespacedLeaseAsync("capstan-operator", "default");
        await stop.CancelAsync();

        Assert.Equal(0, await running);
        Assert.Equal("cli-op", held.Spec.HolderIdentity);
        var lease = await _cluster.Client.CoordinationV1.ReadNamespacedLeaseAsync("capstan-operator", "default");
        Assert.Equal("", lease.Spec.HolderIdentity); // Released on the way out, for a standby to take at once.
        Assert.Contains("Stopped.", stderr.ToString(), StringComparison.Ordinal);
    }

    private JsonObject? Experiment()
    {
        try
        {
            return _cluster.Server.Objects.Get(_cluster.Server.Type("capstan.dev", "experiments"), "default", "iris-tuning");
        }
        catch (FakeApiServer.ApiException e) when (e.Code == 404)
        {
            return null;
        }
    }

    private string WriteFile(string name, string text)
    {
        var path = Path.Combine(_folder, name);
        File.WriteAllText(path, text);
        return path;
    }

    private Task<(int ExitCode, string Out, string Error)> RunAsync(params string[] args) => RunWithAsync([], args);

    private async Task<(int ExitCode, string Out, string Error)> RunWithAsync(Dictionary<string, string?> environment, params string[] args)
    {
        environment["CAPSTAN_HOME"] = Path.Combine(_folder, "home");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var context = new CliContext(CliContext.CreatePlainConsole(stdout, 250), CliContext.CreatePlainConsole(stderr, 250), n => environment.GetValueOrDefault(n));
        var exitCode = await CapstanCli.RunAsync(args, context);
        return (exitCode, stdout.ToString(), stderr.ToString());
    }
}
