using Capstan.Core;
using Capstan.Core.Tracking;

namespace Capstan.Store.Tests.Sqlite;

public sealed class RunSearchTests : StoreTestBase
{
    private string _experimentId = null!;
    private readonly Dictionary<string, string> _runIds = [];

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _experimentId = await NewExperimentAsync("search");

        // name, start time, accuracy (null: not logged), lr param, team tag, status
        (string Name, long Start, double? Acc, string Lr, string Team, RunStatus Status)[] runs =
        [
            ("a", 1000, 0.91, "0.1", "Vision", RunStatus.Finished),
            ("b", 2000, 0.75, "0.01", "vision", RunStatus.Failed),
            ("c", 3000, 0.99, "0.001", "nlp", RunStatus.Finished),
            ("d", 4000, null, "0.1", "nlp", RunStatus.Running),
        ];
        foreach (var (name, start, acc, lr, team, status) in runs)
        {
            var run = await NewRunAsync(_experimentId, name, start);
            _runIds[name] = run.Info.RunId;
            await Store.LogBatchAsync(run.Info.RunId, new LogBatch(
                acc is { } value ? [new Metric("acc", value, start, 1)] : [],
                [new Param("lr", lr)],
                [new Tag("team", team)]), Ct);
            await Store.UpdateRunAsync(run.Info.RunId, new RunUpdate(status, start + 10), Ct);
        }
    }

    private async Task<List<string>> NamesAsync(string? filter = null, params string[] orderBy)
    {
        var page = await Store.SearchRunsAsync(new RunSearch([_experimentId], filter, OrderBy: orderBy), Ct);
        return page.Items.Select(r => r.Info.RunName).ToList();
    }

    [Fact]
    public async Task SearchRuns_NoFilter_NewestStartFirstWithData()
    {
        var page = await Store.SearchRunsAsync(new RunSearch([_experimentId]), Ct);

        Assert.Equal(["d", "c", "b", "a"], page.Items.Select(r => r.Info.RunName));
        Assert.Null(page.NextPageToken);
        var c = page.Items[1];
        Assert.Equal(0.99, Assert.Single(c.Data.Metrics).Value);
        Assert.Equal([new Param("lr", "0.001")], c.Data.Params);
        Assert.Contains(new Tag("team", "nlp"), c.Data.Tags);
    }

    [Theory]
    [InlineData("metrics.acc > 0.8", "c,a")]
    [InlineData("metrics.acc <= 0.91", "b,a")]
    [InlineData("metrics.acc != 0.75", "c,a")]
    [InlineData("params.lr = '0.1'", "d,a")]
    [InlineData("params.lr != '0.1'", "c,b")]
    [InlineData("params.lr IN ('0.01', '0.001')", "c,b")]
    [InlineData("tags.team LIKE 'vis%'", "b")]
    [InlineData("tags.team ILIKE 'VIS%'", "b,a")]
    [InlineData("tags.team NOT IN ('nlp')", "b,a")]
    [InlineData("attributes.status = 'FINISHED'", "c,a")]
    [InlineData("run_name LIKE 'a%'", "a")]
    [InlineData("start_time >= 2000 and end_time < 4000", "c,b")]
    [InlineData("metrics.acc > 0.5 and params.lr = '0.1' and tags.team = 'Vision'", "a")]
    public async Task SearchRuns_Filter_ReturnsMatchingRuns(string filter, string expected) =>
        Assert.Equal(expected.Split(','), await NamesAsync(filter));

    [Fact]
    public async Task SearchRuns_RunIdFilter_EqualsAndIn()
    {
        Assert.Equal(["b"], await NamesAsync($"attributes.run_id = '{_runIds["b"]}'"));
        Assert.Equal(["c", "a"], await NamesAsync($"run_id IN ('{_runIds["a"]}', '{_runIds["c"]}')"));
    }

    [Theory]
    [InlineData("metrics.acc LIKE 'x'")]
    [InlineData("params.lr > 1")]
    [InlineData("params.lr = 1")]
    [InlineData("attributes.color = 'red'")]
    [InlineData("start_time LIKE '1%'")]
    [InlineData("datasets.size = 'x'")]
    public async Task SearchRuns_OperatorDoesNotFitType_Invalid(string filter) =>
        await AssertCapstanErrorAsync(ErrorCode.InvalidParameterValue,
            () => Store.SearchRunsAsync(new RunSearch([_experimentId], filter), Ct));

    [Fact]
    public async Task SearchRuns_OrderByMetric_MissingSortsLastBothDirections()
    {
        Assert.Equal(["b", "a", "c", "d"], await NamesAsync(null, "metrics.acc ASC"));
        Assert.Equal(["c", "a", "b", "d"], await NamesAsync(null, "metrics.acc DESC"));
    }

    [Fact]
    public async Task SearchRuns_OrderByParamThenAttribute_TiesBrokenByNextClause()
    {
        Assert.Equal(["c", "b", "a", "d"], await NamesAsync(null, "params.lr", "start_time ASC"));
        Assert.Equal(["a", "b", "c", "d"], await NamesAsync(null, "attributes.run_name ASC"));
        // Byte order: "vision" > "nlp" > "Vision"; the nlp tie is broken by run_name.
        Assert.Equal(["b", "c", "d", "a"], await NamesAsync(null, "tags.team DESC", "run_name ASC"));
    }

    [Fact]
    public async Task SearchRuns_PageTokens_WalkAllResultsExactlyOnce()
    {
        for (var i = 0; i < 21; i++)
        {
            await NewRunAsync(_experimentId, $"extra-{i}", 10_000 + (i % 3));
        }

        var seen = new List<string>();
        string? token = null;
        do
        {
            var page = await Store.SearchRunsAsync(new RunSearch([_experimentId], MaxResults: 4, PageToken: token), Ct);
            Assert.InRange(page.Items.Count, 1, 4);
            seen.AddRange(page.Items.Select(r => r.Info.RunId));
            token = page.NextPageToken;
        }
        while (token is not null);

        Assert.Equal(25, seen.Count);
        Assert.Equal(25, seen.Distinct().Count());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(50_001)]
    public async Task SearchRuns_MaxResultsOutOfBounds_Invalid(int maxResults) =>
        await AssertCapstanErrorAsync(ErrorCode.InvalidParameterValue,
            () => Store.SearchRunsAsync(new RunSearch([_experimentId], MaxResults: maxResults), Ct));

    [Fact]
    public async Task SearchRuns_GarbagePageToken_Invalid() =>
        await AssertCapstanErrorAsync(ErrorCode.InvalidParameterValue,
            () => Store.SearchRunsAsync(new RunSearch([_experimentId], PageToken: "not-a-token"), Ct));

    [Fact]
    public async Task SearchRuns_ViewType_SeparatesDeletedRuns()
    {
        await Store.DeleteRunAsync(_runIds["b"], Ct);

        Assert.Equal(["d", "c", "a"], await NamesAsync());
        var deleted = await Store.SearchRunsAsync(new RunSearch([_experimentId], ViewType: ViewType.DeletedOnly), Ct);
        Assert.Equal(["b"], deleted.Items.Select(r => r.Info.RunName));
        var all = await Store.SearchRunsAsync(new RunSearch([_experimentId], ViewType: ViewType.All), Ct);
        Assert.Equal(4, all.Items.Count);
    }

    [Fact]
    public async Task SearchRuns_OtherExperiment_NotIncluded()
    {
        await NewRunAsync("0", "elsewhere");

        Assert.DoesNotContain("elsewhere", await NamesAsync());
        var both = await Store.SearchRunsAsync(new RunSearch(["0", _experimentId]), Ct);
        Assert.Equal(5, both.Items.Count);
    }

    [Fact]
    public async Task SearchRuns_DatasetFilters_MatchNameDigestAndContext()
    {
        await Store.LogInputsAsync(_runIds["a"], [new DatasetInput(new Dataset("iris", "d1", "local", "/iris"), [new Tag("mlflow.data.context", "train")])], Ct);
        await Store.LogInputsAsync(_runIds["c"], [new DatasetInput(new Dataset("mnist", "d2", "local", "/mnist"), [new Tag("mlflow.data.context", "eval")])], Ct);

        Assert.Equal(["a"], await NamesAsync("datasets.name = 'iris'"));
        Assert.Equal(["c"], await NamesAsync("datasets.digest = 'd2'"));
        Assert.Equal(["c"], await NamesAsync("datasets.context = 'eval'"));
    }
}
