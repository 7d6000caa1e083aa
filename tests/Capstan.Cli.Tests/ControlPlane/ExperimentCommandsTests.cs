using System.Text.Json;
using Capstan.Client;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;

namespace Capstan.Cli.Tests.ControlPlane;

public sealed class ExperimentCommandsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Experiment(string name, string parameters, string script, string extra) => $$"""
        apiVersion: capstan.dev/v1alpha1
        kind: Experiment
        metadata:
          name: {{name}}
        spec:
          objective:
            type: minimize
            objectiveMetricName: loss
        {{extra}}
          parameters:
            - {{parameters}}
          trialTemplate:
            trialSpec:
              command: [/bin/sh, -c]
              args: ['{{script}}']
        """;

    private const string Grid = "{name: x, parameterType: discrete, feasibleSpace: {list: [3, 1, 2]}}";

    [Fact]
    public async Task Run_ExperimentFile_ExitsZeroWithProgressAndGetShowsTrialsSortedBestFirst()
    {
        using var home = new TempHome();
        var file = Path.Combine(home.Root, "experiment.yaml");
        await File.WriteAllTextAsync(file, Experiment("grid", Grid, "echo loss=${trialParameters.x}", "  algorithm: {algorithmName: grid}\n  parallelTrialCount: 2\n  maxTrialCount: 3"), Ct);

        var run = await CliHarness.RunAsync(home.Environment, "run", "-f", file);

        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Contains("experiment/grid created", run.Error, StringComparison.Ordinal);
        Assert.Contains("3/3 trials done", run.Error, StringComparison.Ordinal);
        Assert.Contains("best loss=1 (grid-trial-", run.Error, StringComparison.Ordinal);
        Assert.Contains("experiment/grid succeeded (MaxTrialsReached)", run.Error, StringComparison.Ordinal);

        var get = await CliHarness.RunAsync(home.Environment, "get", "experiment", "grid");
        Assert.Equal(0, get.ExitCode);
        var rows = get.Out.Split('\n').Where(l => l.Contains("grid-trial-", StringComparison.Ordinal) && l.Contains("Succeeded", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, rows.Count);
        Assert.StartsWith(ExperimentBest, rows[0].TrimStart(), StringComparison.Ordinal);
        Assert.Equal(["1", "2", "3"], rows.Select(r => r.Split(' ', StringSplitOptions.RemoveEmptyEntries).Reverse().First()));
        Assert.Contains("Best trial:", get.Out, StringComparison.Ordinal);

        var json = await CliHarness.RunAsync(home.Environment, "get", "experiment", "grid", "-o", "json");
        using var document = JsonDocument.Parse(json.Out);
        var status = document.RootElement.GetProperty("status");
        Assert.Equal(3, status.GetProperty("trialsSucceeded").GetInt32());
        Assert.Equal("1", status.GetProperty("currentOptimalTrial").GetProperty("parameterAssignments")[0].GetProperty("value").GetString());

        var list = await CliHarness.RunAsync(home.Environment, "get", "experiments");
        Assert.Contains("3/3", list.Out, StringComparison.Ordinal);
        Assert.Contains("loss=1", list.Out, StringComparison.Ordinal);

        var describe = await CliHarness.RunAsync(home.Environment, "describe", "experiment", "grid");
        Assert.Equal(0, describe.ExitCode);
        Assert.Matches(@"Succeeded\s+True\s+MaxTrialsReached", describe.Out);
        Assert.Contains("TrialCreated", describe.Out, StringComparison.Ordinal);
        Assert.Contains("TrialSucceeded", describe.Out, StringComparison.Ordinal);
        Assert.Contains("x (discrete) [3, 1, 2]", describe.Out, StringComparison.Ordinal);
    }

    private const string ExperimentBest = "*";

    [Fact]
    public async Task Run_ExperimentWhoseTrialsAllFail_ExitsOneWithTheReason()
    {
        using var home = new TempHome();
        var file = Path.Combine(home.Root, "experiment.yaml");
        await File.WriteAllTextAsync(file, Experiment("broken", Grid, "exit 2", "  algorithm: {algorithmName: grid}\n  parallelTrialCount: 1\n  maxTrialCount: 3\n  maxFailedTrialCount: 1"), Ct);

        var run = await CliHarness.RunAsync(home.Environment, "run", "-f", file);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("experiment/broken failed (MaxFailedTrialsReached)", run.Error, StringComparison.Ordinal);
        Assert.Contains("exit code 2", run.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Apply_KatibExperimentFile_PrintsWhatWasTranslatedAndApplies()
    {
        using var home = new TempHome();
        var file = Path.Combine(AppContext.BaseDirectory, "examples", "katib-experiment.yaml");

        var apply = await CliHarness.RunAsync(home.Environment, "apply", "-f", file);

        Assert.True(apply.ExitCode == 0, apply.Error);
        Assert.Contains("experiment/katib-random created", apply.Out, StringComparison.Ordinal);
        Assert.Contains($"{file}:9:1: translated Katib Experiment 'katib-random'", apply.Error, StringComparison.Ordinal);
        Assert.Contains("spec.metricsCollectorSpec: not translated: the File metrics collector is not supported", apply.Error, StringComparison.Ordinal);
        Assert.Contains("containers[0].volumeMounts: not translated", apply.Error, StringComparison.Ordinal);
        Assert.Contains("Job container 'training-container' → TrainJob spec (image, command, resources)", apply.Error, StringComparison.Ordinal);

        var yaml = await CliHarness.RunAsync(home.Environment, "get", "experiment", "katib-random", "-o", "yaml");
        Assert.Contains("apiVersion: capstan.dev/v1alpha1", yaml.Out, StringComparison.Ordinal);
        Assert.Contains("image: docker.io/kubeflowkatib/mxnet-mnist:latest", yaml.Out, StringComparison.Ordinal);
        Assert.Contains("reference: num-layers", yaml.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Apply_InvalidSearchSpace_NamesEachFieldPathAndAppliesNothing()
    {
        using var home = new TempHome();
        var file = Path.Combine(home.Root, "experiment.yaml");
        var yaml = Experiment("bad", "{name: lr, parameterType: double, feasibleSpace: {min: 0.5, max: 0.1}}", "echo loss=${trialParameters.learningRate}", "  maxTrialCount: 2\n  algorithm: {algorithmName: bogus}");
        await File.WriteAllTextAsync(file, yaml, Ct);

        var apply = await CliHarness.RunAsync(home.Environment, "apply", "-f", file);

        Assert.True(apply.ExitCode == 1, apply.Error);
        Assert.True(apply.Error.Contains("args[0]", StringComparison.Ordinal), apply.Error);
        Assert.Contains($"{file}:10:30: spec.algorithm.algorithmName: 'bogus'", apply.Error, StringComparison.Ordinal);
        Assert.Contains($"{file}:12:62: spec.parameters[0].feasibleSpace.min: min 0.5 is greater than max 0.1", apply.Error, StringComparison.Ordinal);
        Assert.Contains("spec.trialTemplate.trialSpec.args[0]: ${trialParameters.learningRate} names no parameter 'learningRate'", apply.Error, StringComparison.Ordinal);
        Assert.Contains("nothing was applied", apply.Error, StringComparison.Ordinal);
        var get = await CliHarness.RunAsync(home.Environment, "get", "experiments");
        Assert.Contains("No resources found", get.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_KilledMidExperiment_RestartedServerKeepsCompletedTrialsAndFinishes()
    {
        using var home = new TempHome();
        var port = ServerProcess.FreePort();
        var baseUrl = new Uri($"http://127.0.0.1:{port}/");
        using var http = new HttpClient { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(10) };
        using var client = new ResourceClient(baseUrl);
        var experiment = ResourceLoader.Load(Experiment("survivor", Grid, "sleep 1.5; echo loss=${trialParameters.x}", "  algorithm: {algorithmName: grid}\n  parallelTrialCount: 1\n  maxTrialCount: 3"), "experiment.yaml").Single();

        string firstRun;
        using (var server = ServerProcess.Start(port, home.Root))
        {
            await server.WaitHealthyAsync(http, Ct);
            await client.ApplyAsync(experiment, Ct);
            var midway = await WaitForAsync(client, "survivor", e => e.Status is { TrialsSucceeded: >= 1, TrialsRunning: 1 }, 60);
            firstRun = midway.Status!.TrialResults!.First(t => t.Phase == TrialPhase.Succeeded).RunId!;
            server.KillServerOnly();
        }

        using (var restarted = ServerProcess.Start(port, home.Root))
        {
            await restarted.WaitHealthyAsync(http, Ct);
            var done = await WaitForAsync(client, "survivor", e => e.Status?.Phase is ExperimentPhase.Succeeded or ExperimentPhase.Failed, 90);

            var status = done.Status!;
            Assert.True(status.Phase == ExperimentPhase.Succeeded, status.Message);
            var logs = string.Join("\n", Directory.GetFiles(Path.Combine(home.Root, "runtime"), "output.log", SearchOption.AllDirectories).Select(f => f + ": " + File.ReadAllText(f)));
            Assert.True((3, 3) == (status.Trials!.Value, status.TrialsSucceeded!.Value), string.Join("\n", status.TrialResults!.Select(t => $"{t.Name} {t.Phase} {t.Reason} {t.Message} reruns {t.Reruns} run {t.RunId}")) + "\n" + logs);
            Assert.Equal(firstRun, status.TrialResults!.Single(t => t.Index == 1).RunId);
            Assert.Equal(["1", "2", "3"], status.TrialResults!.Select(t => t.ParameterAssignments!.Single().Value!).Order(StringComparer.Ordinal));
            Assert.Equal("1", status.CurrentOptimalTrial!.ParameterAssignments!.Single().Value);
        }
    }

    private static async Task<TuningExperiment> WaitForAsync(IResourceStore store, string name, Func<TuningExperiment, bool> condition, int timeoutSeconds)
    {
        var until = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            var experiment = await store.GetAsync<TuningExperiment>("default", name, Ct);
            if (condition(experiment))
            {
                return experiment;
            }

            Assert.True(DateTime.UtcNow < until, $"{name}: still {experiment.Status?.Phase}: {experiment.Status?.Message}");
            await Task.Delay(100, Ct);
        }
    }
}
