using System.Security.Cryptography;
using System.Text.Json;
using Capstan.Client;
using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.Tracking;
using Capstan.Store.Artifacts;
using Capstan.Store.Sqlite;

namespace Capstan.Cli.Tests;

public sealed class TrainTabularTests
{
    private static string IrisCsv => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "Data", "iris.csv"));

    [Fact]
    public async Task TrainTabular_Iris_TracksRunUploadsOnnxAndRegistersAlias()
    {
        var ct = TestContext.Current.CancellationToken;
        using var home = new TempHome();

        var result = await CliHarness.RunAsync(home.Environment,
            "train", "tabular", "--data", IrisCsv, "--label", "species", "--experiment", "iris", "--register", "iris@candidate", "--iterations", "50");

        Assert.True(result.ExitCode == ExitCodes.Ok, result.Error);
        var printed = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=')).ToDictionary(p => p[0], p => double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(["accuracy", "log_loss", "macro_accuracy"], printed.Keys.Order());
        Assert.True(printed["accuracy"] >= 0.9, $"accuracy {printed["accuracy"]}");
        Assert.Contains("iris v1 @candidate", result.Error, StringComparison.Ordinal);

        var capstanHome = new CapstanHome(home.Root);
        await using var store = await SqliteMetadataStore.OpenAsync(capstanHome.DatabasePath, ct);
        var experiment = await store.GetExperimentByNameAsync("iris", ct);
        var run = Assert.Single((await store.SearchRunsAsync(new RunSearch([experiment.ExperimentId]), ct)).Items);
        Assert.Equal(RunStatus.Finished, run.Info.Status);
        Assert.Contains(new Param("algorithm", "lightgbm"), run.Data.Params);
        Assert.Contains(new Param("task", "multiclass"), run.Data.Params);
        Assert.Contains(new Param("trees", "50"), run.Data.Params);
        Assert.Contains(new Param("features", "4"), run.Data.Params);
        var curve = (await store.GetMetricHistoryAsync(run.Info.RunId, "accuracy", cancellationToken: ct)).Items;
        Assert.Equal([5L, 10, 15, 20, 25, 30, 35, 40, 45, 50], curve.Select(m => m.Step));
        Assert.Equal(printed["accuracy"], curve[^1].Value, 9);

        var dataset = Assert.Single(run.Inputs).Dataset;
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(IrisCsv)))[..32], dataset.Digest);

        var artifacts = new FolderArtifactStore(capstanHome.ArtifactsPath);
        var root = ArtifactUri.ToStorePath(run.Info.ArtifactUri);
        var files = (await artifacts.ListAsync(root + "/model", ct)).Select(f => Path.GetFileName(f.Path)).Order();
        Assert.Equal(["model.onnx", "signature.json"], files);

        var version = await store.GetModelVersionByAliasAsync("iris", "candidate", ct);
        Assert.Equal(run.Info.ArtifactUri + "/model", version.Source);
        using var inputs = JsonDocument.Parse(version.Signature!.Inputs!);
        Assert.Equal(["sepal_length", "sepal_width", "petal_length", "petal_width"], inputs.RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()));
        Assert.All(inputs.RootElement.EnumerateArray(), e => Assert.Equal("float32", e.GetProperty("tensor-spec").GetProperty("dtype").GetString()));
    }

    [Fact]
    public async Task TrainTabular_InsideTrainJob_LogsIntoTheJobsRunAndLeavesItRunning()
    {
        var ct = TestContext.Current.CancellationToken;
        using var home = new TempHome();
        var capstanHome = new CapstanHome(home.Root);
        capstanHome.EnsureCreated();
        string runId;
        await using (var store = await SqliteMetadataStore.OpenAsync(capstanHome.DatabasePath, ct))
        {
            var experiment = await store.CreateExperimentAsync(new NewExperiment("job"), ct);
            runId = (await store.CreateRunAsync(new NewRun(experiment.ExperimentId), ct)).Info.RunId;
        }

        var environment = home.Environment;
        environment["CAPSTAN_RUN_ID"] = runId;
        var result = await CliHarness.RunAsync(environment, "train", "tabular", "--data", IrisCsv, "--label", "species", "--algorithm", "sdca");

        Assert.True(result.ExitCode == ExitCodes.Ok, result.Error);
        await using var reopened = await SqliteMetadataStore.OpenAsync(capstanHome.DatabasePath, ct);
        var runs = (await reopened.SearchRunsAsync(new RunSearch([(await reopened.GetExperimentByNameAsync("job", ct)).ExperimentId]), ct)).Items;
        var run = Assert.Single(runs);
        Assert.Equal(RunStatus.Running, run.Info.Status);
        Assert.Contains(new Param("algorithm", "sdca"), run.Data.Params);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i * 2), (await reopened.GetMetricHistoryAsync(runId, "log_loss", cancellationToken: ct)).Items.Select(m => m.Step));
        var elsewhere = await reopened.SearchRunsAsync(new RunSearch([(await reopened.GetExperimentByNameAsync("Default", ct)).ExperimentId]), ct);
        Assert.Empty(elsewhere.Items);
    }

    [Fact]
    public async Task TrainTabular_AgainstServer_LogsRunAndModelThroughTheApi()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await InProcessServer.StartAsync(ct);

        var result = await CliHarness.RunAsync(
            new Dictionary<string, string?> { ["CAPSTAN_URL"] = server.Url.AbsoluteUri },
            "train", "tabular", "--data", IrisCsv, "--label", "species", "--algorithm", "fasttree", "--iterations", "20", "--register", "iris-remote");

        Assert.True(result.ExitCode == ExitCodes.Ok, result.Error);
        using var client = new CapstanClient(server.Url);
        var version = await client.GetModelVersionAsync("iris-remote", 1, ct);
        var run = await client.GetRunAsync(version.RunId!, ct);
        Assert.Equal(RunStatus.Finished, run.Info.Status);
        Assert.Contains(new Param("algorithm", "fasttree"), run.Data.Params);
        Assert.Single(run.Inputs);
        await using var onnx = await client.OpenReadAsync(ArtifactUri.ToStorePath(run.Info.ArtifactUri) + "/model/model.onnx", ct);
        using var copy = new MemoryStream();
        await onnx.CopyToAsync(copy, ct);
        Assert.True(copy.Length > 1000, $"model.onnx is {copy.Length} bytes");
    }

    [Theory]
    [InlineData("missing", "species", "auto", "does not exist")]
    [InlineData("empty", "species", "auto", "is empty")]
    [InlineData("iris", "colour", "auto", "has no column 'colour'")]
    [InlineData("iris", "species", "regression", "label column 'species' has the non-numeric value 'setosa'")]
    public async Task TrainTabular_BadInput_OneLineNamingFileOrColumnAndExitCodeOne(string data, string label, string task, string expected)
    {
        using var home = new TempHome();
        var path = data switch
        {
            "iris" => IrisCsv,
            "empty" => Path.Combine(home.Root, "empty.csv"),
            _ => Path.Combine(home.Root, "missing.csv"),
        };
        if (data == "empty")
        {
            await File.WriteAllTextAsync(path, string.Empty, TestContext.Current.CancellationToken);
        }

        var result = await CliHarness.RunAsync(home.Environment, "train", "tabular", "--data", path, "--label", label, "--task", task);

        Assert.Equal(ExitCodes.UserError, result.ExitCode);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.Contains(Path.GetFileName(path), line, StringComparison.Ordinal);
        Assert.Equal(string.Empty, result.Out);
    }
}
