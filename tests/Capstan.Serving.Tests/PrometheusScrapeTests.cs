using System.Globalization;
using System.Net;
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

    [Fact]
    public async Task Prometheus_ScrapesTheServer_SeesRequestsByModelVersionOutcomeAndTheLatencyHistogram()
    {
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

        var target = host.Rest.BaseAddress!.Authority;
        using var prometheus = await PrometheusProcess.StartAsync("capstan-serving", target, Ct);
        var requests = await prometheus.QueryUntilAsync("capstan_inference_requests_total", r => r.GetArrayLength() >= 3, Ct);
        var series = requests.EnumerateArray().Select(s => s.GetProperty("metric")).ToList();
        Assert.All(series, s => Assert.Equal(("capstan-serving", target), (s.GetProperty("job").GetString(), s.GetProperty("instance").GetString())));
        foreach (var (version, count) in served)
        {
            var match = requests.EnumerateArray().Single(s => s.GetProperty("metric").GetProperty("version").GetString() == version && s.GetProperty("metric").GetProperty("outcome").GetString() == "success");
            Assert.Equal("mlp", match.GetProperty("metric").GetProperty("model").GetString());
            Assert.Equal(count, double.Parse(match.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture));
        }

        Assert.Contains(series, s => s.GetProperty("outcome").GetString() == "invalid");

        var buckets = await prometheus.QueryUntilAsync("capstan_inference_request_duration_seconds_bucket{model=\"mlp\",le=\"+Inf\"}", r => r.GetArrayLength() == served.Count, Ct);
        Assert.Equal(served.Keys.Order(), buckets.EnumerateArray().Select(s => s.GetProperty("metric").GetProperty("version").GetString()!).Order());
        var p99 = await prometheus.QueryUntilAsync("histogram_quantile(0.99, sum by (le) (capstan_inference_request_duration_seconds_bucket{model=\"mlp\"}))", r => r.GetArrayLength() == 1, Ct);
        var seconds = double.Parse(p99[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
        Assert.InRange(seconds, 1e-6, 10);
    }
}
