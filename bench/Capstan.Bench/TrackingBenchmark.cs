using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;
using Capstan.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Capstan.Bench;

/// <summary>
/// Tracking server figures, each beside a baseline from the same run: log-batch ingest over HTTP
/// against the store called in-process, one log-metric call against a bare health round trip,
/// run search and metric history over HTTP against the store's own query time.
/// The server is a real Kestrel on 127.0.0.1 in this process, speaking the MLflow REST API.
/// </summary>
public static class TrackingBenchmark
{
    private const string Mlflow = "/api/2.0/mlflow";

    public static async Task RunAsync(Report report, bool quick)
    {
        var home = Path.Combine(Path.GetTempPath(), "capstan-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var app = await CapstanServer.BuildAsync(new ServerOptions { Host = "127.0.0.1", Port = 0, Home = home });
            await app.StartAsync();
            var url = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            var store = app.Services.GetRequiredService<IMetadataStore>();
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = new Uri(url) };

            Console.Error.WriteLine($"tracking benchmarks against {url} ({Environment.ProcessorCount} cores){(quick ? ", quick" : string.Empty)}");
            await LogMetricLatencyAsync(report, http, quick);
            await IngestAsync(report, http, store, quick);
            await SearchAsync(report, http, store, quick);
            await HistoryAsync(report, http, store, quick);
            await app.StopAsync();
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    private static async Task LogMetricLatencyAsync(Report report, HttpClient http, bool quick)
    {
        var runId = await CreateRunAsync(http, "latency");
        var calls = quick ? 500 : 3000;
        var logMetric = new Samples(calls);
        var health = new Samples(calls);
        for (var i = -200; i < calls; i++)
        {
            // Interleaved, so both see the same machine noise.
            var body = $$"""{"run_id":"{{runId}}","key":"loss","value":{{(1.0 / (i + 202)).ToString(CultureInfo.InvariantCulture)}},"timestamp":{{1_700_000_000_000 + i}},"step":{{i + 200}}}""";
            var t0 = Stopwatch.GetTimestamp();
            using (var response = await http.PostAsync($"{Mlflow}/runs/log-metric", Json(body)))
            {
                response.EnsureSuccessStatusCode();
            }

            var t1 = Stopwatch.GetTimestamp();
            using (var response = await http.GetAsync("/healthz"))
            {
                response.EnsureSuccessStatusCode();
            }

            var t2 = Stopwatch.GetTimestamp();
            if (i >= 0)
            {
                logMetric.Add(Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
                health.Add(Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds);
            }
        }

        var p50 = logMetric.Percentile(50);
        report.Add("log-metric, 1 client, p50", Report.Ms(p50),
            $"GET /healthz p50 {Report.Ms(health.Percentile(50))} (x{p50 / health.Percentile(50):0.0}); log-metric p99 {Report.Ms(logMetric.Percentile(99))}",
            "<= 1 ms", p50 <= 1.0);
    }

    private static async Task IngestAsync(Report report, HttpClient http, IMetadataStore store, bool quick)
    {
        const int Clients = 4;
        const int BatchSize = 1000;
        var batchesPerClient = quick ? 20 : 75;
        var runs = new string[Clients];
        for (var c = 0; c < Clients; c++)
        {
            runs[c] = await CreateRunAsync(http, $"ingest-{c}");
        }

        // Bodies are built up front so the load generator spends its time sending, not serialising.
        var bodies = new byte[Clients][][];
        for (var c = 0; c < Clients; c++)
        {
            bodies[c] = new byte[batchesPerClient][];
            for (var b = 0; b < batchesPerClient; b++)
            {
                var sb = new StringBuilder($$"""{"run_id":"{{runs[c]}}","metrics":[""");
                for (var m = 0; m < BatchSize; m++)
                {
                    var step = (b * BatchSize) + m;
                    sb.Append(CultureInfo.InvariantCulture, $$"""{"key":"m{{m % 10}}","value":{{(step * 0.001).ToString(CultureInfo.InvariantCulture)}},"timestamp":{{1_700_000_000_000 + step}},"step":{{step}}}""");
                    sb.Append(m < BatchSize - 1 ? "," : "]}");
                }

                bodies[c][b] = Encoding.UTF8.GetBytes(sb.ToString());
            }
        }

        var total = (double)Clients * batchesPerClient * BatchSize;
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(async c =>
        {
            foreach (var body in bodies[c])
            {
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var response = await http.PostAsync($"{Mlflow}/runs/log-batch", content);
                response.EnsureSuccessStatusCode();
            }
        }));
        var httpRate = total / sw.Elapsed.TotalSeconds;

        // Baseline: the same points straight into the store, no HTTP or JSON.
        var direct = new string[Clients];
        for (var c = 0; c < Clients; c++)
        {
            direct[c] = (await store.CreateRunAsync(new NewRun(ExperimentId: "0", RunName: $"direct-{c}"))).Info.RunId;
        }

        sw.Restart();
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(c => Task.Run(async () =>
        {
            for (var b = 0; b < batchesPerClient; b++)
            {
                var metrics = new Metric[BatchSize];
                for (var m = 0; m < BatchSize; m++)
                {
                    var step = (b * BatchSize) + m;
                    metrics[m] = new Metric($"m{m % 10}", step * 0.001, 1_700_000_000_000 + step, step);
                }

                await store.LogBatchAsync(direct[c], new LogBatch(Metrics: metrics));
            }
        })));
        var directRate = total / sw.Elapsed.TotalSeconds;

        report.Add($"log-batch ingest, {Clients} clients x 1000", Report.Rate(httpRate) + " points",
            $"store in-process {Report.Rate(directRate)} (HTTP at {httpRate / directRate:P0})", ">= 100,000/s", httpRate >= 100_000);
    }

