using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Capstan.Serving.Models;
using Capstan.Testing;

namespace Capstan.Serving.Tests;

/// <summary>
/// A real Prometheus (Debian's <c>prometheus</c> package) scrapes a serving server on loopback, and its HTTP API must then
/// hold the request counter and the latency histogram with the labels dashboards and alerts use. Under CI=true a
/// missing prometheus binary fails the test instead of skipping it.
/// </summary>
public sealed class PrometheusScrapeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string? FindPrometheus()
    {
        var candidates = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin").Select(folder => Path.Combine(folder, "prometheus"));
        return candidates.FirstOrDefault(File.Exists);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Prometheus_ScrapesTheServer_SeesRequestsByModelVersionOutcomeAndTheLatencyHistogram()
    {
        var binary = FindPrometheus();
        if (binary is null)
        {
            const string Missing = "the prometheus binary is not installed (apt-get install prometheus)";
            Assert.SkipWhen(!string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase), Missing);
            Assert.Fail("CI=true: " + Missing);
        }

        await using var host = await ServingHost.StartAsync(r =>
        {
            r.Load("mlp", "1", ModelSource.FromBytes(OnnxModelBuilder.Mlp(4, 8, 3, 1)), new ModelOptions());
            r.Load("mlp", "2", ModelSource.FromBytes(OnnxModelBuilder.Mlp(4, 8, 3, 2)), new ModelOptions(), makeDefault: false);
            r.SetTraffic("mlp", [new TrafficShare("1", 50), new TrafficShare("2", 50)]);
        });
        var served = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < 40; i++)
        {
            using var response = await host.Rest.PostAsync("/v2/models/mlp/infer", new StringContent("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}""", Encoding.UTF8, "application/json"), Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var version = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("model_version").GetString()!;
            served[version] = served.GetValueOrDefault(version) + 1;
        }

        using (var invalid = await host.Rest.PostAsync("/v2/models/mlp/infer", new StringContent("""{"inputs":[{"name":"nope","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}""", Encoding.UTF8, "application/json"), Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        }

        var folder = Directory.CreateTempSubdirectory("capstan-prometheus-").FullName;
        var port = FreePort();
        var target = host.Rest.BaseAddress!.Authority;
        var config = Path.Combine(folder, "prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: capstan-serving
                metrics_path: /metrics
                static_configs:
                  - targets: ["{target}"]
            """, Ct);
        var info = new ProcessStartInfo(binary!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(folder, "data")}", $"--web.listen-address=127.0.0.1:{port}" })
        {
            info.ArgumentList.Add(argument);
        }

        var log = new StringBuilder();
        using var prometheus = Process.Start(info)!;
        prometheus.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        prometheus.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        prometheus.BeginOutputReadLine();
        prometheus.BeginErrorReadLine();
        try
        {
            using var api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var requests = await QueryUntilAsync(api, "capstan_inference_requests_total", r => r.GetArrayLength() >= 3, prometheus, log);
            var series = requests.EnumerateArray().Select(s => s.GetProperty("metric")).ToList();
            Assert.All(series, s => Assert.Equal(("capstan-serving", target), (s.GetProperty("job").GetString(), s.GetProperty("instance").GetString())));
            foreach (var (version, count) in served)
            {
                var match = requests.EnumerateArray().Single(s => s.GetProperty("metric").GetProperty("version").GetString() == version && s.GetProperty("metric").GetProperty("outcome").GetString() == "success");
                Assert.Equal("mlp", match.GetProperty("metric").GetProperty("model").GetString());
                Assert.Equal(count, double.Parse(match.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture));
            }

            Assert.Contains(series, s => s.GetProperty("outcome").GetString() == "invalid");

            var buckets = await QueryUntilAsync(api, "capstan_inference_request_duration_seconds_bucket{model=\"mlp\",le=\"+Inf\"}", r => r.GetArrayLength() == served.Count, prometheus, log);
            Assert.Equal(served.Keys.Order(), buckets.EnumerateArray().Select(s => s.GetProperty("metric").GetProperty("version").GetString()!).Order());
            var p99 = await QueryUntilAsync(api, "histogram_quantile(0.99, sum by (le) (capstan_inference_request_duration_seconds_bucket{model=\"mlp\"}))", r => r.GetArrayLength() == 1, prometheus, log);
            var seconds = double.Parse(p99[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
            Assert.InRange(seconds, 1e-6, 10);
        }
        finally
        {
            prometheus.Kill(entireProcessTree: true);
            await prometheus.WaitForExitAsync(CancellationToken.None);
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Runs an instant query through <c>/api/v1/query</c> until its result satisfies <paramref name="done"/>.</summary>
    private static async Task<JsonElement> QueryUntilAsync(HttpClient api, string query, Func<JsonElement, bool> done, Process prometheus, StringBuilder log)
    {
        var clock = Stopwatch.StartNew();
        var last = "";
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            Assert.False(prometheus.HasExited, $"prometheus exited with {(prometheus.HasExited ? prometheus.ExitCode : 0)}: {log}");
            try
            {
                last = await api.GetStringAsync("/api/v1/query?query=" + Uri.EscapeDataString(query), Ct);
                var root = JsonDocument.Parse(last).RootElement;
                if (root.GetProperty("status").GetString() == "success" && root.GetProperty("data").GetProperty("result") is { ValueKind: JsonValueKind.Array } result && done(result))
                {
                    return result.Clone();
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(250, Ct);
        }

        Assert.Fail($"'{query}' never gave the expected series; last answer: {last}; prometheus log: {log}");
        return default;
    }
}
