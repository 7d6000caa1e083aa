using System.Text.Json;
using Capstan.Core;
using Capstan.Core.Registry;
using Capstan.Core.Tracking;
using Capstan.Store.Sqlite;

namespace Capstan.Cli.Tests;

/// <summary>The list/get/compare commands against a real SQLite store seeded by the test.</summary>
public sealed class CliOutputTests : IAsyncLifetime
{
    private readonly TempHome _home = new();
    private string _fastRun = string.Empty;
    private string _slowRun = string.Empty;

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await SqliteMetadataStore.OpenAsync(new CapstanHome(_home.Root).EnsureCreated().DatabasePath, ct);
        var experiment = await store.CreateExperimentAsync(new NewExperiment("mnist"), ct);
        var fast = await store.CreateRunAsync(new NewRun(experiment.ExperimentId, "fast"), ct);
        var slow = await store.CreateRunAsync(new NewRun(experiment.ExperimentId, "slow"), ct);
        await store.LogBatchAsync(fast.Info.RunId, new LogBatch(
            [new Metric("accuracy", 0.91, 1, 1), new Metric("accuracy", 0.97, 2, 2)],
            [new Param("lr", "0.1"), new Param("batch_size", "64")]), ct);
        await store.LogBatchAsync(slow.Info.RunId, new LogBatch(
            [new Metric("accuracy", 0.88, 1, 1)],
            [new Param("lr", "0.001"), new Param("batch_size", "64")]), ct);
        await store.UpdateRunAsync(fast.Info.RunId, new RunUpdate(RunStatus.Finished, 3), ct);
        await store.CreateRegisteredModelAsync(new NewRegisteredModel("digits", "handwritten digits"), ct);
        await store.CreateModelVersionAsync(new NewModelVersion("digits", fast.Info.ArtifactUri + "/model", fast.Info.RunId), ct);
        await store.CreateModelVersionAsync(new NewModelVersion("digits", slow.Info.ArtifactUri + "/model", slow.Info.RunId), ct);
        _fastRun = fast.Info.RunId;
        _slowRun = slow.Info.RunId;
    }

    public ValueTask DisposeAsync()
    {
        _home.Dispose();
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task RunsList_Json_ReturnsSeededRunsWithLatestMetric()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "runs", "list", "--experiment", "mnist", "-o", "json");

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        var runs = JsonSerializer.Deserialize<List<Run>>(result.Out, CapstanJson.Options)!;
        Assert.Equal(new[] { _fastRun, _slowRun }.Order(StringComparer.Ordinal), runs.Select(r => r.Info.RunId).Order(StringComparer.Ordinal));
        Assert.Equal(0.97, runs.Single(r => r.Info.RunId == _fastRun).Data.Metrics.Single(m => m.Key == "accuracy").Value);
    }

    [Fact]
    public async Task RunsList_TableWithFilter_ShowsOnlyMatchingRunAndKeyColumns()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "runs", "list", "-e", "mnist", "--filter", "metrics.accuracy > 0.9");

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        Assert.Contains(_fastRun, result.Out, StringComparison.Ordinal);
        Assert.DoesNotContain(_slowRun, result.Out, StringComparison.Ordinal);
        Assert.Contains("accuracy", result.Out, StringComparison.Ordinal);
        Assert.Contains("batch_size", result.Out, StringComparison.Ordinal);
        Assert.Contains("FINISHED", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunsCompare_TwoRuns_MarksOnlyDifferingParams()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "runs", "compare", _fastRun, _slowRun);

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        var lines = result.Out.Split('\n');
        var lr = Assert.Single(lines, l => l.Contains("params.lr", StringComparison.Ordinal));
        Assert.Contains("*", lr, StringComparison.Ordinal);
        Assert.Contains("0.001", lr, StringComparison.Ordinal);
        var batch = Assert.Single(lines, l => l.Contains("params.batch_size", StringComparison.Ordinal));
        Assert.DoesNotContain("*", batch, StringComparison.Ordinal);
        var accuracy = Assert.Single(lines, l => l.Contains("metrics.accuracy", StringComparison.Ordinal));
        Assert.Contains("0.97", accuracy, StringComparison.Ordinal);
        Assert.Contains("0.88", accuracy, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunsGet_UnknownRun_OneLineErrorAndUserErrorExit()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "runs", "get", "does-not-exist");

        Assert.Equal(ExitCodes.UserError, result.ExitCode);
        Assert.Equal(string.Empty, result.Out);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error:", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunsList_UnknownExperiment_UserError()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "runs", "list", "--experiment", "nope");

        Assert.Equal(ExitCodes.UserError, result.ExitCode);
        Assert.Contains("nope", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ModelsAlias_SetThenDelete_VisibleInModelsGet()
    {
        var set = await CliHarness.RunAsync(_home.Environment, "models", "alias", "digits", "champion", "2");
        var afterSet = await CliHarness.RunAsync(_home.Environment, "models", "get", "digits", "-o", "json");
        var delete = await CliHarness.RunAsync(_home.Environment, "models", "alias", "digits", "champion", "--delete");
        var afterDelete = await CliHarness.RunAsync(_home.Environment, "models", "get", "digits", "-o", "json");

        Assert.Equal(ExitCodes.Ok, set.ExitCode);
        Assert.Equal(ExitCodes.Ok, delete.ExitCode);
        var model = JsonSerializer.Deserialize<RegisteredModel>(afterSet.Out, CapstanJson.Options)!;
        Assert.Equal(new ModelAlias("champion", 2), Assert.Single(model.Aliases));
        Assert.Empty(JsonSerializer.Deserialize<RegisteredModel>(afterDelete.Out, CapstanJson.Options)!.Aliases);
    }

    [Fact]
    public async Task ModelsVersions_Yaml_ListsBothVersionsNewestFirst()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "models", "versions", "digits", "-o", "yaml");

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        var versionLines = result.Out.Split('\n').Where(l => l.TrimStart('-', ' ').StartsWith("version:", StringComparison.Ordinal)).ToList();
        Assert.Equal(["2", "1"], versionLines.Select(l => l.Split(':')[1].Trim()));
    }

    [Fact]
    public async Task ModelsList_Table_ShowsModelAndLatestVersion()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "models", "list");

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        var row = Assert.Single(result.Out.Split('\n'), l => l.Contains("digits", StringComparison.Ordinal));
        Assert.Contains("handwritten digits", row, StringComparison.Ordinal);
        Assert.Contains(" 2 ", row, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExperimentsCreate_NewName_PrintsIdAndListsIt()
    {
        var created = await CliHarness.RunAsync(_home.Environment, "experiments", "create", "cifar");
        var listed = await CliHarness.RunAsync(_home.Environment, "experiments", "list", "-o", "json");

        Assert.Equal(ExitCodes.Ok, created.ExitCode);
        var experiments = JsonSerializer.Deserialize<List<Experiment>>(listed.Out, CapstanJson.Options)!;
        Assert.Equal(created.Out.Trim(), experiments.Single(e => e.Name == "cifar").ExperimentId);
        var duplicate = await CliHarness.RunAsync(_home.Environment, "experiments", "create", "cifar");
        Assert.Equal(ExitCodes.UserError, duplicate.ExitCode);
    }

    [Fact]
    public async Task UnknownCommand_UsageExit()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "runs", "frobnicate");

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
    }
}
