using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
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
    ControlPlaneOptions? options = null) : BackgroundService
{
    private readonly ControlPlaneOptions _options = options ?? new ControlPlaneOptions();
    private readonly Lock _gate = new();
    private readonly Dictionary<string, DateTimeOffset> _timers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, InferenceService> _deleted = new(StringComparer.Ordinal);
    private readonly FailureBackoff _failures = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var queue = new ReconcileQueue(_options.QueueCapacity);
        var runtimeEvents = runtime.WatchAsync(stoppingToken);
        var loops = new List<Task>
        {
            WatchServicesAsync(queue, stoppingToken),
            WatchRuntimeAsync(runtimeEvents, queue, stoppingToken),
            TimersAsync(queue, stoppingToken),
        };
        for (var i = 0; i < Math.Max(1, _options.Workers); i++)
        {
            loops.Add(WorkAsync(queue, stoppingToken));
        }

        try
        {
            await Task.WhenAll(loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping; the servers keep running and are adopted by the next start.
        }
    }

    private async Task WatchServicesAsync(ReconcileQueue queue, CancellationToken cancellationToken)
    {
        await foreach (var change in resources.WatchAsync(InferenceService.KindName, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var key = TrainJobReconciler.Key(change.Object);
            if (change.Type == WatchEventType.Deleted && change.Object is InferenceService service)
            {
                lock (_gate)
                {
                    _deleted[key] = service;
                }
            }

            await queue.AddAsync(key, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task WatchRuntimeAsync(IAsyncEnumerable<WorkloadEvent> events, ReconcileQueue queue, CancellationToken cancellationToken)
    {
        await foreach (var item in events.ConfigureAwait(false))
        {
            if (item is WorkloadStatusChanged changed && InferenceServiceReconciler.KeyOfWorkload(changed.WorkloadId) is { } key)
            {
                await queue.AddAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task TimersAsync(ReconcileQueue queue, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(_options.TimerInterval, time, cancellationToken).ConfigureAwait(false);
            var now = time.GetUtcNow();
            List<string> due;
            lock (_gate)
            {
                due = [.. _timers.Where(t => t.Value <= now).Select(t => t.Key)];
                foreach (var key in due)
                {
                    _timers.Remove(key);
                }
            }

            foreach (var key in due)
            {
                await queue.AddAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task WorkAsync(ReconcileQueue queue, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var key = await queue.TakeAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                InferenceService? deleted;
                lock (_gate)
                {
                    _deleted.Remove(key, out deleted);
                }

                if (deleted is not null)
                {
                    await reconciler.StopDeletedAsync(deleted, cancellationToken).ConfigureAwait(false);
                    Log.InferenceServiceDeleted(logger, key);
                }

                var result = await reconciler.ReconcileAsync(key, cancellationToken).ConfigureAwait(false);
                _failures.Succeeded(key);
                if (result.RequeueAfter is { } delay)
                {
                    Schedule(key, delay);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                if (e is not CapstanException { Code: ErrorCode.Conflict })
                {
                    Log.ReconcileFailed(logger, key, e);
                }

                Schedule(key, _failures.Failed(key));
            }
            finally
            {
                await queue.DoneAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void Schedule(string key, TimeSpan delay)
    {
        var due = time.GetUtcNow() + delay;
        lock (_gate)
        {
            if (!_timers.TryGetValue(key, out var existing) || due < existing)
            {
                _timers[key] = due;
            }
        }
    }
}
