using Prometheus;

namespace Capstan.Serving.Metrics;

/// <summary>
/// The server's Prometheus metrics, in a registry of its own so several servers in one process
/// (tests, benchmarks) keep separate counts.
/// </summary>
public sealed class ServingMetrics
{
    public ServingMetrics()
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        Requests = factory.CreateCounter(
            "capstan_inference_requests_total",
            "Inference requests by model, version and outcome (success, invalid, not_found, queue_full, timeout, unavailable, error).",
            new CounterConfiguration { LabelNames = ["model", "version", "outcome"] });
        Latency = factory.CreateHistogram(
            "capstan_inference_request_duration_seconds",
            "Time from a decoded request to its result, by model and version.",
            new HistogramConfiguration
            {
                LabelNames = ["model", "version"],
                Buckets = Histogram.ExponentialBuckets(0.00005, 2, 18),
            });
        BatchSize = factory.CreateHistogram(
            "capstan_inference_batch_size",
            "Rows per ONNX Runtime run, by model and version.",
            new HistogramConfiguration
            {
                LabelNames = ["model", "version"],
                Buckets = [1, 2, 4, 8, 16, 32, 64, 128, 256],
            });
        QueueDepth = factory.CreateGauge(
            "capstan_inference_queue_depth",
            "Requests waiting or running, by model and version.",
            new GaugeConfiguration { LabelNames = ["model", "version"] });
    }

    public CollectorRegistry Registry { get; }

    public Counter Requests { get; }

    public Histogram Latency { get; }

    public Histogram BatchSize { get; }

    public Gauge QueueDepth { get; }
}
