using Capstan.Cli.Quickstart;
using Capstan.Core.Artifacts;
using Capstan.Core.Tracking;
using Capstan.Store.Artifacts;
using Capstan.Store.Sqlite;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Capstan.Cli.Tests;

public sealed class QuickstartTests
{
    [Fact]
    public async Task Quickstart_FreshHome_TracksTrainsAndRegistersChampion()
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
        var experiment = await store.GetExperimentByNameAsync(QuickstartCommand.ExperimentName, ct);
        var run = Assert.Single((await store.SearchRunsAsync(new RunSearch([experiment.ExperimentId]), ct)).Items);

        Assert.Equal(RunStatus.Finished, run.Info.Status);
        Assert.Contains(new Param("trainer", IrisTrainer.TrainerName), run.Data.Params);
        Assert.Contains(new Param("seed", "42"), run.Data.Params);
        var accuracy = (await store.GetMetricHistoryAsync(run.Info.RunId, "accuracy", cancellationToken: ct)).Items;
        Assert.Equal(Enumerable.Range(1, QuickstartCommand.Iterations).Select(i => (long)i), accuracy.Select(m => m.Step));
        Assert.True(accuracy[^1].Value > 0.9, $"final accuracy {accuracy[^1].Value}");
        Assert.Equal(QuickstartCommand.Iterations, (await store.GetMetricHistoryAsync(run.Info.RunId, "log_loss", cancellationToken: ct)).Items.Count);
        var dataset = Assert.Single(run.Inputs).Dataset;
        Assert.Equal(IrisData.Digest(IrisData.ReadCsv()), dataset.Digest);

        var champion = await store.GetModelVersionByAliasAsync(QuickstartCommand.ModelName, QuickstartCommand.ChampionAlias, ct);
        Assert.Equal(run.Info.RunId, champion.RunId);
        Assert.Equal(run.Info.ArtifactUri + "/model", champion.Source);
        Assert.Contains("sepal_length", champion.Signature?.Inputs, StringComparison.Ordinal);

        // The artifact is the real model: load it back and classify a textbook setosa.
        var modelPath = Path.Combine(home.Root, "downloaded.zip");
        await using (var download = await artifacts.OpenReadAsync(ArtifactUri.ToStorePath(run.Info.ArtifactUri) + "/model/model.zip", ct))
        await using (var file = File.Create(modelPath))
        {
            await download.CopyToAsync(file, ct);
        }

        var ml = new MLContext(seed: 1);
        var model = ml.Model.Load(modelPath, out _);
        var engine = ml.Model.CreatePredictionEngine<IrisFlower, IrisPrediction>(model);
        var prediction = engine.Predict(new IrisFlower { SepalLength = 5.1f, SepalWidth = 3.5f, PetalLength = 1.4f, PetalWidth = 0.2f });
        Assert.Equal("setosa", prediction.PredictedLabel);
    }

    [Fact]
    public async Task Quickstart_RunTwiceOnSameHome_AddsSecondVersionAndMovesChampion()
    {
        var ct = TestContext.Current.CancellationToken;
        using var home = new TempHome();

        var first = await CliHarness.RunAsync(new Dictionary<string, string?>(), "quickstart", "--home", home.Root);
        var second = await CliHarness.RunAsync(home.Environment, "quickstart");

        Assert.Equal(ExitCodes.Ok, first.ExitCode);
        Assert.True(second.ExitCode == ExitCodes.Ok, second.Error);
        await using var store = await SqliteMetadataStore.OpenAsync(new Capstan.Core.CapstanHome(home.Root).DatabasePath, ct);
        var champion = await store.GetModelVersionByAliasAsync(QuickstartCommand.ModelName, QuickstartCommand.ChampionAlias, ct);
        Assert.Equal(2, champion.Version);
    }

    private sealed class IrisPrediction
    {
        [ColumnName("PredictedLabel")]
        public string PredictedLabel { get; set; } = string.Empty;
    }
}
