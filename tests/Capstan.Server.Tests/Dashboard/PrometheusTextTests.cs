using Capstan.Server.Dashboard;

namespace Capstan.Server.Tests.Dashboard;

public sealed class PrometheusTextTests
{
    private const string Exposition = """
        # HELP capstan_inference_requests_total Inference requests.
        # TYPE capstan_inference_requests_total counter
        capstan_inference_requests_total{model="iris",version="1",outcome="success"} 42
        capstan_inference_requests_total{model="iris",version="1",outcome="invalid"} 3 1700000000000
        capstan_inference_requests_total{model="iris",version="2",outcome="success"} 7
        capstan_inference_request_duration_seconds_bucket{model="iris",version="1",le="0.001"} 40
        capstan_inference_request_duration_seconds_bucket{model="iris",version="1",le="0.0005"} 30
        capstan_inference_request_duration_seconds_bucket{model="iris",version="1",le="+Inf"} 45
        capstan_inference_request_duration_seconds_sum{model="iris",version="1"} 0.02
        capstan_inference_request_duration_seconds_count{model="iris",version="1"} 45
        capstan_inference_queue_depth{model="iris",version="2"} 2
        odd_label{path="a \"quoted\" \\ back\nslash"} NaN
        this line is not a sample
        """;

    [Fact]
    public void Parse_ExpositionText_ReadsLabelsValuesAndEscapesAndSkipsComments()
    {
        var samples = PrometheusText.Parse(Exposition).ToList();

        Assert.Equal(10, samples.Count); // the line that is not a sample is skipped
        Assert.Equal(3, samples[1].Value); // the timestamp is not the value
        Assert.Equal(45, samples.Single(s => s.Label("le") == "+Inf").Value);
        var odd = samples.Single(s => s.Name == "odd_label");
        Assert.Equal("a \"quoted\" \\ back\nslash", odd.Label("path"));
        Assert.True(double.IsNaN(odd.Value));
    }

    [Fact]
    public void From_Scrape_GroupsByVersionWithSortedFiniteBuckets()
    {
        var metrics = ServiceMetrics.From(1, "http://127.0.0.1:1", PrometheusText.Parse(Exposition));

        Assert.True(metrics.Available);
        var v1 = metrics.Versions.Single(v => v.Version == "1");
        Assert.Equal(42, v1.Requests["success"]);
        Assert.Equal(3, v1.Requests["invalid"]);
        Assert.Equal([[0.0005, 30], [0.001, 40]], v1.LatencyBuckets);
        Assert.Equal(45, v1.LatencyCount);
        var v2 = metrics.Versions.Single(v => v.Version == "2");
        Assert.Equal(7, v2.Requests["success"]);
        Assert.Equal(2, v2.QueueDepth);
    }
}
