using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Shared;
using Prometheus;

namespace Capstan.Server.Metrics;

/// <summary>
/// The control plane's Prometheus metrics, in one registry per server: passes through each kind's reconcile loop
/// (controller-runtime's reconcile total and time, as Kubeflow's operators export them), the keys waiting in each work
/// queue, the objects of each kind by phase (read from the store at scrape time), HTTP requests by endpoint and the
/// process's own figures.
/// </summary>
public sealed class ControlPlaneMetrics
{
    private static readonly string[] s_kinds = [TrainJob.KindName, TuningExperiment.KindName, InferenceService.KindName];

    private readonly ReconcileMetrics _reconciles;
    private readonly Gauge _resources;

    public ControlPlaneMetrics(IResourceStore? store = null)
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        Factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        DotNetStats.Register(Registry);
        _reconciles = new ReconcileMetrics(Registry);
        _resources = Factory.CreateGauge(
            "capstan_resources",
            "Objects of each kind by status phase (Pending before the control plane has written one).",
            new GaugeConfiguration { LabelNames = ["kind", "phase"] });

        if (store is not null)
        {
            Registry.AddBeforeCollectCallback(cancellationToken => CountResourcesAsync(store, cancellationToken));
        }
    }

    public CollectorRegistry Registry { get; }

    /// <summary>Creates metrics in <see cref="Registry"/> (the HTTP middleware's are made through it).</summary>
    public IMetricFactory Factory { get; }

    /// <summary>The counters of one kind's loop; <paramref name="depth"/> is read at each scrape.</summary>
    internal ReconcileCounters ForKind(string kind, Func<int> depth) => _reconciles.ForKind(kind, depth);

    private async Task CountResourcesAsync(IResourceStore store, CancellationToken cancellationToken)
    {
        foreach (var kind in s_kinds)
        {
            var counts = await store.CountByPhaseAsync(kind, cancellationToken).ConfigureAwait(false);

            // Phases that had objects before and have none now read 0 rather than keeping their last count.
            foreach (var labels in _resources.GetAllLabelValues().Where(l => l[0] == kind))
            {
                if (!counts.ContainsKey(labels[1]))
                {
                    _resources.WithLabels(labels).Set(0);
                }
            }

            foreach (var (phase, count) in counts)
            {
                _resources.WithLabels(kind, phase).Set(count);
            }
        }
    }
}
