using Prometheus;

namespace Capstan.Shared;

/// <summary>
/// Reconcile figures under the names both control planes export (<c>capstan server</c> and <c>capstan operator</c>, so
/// one dashboard and one alert serve both): passes by kind and result and their time, as controller-runtime counts
/// them, and the keys waiting in each kind's work queue, read at scrape time. Compiled into both assemblies.
/// </summary>
internal sealed class ReconcileMetrics
{
    private readonly Counter _reconciles;
    private readonly Histogram _reconcileTime;
    private readonly Gauge _queueDepth;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Func<int>> _depths = new(StringComparer.Ordinal);

    public ReconcileMetrics(CollectorRegistry registry)
    {
        var factory = Prometheus.Metrics.WithCustomRegistry(registry);
        _reconciles = factory.CreateCounter(
            "capstan_reconcile_total",
            "Reconcile passes by kind and result (success, requeue_after, conflict, error).",
            new CounterConfiguration { LabelNames = ["kind", "result"] });
        _reconcileTime = factory.CreateHistogram(
            "capstan_reconcile_duration_seconds",
            "Time of one reconcile pass, by kind.",
            new HistogramConfiguration { LabelNames = ["kind"], Buckets = Histogram.ExponentialBuckets(0.0005, 2, 16) });
        _queueDepth = factory.CreateGauge("capstan_workqueue_depth", "Keys waiting in a kind's work queue.", new GaugeConfiguration { LabelNames = ["kind"] });
        registry.AddBeforeCollectCallback(() =>
        {
            lock (_gate)
            {
                foreach (var (kind, depth) in _depths)
                {
                    _queueDepth.WithLabels(kind).Set(depth());
                }
            }
        });
    }

    /// <summary>Counts one kind's passes; <paramref name="depth"/> is read at each scrape (a later call for the kind replaces it).</summary>
    public ReconcileCounters ForKind(string kind, Func<int> depth)
    {
        lock (_gate)
        {
            _depths[kind] = depth;
        }

        return new ReconcileCounters(
            _reconcileTime.WithLabels(kind),
            _reconciles.WithLabels(kind, "success"),
            _reconciles.WithLabels(kind, "requeue_after"),
            _reconciles.WithLabels(kind, "conflict"),
            _reconciles.WithLabels(kind, "error"));
    }
}

/// <summary>One kind's reconcile counters, looked up once rather than by label values on every pass.</summary>
internal sealed class ReconcileCounters(Histogram.Child time, Counter.Child success, Counter.Child requeue, Counter.Child conflict, Counter.Child error)
{
    public void Succeeded(double seconds, bool requeued)
    {
        time.Observe(seconds);
        (requeued ? requeue : success).Inc();
    }

    public void Failed(double seconds, bool isConflict)
    {
        time.Observe(seconds);
        (isConflict ? conflict : error).Inc();
    }
}
