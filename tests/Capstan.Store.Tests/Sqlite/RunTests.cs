using System.Diagnostics;
using Capstan.Core;
using Capstan.Core.Tracking;

namespace Capstan.Store.Tests.Sqlite;

public sealed class RunTests : StoreTestBase
{
    [Fact]
    public async Task CreateRun_NoName_GetsReadableNameUserAndArtifactUri()
    {
        var run = await NewRunAsync("0");

        Assert.Matches("^[0-9a-f]{32}$", run.Info.RunId);
        Assert.Matches("^[a-z]+-[a-z]+-[0-9]+$", run.Info.RunName);
        Assert.Equal(Environment.UserName, run.Info.UserId);
        Assert.Equal($"mlflow-artifacts:/0/{run.Info.RunId}/artifacts", run.Info.ArtifactUri);
        var fetched = await Store.GetRunAsync(run.Info.RunId, Ct);
        Assert.Equal(run.Info, fetched.Info);
        Assert.Contains(new Tag("mlflow.runName", run.Info.RunName), fetched.Data.Tags);
    }

    [Fact]
    public async Task GetRun_UnknownId_NotFoundNamingId()
    {
        var error = await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.GetRunAsync("deadbeef", Ct));
        Assert.Equal("Run with id=deadbeef not found", error.Message);
    }

    [Fact]
    public async Task CreateRun_UnknownExperiment_NotFound() =>
        await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.CreateRunAsync(new NewRun("77"), Ct));

    [Fact]
    public async Task UpdateRun_StatusEndAndName_Persisted()
    {
        var run = await NewRunAsync("0", "first");

        var info = await Store.UpdateRunAsync(run.Info.RunId, new RunUpdate(RunStatus.Finished, 1234, "second"), Ct);

        Assert.Equal(RunStatus.Finished, info.Status);
        Assert.Equal(1234, info.EndTime);
        Assert.Equal("second", info.RunName);
        var fetched = await Store.GetRunAsync(run.Info.RunId, Ct);
        Assert.Equal(info, fetched.Info);
        Assert.Contains(new Tag("mlflow.runName", "second"), fetched.Data.Tags);
    }

    [Fact]
    public async Task LogParam_SameValueAgain_Accepted_DifferentValue_InvalidNamingBoth()
    {
        var run = await NewRunAsync("0");
        await Store.LogBatchAsync(run.Info.RunId, new LogBatch(Params: [new Param("lr", "0.01")]), Ct);
        await Store.LogBatchAsync(run.Info.RunId, new LogBatch(Params: [new Param("lr", "0.01")]), Ct);

        var error = await AssertCapstanErrorAsync(ErrorCode.InvalidParameterValue,
            () => Store.LogBatchAsync(run.Info.RunId, new LogBatch(Params: [new Param("lr", "0.02")]), Ct));

        Assert.Contains("'lr'", error.Message);
        Assert.Contains("0.01", error.Message);
        Assert.Contains("0.02", error.Message);
        Assert.Equal([new Param("lr", "0.01")], (await Store.GetRunAsync(run.Info.RunId, Ct)).Data.Params);
    }

    [Fact]
    public async Task LogBatch_RejectedParam_RollsBackWholeBatch()
    {
        var run = await NewRunAsync("0");
        await Store.LogBatchAsync(run.Info.RunId, new LogBatch(Params: [new Param("lr", "0.01")]), Ct);

        await AssertCapstanErrorAsync(ErrorCode.InvalidParameterValue, () => Store.LogBatchAsync(run.Info.RunId,
            new LogBatch([new Metric("loss", 1, 1, 0)], [new Param("lr", "0.5")], [new Tag("t", "v")]), Ct));

        var data = (await Store.GetRunAsync(run.Info.RunId, Ct)).Data;
        Assert.Empty(data.Metrics);
        Assert.DoesNotContain(data.Tags, t => t.Key == "t");
    }

    [Fact]
    public async Task LogBatch_LatestMetric_FollowsStepThenTimestampThenValue()
    {
        var run = await NewRunAsync("0");
        var id = run.Info.RunId;

        await Store.LogBatchAsync(id, new LogBatch([new Metric("acc", 0.5, 100, 5), new Metric("acc", 0.9, 200, 3)]), Ct);
        Assert.Equal(new Metric("acc", 0.5, 100, 5), Assert.Single((await Store.GetRunAsync(id, Ct)).Data.Metrics));

        // Same step, later timestamp wins even with a lower value; arrives in a separate batch.
        await Store.LogBatchAsync(id, new LogBatch([new Metric("acc", 0.1, 101, 5)]), Ct);
        Assert.Equal(new Metric("acc", 0.1, 101, 5), Assert.Single((await Store.GetRunAsync(id, Ct)).Data.Metrics));

        // Same step and timestamp: the greater value wins; an older step never does.
        await Store.LogBatchAsync(id, new LogBatch([new Metric("acc", 0.7, 101, 5), new Metric("acc", 99, 999, 4)]), Ct);
        Assert.Equal(new Metric("acc", 0.7, 101, 5), Assert.Single((await Store.GetRunAsync(id, Ct)).Data.Metrics));
    }

    [Fact]
    public async Task GetMetricHistory_OrderedByStepThenTimestamp_PagesWalkAllPointsOnce()
    {
        var run = await NewRunAsync("0");
        var points = new List<Metric>();
        for (var i = 0; i < 25; i++)
        {
            points.Add(new Metric("loss", i * 0.1, 1000 - i, 24 - i));
        }

        points.Add(new Metric("loss", 7, 5, 0));
        await Store.LogBatchAsync(run.Info.RunId, new LogBatch(points), Ct);

        var collected = new List<Metric>();
        string? token = null;
        var pages = 0;
        do
        {
            var page = await Store.GetMetricHistoryAsync(run.Info.RunId, "loss", 10, token, Ct);
            collected.AddRange(page.Items);
            token = page.NextPageToken;
            pages++;
        }
        while (token is not null);

        Assert.Equal(3, pages);
        var expected = points.OrderBy(p => p.Step).ThenBy(p => p.Timestamp).ToList();
        Assert.Equal(expected, collected);
    }

    [Fact]
    public async Task LogBatch_NaNAndInfinity_RoundTrip()
    {
        var run = await NewRunAsync("0");
        await Store.LogBatchAsync(run.Info.RunId, new LogBatch(
        [
            new Metric("nan", double.NaN, 1, 0),
            new Metric("pos", double.PositiveInfinity, 1, 0),
            new Metric("neg", double.NegativeInfinity, 1, 0),
        ]), Ct);

        var latest = (await Store.GetRunAsync(run.Info.RunId, Ct)).Data.Metrics.ToDictionary(m => m.Key, m => m.Value);
        Assert.True(double.IsNaN(latest["nan"]));
        Assert.Equal(double.PositiveInfinity, latest["pos"]);
        Assert.Equal(double.NegativeInfinity, latest["neg"]);
        var history = await Store.GetMetricHistoryAsync(run.Info.RunId, "nan", cancellationToken: Ct);
        Assert.True(double.IsNaN(Assert.Single(history.Items).Value));
    }

    [Theory]
    [InlineData(1001, 0, 0, "1000 metrics")]
    [InlineData(0, 101, 0, "100 params")]
    [InlineData(0, 0, 101, "100 tags")]
    [InlineData(950, 30, 30, "1000 metrics, params and tags")]
    public async Task LogBatch_OverLimits_InvalidNamingLimit(int metrics, int parameters, int tags, string limit)
    {
        var run = await NewRunAsync("0");
        var batch = new LogBatch(
            Enumerable.Range(0, metrics).Select(i => new Metric("m", i, i, i)).ToList(),
            Enumerable.Range(0, parameters).Select(i => new Param($"p{i}", "v")).ToList(),
            Enumerable.Range(0, tags).Select(i => new Tag($"t{i}", "v")).ToList());

        var error = await AssertCapstanErrorAsync(ErrorCode.InvalidParameterValue, () => Store.LogBatchAsync(run.Info.RunId, batch, Ct));

        Assert.Contains(limit, error.Message);
    }

    [Theory]
    [InlineData("", "v")]
    [InlineData("bad\"key", "v")]
    [InlineData("ok", null)]
    public async Task LogBatch_BadParamKeyOrValue_Invalid(string key, string? valueSeed)
    {
        var run = await NewRunAsync("0");
        var value = valueSeed ?? new string('x', 6001);

        await AssertCapstanErrorAsync(ErrorCode.InvalidParameterValue,
            () => Store.LogBatchAsync(run.Info.RunId, new LogBatch(Params: [new Param(key, value)]), Ct));
    }

    [Fact]
    public async Task LogBatch_TooLongKeyOrTagValue_Invalid()
    {
        var run = await NewRunAsync("0");

        await AssertCapstanErrorAsync(ErrorCode.InvalidParameterValue,
            () => Store.LogBatchAsync(run.Info.RunId, new LogBatch([new Metric(new string('k', 251), 1, 1, 1)]), Ct));
        await AssertCapstanErrorAsync(ErrorCode.InvalidParameterValue,
            () => Store.LogBatchAsync(run.Info.RunId, new LogBatch(Tags: [new Tag("t", new string('v', 8001))]), Ct));
        await Store.LogBatchAsync(run.Info.RunId, new LogBatch(Tags: [new Tag("t", new string('v', 8000))]), Ct);
    }

    [Fact]
    public async Task LogBatch_DeletedRun_InvalidState()
    {
        var run = await NewRunAsync("0");
        await Store.DeleteRunAsync(run.Info.RunId, Ct);

        var error = await AssertCapstanErrorAsync(ErrorCode.InvalidState,
            () => Store.LogBatchAsync(run.Info.RunId, new LogBatch([new Metric("m", 1, 1, 1)]), Ct));
        Assert.Contains(run.Info.RunId, error.Message);

        await Store.RestoreRunAsync(run.Info.RunId, Ct);
        await Store.LogBatchAsync(run.Info.RunId, new LogBatch([new Metric("m", 1, 1, 1)]), Ct);
    }

    [Fact]
    public async Task LogBatch_RunOfDeletedExperiment_InvalidState()
    {
        var experiment = await NewExperimentAsync();
        var run = await NewRunAsync(experiment);
        await Store.DeleteExperimentAsync(experiment, Ct);

        await AssertCapstanErrorAsync(ErrorCode.InvalidState,
            () => Store.LogBatchAsync(run.Info.RunId, new LogBatch(Tags: [new Tag("a", "b")]), Ct));
        await AssertCapstanErrorAsync(ErrorCode.InvalidState, () => Store.CreateRunAsync(new NewRun(experiment), Ct));
    }

    [Fact]
    public async Task LogBatch_UnknownRun_NotFound() =>
        await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist,
            () => Store.LogBatchAsync("0123456789abcdef0123456789abcdef", new LogBatch([new Metric("m", 1, 1, 1)]), Ct));

    [Fact]
    public async Task DeleteTag_RemovesTag_MissingTagNotFound()
    {
        var run = await NewRunAsync("0");
        await Store.LogBatchAsync(run.Info.RunId, new LogBatch(Tags: [new Tag("a", "b")]), Ct);

        await Store.DeleteTagAsync(run.Info.RunId, "a", Ct);

        Assert.DoesNotContain((await Store.GetRunAsync(run.Info.RunId, Ct)).Data.Tags, t => t.Key == "a");
        await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.DeleteTagAsync(run.Info.RunId, "a", Ct));
    }

    [Fact]
    public async Task LogInputs_SameDatasetTwice_StoredOnceWithTags()
    {
        var experiment = await NewExperimentAsync();
        var first = await NewRunAsync(experiment);
        var second = await NewRunAsync(experiment);
        var dataset = new Dataset("iris", "abc123", "local", "/data/iris.csv");
        var input = new DatasetInput(dataset, [new Tag("mlflow.data.context", "train")]);

        await Store.LogInputsAsync(first.Info.RunId, [input], Ct);
        await Store.LogInputsAsync(first.Info.RunId, [input], Ct);
        await Store.LogInputsAsync(second.Info.RunId, [input], Ct);

        var run = await Store.GetRunAsync(first.Info.RunId, Ct);
        var logged = Assert.Single(run.Inputs);
        Assert.Equal(dataset, logged.Dataset);
        Assert.Equal([new Tag("mlflow.data.context", "train")], logged.Tags);
    }

    [Fact]
    public async Task LogBatch_ConcurrentTasks_AllPointsLand()
    {
        var runs = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            runs.Add((await NewRunAsync("0")).Info.RunId);
        }

        const int BatchesPerTask = 20;
        var tasks = Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            var runId = runs[t % runs.Count];
            for (var b = 0; b < BatchesPerTask; b++)
            {
                var metrics = Enumerable.Range(0, 100).Select(i => new Metric($"task{t}", i, b, (b * 100) + i)).ToList();
                await Store.LogBatchAsync(runId, new LogBatch(metrics), Ct);
            }
        }, Ct));
        await Task.WhenAll(tasks);

        for (var t = 0; t < 8; t++)
        {
            var history = await Store.GetMetricHistoryAsync(runs[t % runs.Count], $"task{t}", cancellationToken: Ct);
            Assert.Equal(BatchesPerTask * 100, history.Items.Count);
        }
    }

    [Fact]
    public async Task LogBatch_ThousandPointBatches_IngestRateReported()
    {
        var run = await NewRunAsync("0");
        const int Batches = 100;
        var batches = Enumerable.Range(0, Batches).Select(b => new LogBatch(
            Enumerable.Range(0, 1000).Select(i => new Metric($"m{i % 10}", i, b, (b * 1000) + i)).ToList())).ToList();
        await Store.LogBatchAsync(run.Info.RunId, batches[0], Ct);

        var watch = Stopwatch.StartNew();
        foreach (var batch in batches.Skip(1))
        {
            await Store.LogBatchAsync(run.Info.RunId, batch, Ct);
        }

        watch.Stop();
        var rate = (Batches - 1) * 1000 / watch.Elapsed.TotalSeconds;
        TestContext.Current.TestOutputHelper?.WriteLine($"ingest: {rate:N0} metric points/s");
        var single = Stopwatch.StartNew();
        for (var i = 0; i < 200; i++)
        {
            await Store.LogBatchAsync(run.Info.RunId, new LogBatch([new Metric("single", i, i, i)]), Ct);
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"single-metric LogBatch: {single.Elapsed.TotalMilliseconds / 200:N3} ms");
        var history = await Store.GetMetricHistoryAsync(run.Info.RunId, "m0", cancellationToken: Ct);
        Assert.Equal(Batches * 100, history.Items.Count);
    }
}