    private static async Task SearchAsync(Report report, HttpClient http, IMetadataStore store, bool quick)
    {
        var runCount = quick ? 1000 : 10_000;
        var experimentId = (await store.CreateExperimentAsync(new NewExperiment("search-bench"))).ExperimentId;
        var seeded = 0;
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
                Interlocked.Increment(ref seeded);
            }
        })));
        Console.Error.WriteLine($"  seeded {seeded:N0} runs x 100 metrics x 10 params in {sw.Elapsed.TotalSeconds:0.0} s");

        var filtered = $$"""{"experiment_ids":["{{experimentId}}"],"filter":"metrics.m7 > 0.5 and params.p3 = 'v1' and tags.team LIKE 'vis%' and attributes.status = 'FINISHED'","order_by":["metrics.m1 DESC"],"max_results":100}""";
        var firstPage = $$"""{"experiment_ids":["{{experimentId}}"],"max_results":100}""";
        var bigPage = $$"""{"experiment_ids":["{{experimentId}}"],"max_results":1000}""";
        var iterations = quick ? 20 : 60;
        var (filteredSamples, filteredCount) = await TimeSearchAsync(http, filtered, iterations);
        var (firstSamples, _) = await TimeSearchAsync(http, firstPage, iterations);
        var (bigSamples, bigCount) = await TimeSearchAsync(http, bigPage, iterations / 3);

        var storeSamples = new Samples(iterations);
        for (var i = 0; i < iterations; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            await store.SearchRunsAsync(new RunSearch([experimentId], "metrics.m7 > 0.5 and params.p3 = 'v1' and tags.team LIKE 'vis%' and attributes.status = 'FINISHED'", OrderBy: ["metrics.m1 DESC"], MaxResults: 100));
            storeSamples.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }

        var p95 = firstSamples.Percentile(95);
        report.Add($"runs/search first page (100 of {runCount:N0}), p95", Report.Ms(p95),
            $"p50 {Report.Ms(firstSamples.Percentile(50))}", "<= 200 ms", p95 <= 200);
        var fp95 = filteredSamples.Percentile(95);
        report.Add($"runs/search 4-term filter + metric order ({filteredCount} hits), p95", Report.Ms(fp95),
            $"store alone p95 {Report.Ms(storeSamples.Percentile(95))}", "<= 200 ms", fp95 <= 200);
        report.Add($"runs/search page of {bigCount} runs, p95", Report.Ms(bigSamples.Percentile(95)),
            $"p50 {Report.Ms(bigSamples.Percentile(50))}", "(MLflow's default page size)", true);
    }

    private static async Task<(Samples Samples, int Count)> TimeSearchAsync(HttpClient http, string body, int iterations)
    {
        var samples = new Samples(iterations);
        var count = 0;
        for (var i = -3; i < iterations; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            using var response = await http.PostAsync($"{Mlflow}/runs/search", Json(body));
            var bytes = await response.EnsureSuccessStatusCode().Content.ReadAsByteArrayAsync();
            if (i >= 0)
            {
                samples.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }

            using var doc = JsonDocument.Parse(bytes);
            count = doc.RootElement.TryGetProperty("runs", out var runs) ? runs.GetArrayLength() : 0;
        }

        return (samples, count);
    }

    private static async Task HistoryAsync(Report report, HttpClient http, IMetadataStore store, bool quick)
    {
        const int Points = 100_000;
        var run = await store.CreateRunAsync(new NewRun("0", RunName: "history"));
        for (var b = 0; b < Points / 1000; b++)
        {
            var metrics = Enumerable.Range(b * 1000, 1000).Select(s => new Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s)).ToArray();
            await store.LogBatchAsync(run.Info.RunId, new LogBatch(Metrics: metrics));
        }

        var iterations = quick ? 5 : 15;
        var viaHttp = new Samples(iterations);
        var direct = new Samples(iterations);
        var returned = 0;
        for (var i = -1; i < iterations; i++)
        {
            var t0 = Stopwatch.GetTimestamp();
            using var response = await http.GetAsync($"{Mlflow}/metrics/get-history?run_id={run.Info.RunId}&metric_key=loss&max_results={Points}");
            var bytes = await response.EnsureSuccessStatusCode().Content.ReadAsByteArrayAsync();
            var t1 = Stopwatch.GetTimestamp();
            var page = await store.GetMetricHistoryAsync(run.Info.RunId, "loss", Points);
            var t2 = Stopwatch.GetTimestamp();
            if (i >= 0)
            {
                viaHttp.Add(Stopwatch.GetElapsedTime(t0, t1).TotalMilliseconds);
                direct.Add(Stopwatch.GetElapsedTime(t1, t2).TotalMilliseconds);
            }

            using var doc = JsonDocument.Parse(bytes);
            returned = doc.RootElement.GetProperty("metrics").GetArrayLength();
            if (page.Items.Count != Points)
            {
                throw new InvalidOperationException($"The store returned {page.Items.Count} points, expected {Points}.");
            }
        }

        var p50 = viaHttp.Percentile(50);
        report.Add($"metrics/get-history, {returned:N0} points, p50", Report.Ms(p50),
            $"store alone p50 {Report.Ms(direct.Percentile(50))}; HTTP p95 {Report.Ms(viaHttp.Percentile(95))}", "<= 300 ms", p50 <= 300 && returned == Points);
    }

    private static async Task<string> CreateRunAsync(HttpClient http, string name)
    {
        using var response = await http.PostAsync($"{Mlflow}/runs/create", Json($$"""{"experiment_id":"0","run_name":"{{name}}","start_time":{{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}}}"""));
        using var doc = JsonDocument.Parse(await response.EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("run").GetProperty("info").GetProperty("run_id").GetString()!;
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
