using Capstan.Cli.Quickstart;
using Capstan.Core.Artifacts;
using Capstan.Core.ControlPlane;
using Capstan.Core.Tracking;
using Capstan.Server.ControlPlane;
using Capstan.Store.Artifacts;
using Capstan.Store.Sqlite;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Capstan.Cli.Tests;

public sealed class QuickstartTests
{
    [Fact]
    public async Task Quickstart_FreshHome_TrainsThroughTrainJobAndRegistersOnnxChampion()
    {
        var ct = TestContext.Current.CancellationToken;
        using var home = new TempHome();

        var result = await CliHarness.RunAsync(new Dictionary<string, string?>(), "quickstart", "--home", home.Root);

        Assert.True(result.ExitCode == ExitCodes.Ok, result.Error);
        Assert.Contains("iris-classifier v1 @champion", result.Out, StringComparison.Ordinal);
        Assert.Contains("./capstan runs list --experiment quickstart", result.Out, StringComparison.Ordinal);

        var capstanHome = new Capstan.Core.CapstanHome(home.Root);
        await using var store = await SqliteMetadataStore.OpenAsync(capstanHome.DatabasePath, ct);
        var artifacts = new FolderArtifactStore(capstanHome.ArtifactsPath);

        // The training ran as a TrainJob, in a child process that logged into the job's run.
        var job = await store.GetAsync<Capstan.Core.Resources.TrainJob>("default", QuickstartTraining.JobName, ct);
        Assert.Equal(Capstan.Core.Resources.TrainJobPhase.Succeeded, job.Status!.Phase);
        var experiment = await store.GetExperimentByNameAsync(QuickstartCommand.ExperimentName, ct);
        var runs = (await store.SearchRunsAsync(new RunSearch([experiment.ExperimentId]), ct)).Items;

        // Before it, the tuning experiment's trials ran as runs nested under its parent run.
        var tuning = await store.GetAsync<Capstan.Core.Resources.TuningExperiment>("default", QuickstartTuning.ExperimentName, ct);
        Assert.Equal(Capstan.Core.Resources.ExperimentPhase.Succeeded, tuning.Status!.Phase);
        Assert.Equal(QuickstartTuning.Trials, runs.Count(r => r.Data.Tags.Any(t => t.Key == TrainJobReconciler.ParentRunIdTag && t.Value == tuning.Status.RunId)));
        Assert.Equal(QuickstartTuning.Trials + 2, runs.Count);
        var run = Assert.Single(runs, r => r.Info.RunId == job.Status.RunId);
        Assert.Equal(RunStatus.Finished, run.Info.Status);
        Assert.Contains(run.Data.Tags, t => t is { Key: TrainJobReconciler.TrainJobTag, Value: "default/quickstart-iris" });
        Assert.Contains(new Param("seed", "42"), run.Data.Params);
        var accuracy = (await store.GetMetricHistoryAsync(run.Info.RunId, "accuracy", cancellationToken: ct)).Items;
        Assert.True(accuracy.Count >= 5, $"a learning curve of {accuracy.Count} points");
        Assert.Equal(accuracy.Select(m => m.Step).Order(), accuracy.Select(m => m.Step));
        Assert.True(accuracy[^1].Value > 0.9, $"final accuracy {accuracy[^1].Value}");
        var dataset = Assert.Single(run.Inputs).Dataset;
        Assert.False(string.IsNullOrEmpty(dataset.Digest));

        var champion = await store.GetModelVersionByAliasAsync(QuickstartCommand.ModelName, QuickstartCommand.ChampionAlias, ct);
        Assert.Equal(run.Info.RunId, champion.RunId);
        Assert.Equal(run.Info.ArtifactUri + "/model", champion.Source);
        Assert.Contains("sepal_length", champion.Signature?.Inputs, StringComparison.Ordinal);

        // The artifact is the real ONNX model: ONNX Runtime classifies a textbook setosa with it.
        var modelPath = Path.Combine(home.Root, "downloaded.onnx");
        await using (var download = await artifacts.OpenReadAsync(ArtifactUri.ToStorePath(run.Info.ArtifactUri) + "/model/model.onnx", ct))
        await using (var file = File.Create(modelPath))
        {
            await download.CopyToAsync(file, ct);
        }

        using var session = new InferenceSession(modelPath);
        var flower = new Dictionary<string, float> { ["sepal_length"] = 5.1f, ["sepal_width"] = 3.5f, ["petal_length"] = 1.4f, ["petal_width"] = 0.2f };
        var inputs = session.InputMetadata.Keys.Select(name => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(new[] { flower[name] }, [1, 1]))).ToList();
        using var outputs = session.Run(inputs);
        var label = outputs.First(o => o.Value is Tensor<string>).AsTensor<string>();
        Assert.Equal("setosa", label[0]);
    }

    [Fact]
    public async Task Quickstart_RunTwiceOnSameHome_AddsSecondVersionAndMovesChampion()
    {
        var ct = TestContext.Current.CancellationToken;
        using var home = new TempHome();

        var first = await CliHarness.RunAsync(new Dictionary<string, string?>(), "quickstart", "--home", home.Root);
        var second = await CliHarness.RunAsync(home.Environment, "quickstart");

        Assert.True(first.ExitCode == ExitCodes.Ok, first.Error);
        Assert.True(second.ExitCode == ExitCodes.Ok, second.Error);
        await using var store = await SqliteMetadataStore.OpenAsync(new Capstan.Core.CapstanHome(home.Root).DatabasePath, ct);
        var champion = await store.GetModelVersionByAliasAsync(QuickstartCommand.ModelName, QuickstartCommand.ChampionAlias, ct);
        Assert.Equal(2, champion.Version);
    }

    [Fact]
    public async Task Quickstart_HomeHeldByAnotherControlPlane_FailsWithOneLineNamingIt()
    {
        using var home = new TempHome();
        using var held = ControlPlaneLock.Acquire(Path.Combine(home.Root, ControlPlaneHosting.RuntimeFolder));

        var result = await CliHarness.RunAsync(new Dictionary<string, string?>(), "quickstart", "--home", home.Root);

        Assert.Equal(ExitCodes.Unavailable, result.ExitCode);
        Assert.Contains("Another Capstan control plane", result.Error, StringComparison.Ordinal);
        Assert.Contains($"pid {Environment.ProcessId}", result.Error, StringComparison.Ordinal);
    }
}
