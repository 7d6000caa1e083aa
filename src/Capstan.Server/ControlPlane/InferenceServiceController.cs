using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Server.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Capstan.Server.ControlPlane;

/// <summary>
/// The InferenceService loop beside <see cref="ControlPlaneService"/>: watch events of the kind and status changes of the
/// servers' workloads become keys in a bounded work queue that workers drain through <see cref="InferenceServiceReconciler"/>;
/// the reconciler's requeue delays (readiness probes, alias polls, restart backoff) are timers. The watch starts without a
/// version, so a restarted server sees every service again and adopts its running server.
/// </summary>
public sealed class InferenceServiceController(
    InferenceServiceReconciler reconciler,
    IResourceStore resources,
    IWorkloadRuntime runtime,
    TimeProvider time,
    ILogger<InferenceServiceController> logger,
    ControlPlaneOptions? options = null,
    ControlPlaneMetrics? metrics = null) : BackgroundService
{
    private readonly ControlPlaneOptions _options = options ?? new ControlPlaneOptions();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var services = new ReconcileLoop<InferenceService>(
            InferenceService.KindName,
            _options,
            time,
            reconciler.ReconcileAsync,
            async (service, cancellationToken) =>
            {
                await reconciler.StopDeletedAsync(service, cancellationToken).ConfigureAwait(false);
                Log.InferenceServiceDeleted(logger, TrainJobReconciler.Key(service));
            },
            (key, e) => Log.ReconcileFailed(logger, key, e),
            resync: null,
            metrics: metrics);
        var runtimeEvents = runtime.WatchAsync(stoppingToken);
        var loops = new List<Task>
        {
            WatchServicesAsync(services, stoppingToken),
            WatchRuntimeAsync(runtimeEvents, services, stoppingToken),
            OrphanSweep.RunAsync(logger, runtime, resources, InferenceService.KindName, InferenceServiceReconciler.KeyOfWorkload, stoppingToken),
        };
        loops.AddRange(services.Run(_options.Workers, stoppingToken));

        try
        {
            await Task.WhenAll(loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping; the servers keep running and are adopted by the next start.
        }
    }

    private async Task WatchServicesAsync(ReconcileLoop<InferenceService> services, CancellationToken cancellationToken)
    {
        await foreach (var change in resources.WatchAsync(InferenceService.KindName, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var key = TrainJobReconciler.Key(change.Object);
            if (change.Type == WatchEventType.Deleted && change.Object is InferenceService service)
            {
                await services.DeletedAsync(key, service, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await services.AddAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async Task WatchRuntimeAsync(IAsyncEnumerable<WorkloadEvent> events, ReconcileLoop<InferenceService> services, CancellationToken cancellationToken)
    {
        await foreach (var item in events.ConfigureAwait(false))
        {
            if (item is WorkloadStatusChanged changed && InferenceServiceReconciler.KeyOfWorkload(changed.WorkloadId) is { } key)
            {
                await services.AddAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
