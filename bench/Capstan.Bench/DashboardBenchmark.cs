using System.Diagnostics;
using System.Text;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;
using Capstan.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Capstan.Bench;

/// <summary>
/// The dashboard in headless Chromium over 10,000 runs × 100 metrics: time until the runs page shows
/// its first rows, and until a run's charts (100 metrics × 200 steps) in view are drawn, each from a
/// cold page load, beside the API call the page makes, measured in the same run.
/// </summary>
public static class DashboardBenchmark
{
    private const string ChromiumPath = "/usr/bin/chromium";

    public static async Task RunAsync(Report report, bool quick)
    {
        var chromium = Environment.GetEnvironmentVariable("CAPSTAN_CHROMIUM") is { Length: > 0 } path ? path : ChromiumPath;
        if (!File.Exists(chromium))
        {
            report.Add("dashboard", "not run", $"Chromium not found at {chromium} (apt-get install -y chromium)", "-", false);
            return;
        }

        var home = Path.Combine(Path.GetTempPath(), "capstan-bench-dashboard-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var app = await CapstanServer.BuildAsync(new ServerOptions { Host = "127.0.0.1", Port = 0, Home = home, RunControlPlane = false });
            await app.StartAsync();
            var url = app.Urls.First();
            var store = app.Services.GetRequiredService<IMetadataStore>();
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            Console.Error.WriteLine($"dashboard benchmarks against {url} ({Environment.ProcessorCount} cores){(quick ? ", quick" : string.Empty)}");

            var runCount = quick ? 1000 : 10_000;
            var (experimentId, chartRunId) = await SeedAsync(store, runCount);

            using var playwright = await Playwright.CreateAsync();
            await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = chromium,
                Headless = true,
                Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            });

            var iterations = quick ? 5 : 12;
            var tableBody = $$"""{"experimentIds":["{{experimentId}}"],"maxResults":100}""";
            var (page, inPage, api) = await MeasureAsync(browser, http, iterations,
                $"{url}/#/experiments/{experimentId}",
                "() => document.querySelectorAll('.run-row').length > 0",
                "document.body.dataset.runsShownAt",
                "/api/v1/dashboard/run-table", tableBody);
            // The figure is the browser's own clock from navigation start to the rows in the DOM; the
            // wall time around Playwright's calls (its IPC included) is printed beside it.
            var p50 = inPage.Percentile(50);
            report.Add($"dashboard runs page, first rows ({runCount:N0} runs x 100 metrics), p50", Report.Ms(p50),
                $"its API call alone p50 {Report.Ms(api.Percentile(50))} (page x{p50 / api.Percentile(50):0.0}); in-page p95 {Report.Ms(inPage.Percentile(95))}; wall p50 {Report.Ms(page.Percentile(50))}",
                "<= 1 s", p50 <= 1000);

