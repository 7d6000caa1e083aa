using System.Diagnostics;
using Capstan.Core.Tracking;

namespace Capstan.Store.Tests.Sqlite;

/// <summary>
/// The architecture's tracking targets at full size. Explicit: they take a minute to seed, so they
/// run on request (<c>dotnet test -- --explicit only</c>), not in every build.
/// </summary>
public sealed class StorePerformanceTests : StoreTestBase
{
    [Fact(Explicit = true)]
    public async Task SearchRuns_FirstPageOver10kRunsX100Metrics_P95Under200Ms()
    {
        var experiment = await NewExperimentAsync("perf");
        var seed = Stopwatch.StartNew();
        for (var r = 0; r < 10_000; r++)
        {
            var run = await NewRunAsync(experiment, $"run-{r}", 1_000_000 + r);
            var metrics = Enumerable.Range(0, 100).Select(m => new Metric($"metric_{m}", Random.Shared.NextDouble(), 1, 1)).ToList();
            var parameters = Enumerable.Range(0, 10).Select(p => new Param($"param_{p}", (r % (p + 2)).ToString(System.Globalization.CultureInfo.InvariantCulture))).ToList();
            await Store.LogBatchAsync(run.Info.RunId, new LogBatch(metrics, parameters), Ct);
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"seeded 10k runs x 100 metrics x 10 params in {seed.Elapsed.TotalSeconds:N1} s");
        RunSearch[] searches =
        [
            new([experiment], MaxResults: 100),
            new([experiment], "metrics.metric_3 > 0.5 and params.param_1 = '0'", MaxResults: 100),
            new([experiment], MaxResults: 100, OrderBy: ["metrics.metric_7 DESC"]),
        ];
        foreach (var search in searches)
        {
            var timings = new List<double>();
            for (var i = 0; i < 21; i++)
            {
                var watch = Stopwatch.StartNew();
                var page = await Store.SearchRunsAsync(search, Ct);
                timings.Add(watch.Elapsed.TotalMilliseconds);
                Assert.Equal(100, page.Items.Count);
                Assert.All(page.Items, run => Assert.Equal(100, run.Data.Metrics.Count));
            }

            timings.Sort();
            var p95 = timings[(int)Math.Ceiling(timings.Count * 0.95) - 1];
            TestContext.Current.TestOutputHelper?.WriteLine($"search '{search.Filter}' order '{string.Join(",", search.OrderBy ?? [])}': p50 {timings[10]:N1} ms, p95 {p95:N1} ms");
            Assert.True(p95 <= 200, $"p95 {p95:N1} ms over 200 ms");
        }
    }

    [Fact(Explicit = true)]
    public async Task GetMetricHistory_100kPoints_LoadsUnder300Ms()
    {
        var run = await NewRunAsync("0");
        for (var b = 0; b < 100; b++)
        {
            await Store.LogBatchAsync(run.Info.RunId, new LogBatch(
                Enumerable.Range(0, 1000).Select(i => new Metric("loss", i, b, (b * 1000) + i)).ToList()), Ct);
        }

        var timings = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var watch = Stopwatch.StartNew();
            var history = await Store.GetMetricHistoryAsync(run.Info.RunId, "loss", cancellationToken: Ct);
            timings.Add(watch.Elapsed.TotalMilliseconds);
            Assert.Equal(100_000, history.Items.Count);
        }

        TestContext.Current.TestOutputHelper?.WriteLine($"100k-point history: best {timings.Min():N1} ms, worst {timings.Max():N1} ms");
        Assert.True(timings.Min() < 300, $"history took {timings.Min():N1} ms");
    }
}