            var seriesBody = $$"""{"runIds":["{{chartRunId}}"]}""";
            var (charts, chartsInPage, seriesApi) = await MeasureAsync(browser, http, iterations,
                $"{url}/#/runs/{chartRunId}",
                """
                () => {
                  const charts = [...document.querySelectorAll('.chart')];
                  const inView = charts.filter(c => c.getBoundingClientRect().top < innerHeight);
                  return inView.length > 0 && inView.every(c => c.dataset.drawn === 'true');
                }
                """,
                "document.body.dataset.firstChartAt",
                "/api/v1/dashboard/metric-series", seriesBody);
            var c50 = chartsInPage.Percentile(50);
            report.Add("dashboard run page, first charts drawn (100 metrics x 200 steps), p50", Report.Ms(c50),
                $"all 100 series API alone p50 {Report.Ms(seriesApi.Percentile(50))}; in-page p95 {Report.Ms(chartsInPage.Percentile(95))}; wall p50 until every chart in view is drawn {Report.Ms(charts.Percentile(50))}",
                "<= 500 ms", c50 <= 500);
            await app.StopAsync();
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    private static async Task<(string ExperimentId, string ChartRunId)> SeedAsync(IMetadataStore store, int runCount)
    {
        var experimentId = (await store.CreateExperimentAsync(new NewExperiment("dashboard-bench"))).ExperimentId;
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 2).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker);
            for (var i = worker; i < runCount; i += 2)
            {
                var run = await store.CreateRunAsync(new NewRun(experimentId, RunName: $"run-{i}", StartTime: 1_700_000_000_000 + i));
                var metrics = Enumerable.Range(0, 100).Select(m => new Metric($"m{m}", random.NextDouble(), 1_700_000_000_000 + i, 0)).ToArray();
                var parameters = Enumerable.Range(0, 10).Select(p => new Param($"p{p}", $"v{random.Next(4)}")).ToArray();
                await store.LogBatchAsync(run.Info.RunId, new LogBatch(metrics, parameters, [new Tag("team", i % 2 == 0 ? "vision" : "nlp")]));
                await store.UpdateRunAsync(run.Info.RunId, new RunUpdate(RunStatus.Finished, 1_700_000_100_000 + i));
            }
        })));

        // The run whose charts are timed: 100 metrics with 200 steps each.
        var chartRun = await store.CreateRunAsync(new NewRun(experimentId, RunName: "curves", StartTime: 1_600_000_000_000));
        for (var step = 0; step < 200; step += 10)
        {
            var batch = new List<Metric>(1000);
            for (var s = step; s < step + 10; s++)
            {
                for (var m = 0; m < 100; m++)
                {
                    batch.Add(new Metric($"m{m}", Math.Exp(-s / (20.0 + m)) + (0.01 * Math.Sin(s + m)), 1_600_000_000_000 + (s * 1000), s));
                }
            }

            await store.LogBatchAsync(chartRun.Info.RunId, new LogBatch(Metrics: batch));
        }

        Console.Error.WriteLine($"  seeded {runCount:N0} runs x 100 metrics, and one run with 100 metrics x 200 steps, in {sw.Elapsed.TotalSeconds:0.0} s");
        return (experimentId, chartRun.Info.RunId);
    }

    /// <summary>Cold page loads (a new browser context each) until the condition holds, interleaved with the page's API call alone.</summary>
    private static async Task<(Samples Page, Samples InPage, Samples Api)> MeasureAsync(
        IBrowser browser, HttpClient http, int iterations, string address, string condition, string inPageMark, string apiPath, string apiBody)
    {
        var page = new Samples(iterations);
        var inPage = new Samples(iterations);
        var api = new Samples(iterations);
        for (var i = -2; i < iterations; i++)
        {
            await using var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 900 } });
            var tab = await context.NewPageAsync();
            var t0 = Stopwatch.GetTimestamp();
            await tab.GotoAsync(address, new PageGotoOptions { WaitUntil = WaitUntilState.Commit });
            await tab.WaitForFunctionAsync(condition, null, new PageWaitForFunctionOptions { Timeout = 60_000 });
            var elapsed = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            var mark = await tab.EvaluateAsync<string?>($"() => {inPageMark}");
            if (i == iterations - 1)
            {
                // Where the last load spent its time: each request's start and duration, in page time.
                var trace = await tab.EvaluateAsync<string>(
                    "() => performance.getEntriesByType('resource').map(e => `${e.name.replace(location.origin, '')} @${e.startTime.toFixed(0)} +${e.duration.toFixed(0)}ms`).join('\\n    ')");
                Console.Error.WriteLine($"  last load of {address}: shown at {mark} ms\n    {trace}");
            }

            var t1 = Stopwatch.GetTimestamp();
            using (var response = await http.PostAsync(apiPath, new StringContent(apiBody, Encoding.UTF8, "application/json")))
            {
                await response.EnsureSuccessStatusCode().Content.ReadAsByteArrayAsync();
            }

            var apiElapsed = Stopwatch.GetElapsedTime(t1).TotalMilliseconds;
            if (i >= 0)
            {
                page.Add(elapsed);
                api.Add(apiElapsed);
                inPage.Add(double.TryParse(mark, System.Globalization.CultureInfo.InvariantCulture, out var ms) ? ms : double.NaN);
            }
        }

        return (page, inPage, api);
    }
}
