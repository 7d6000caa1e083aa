using System.Threading.Channels;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Core.Tracking;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Capstan.Server.ControlPlane;

/// <summary>
/// The control plane's loop: TrainJob watch events and runtime events become keys in one bounded work queue that
/// workers drain through <see cref="TrainJobReconciler"/>; backoff timers and a periodic resync add keys too, and
/// reported metrics are batched into the jobs' runs. The watch starts without a version, so a restarted server first
/// sees every job again and picks each up where the store and the runtime say it is.
/// </summary>
public sealed partial class ControlPlaneService(
    TrainJobReconciler reconciler,
    IResourceStore resources,
    IWorkloadRuntime runtime,
    TimeProvider time,
    ILogger<ControlPlaneService> logger,
    ControlPlaneOptions? options = null,
    ExperimentReconciler? experiments = null) : BackgroundService
{
    private const int MetricEventCapacity = 16_384;

    private readonly ControlPlaneOptions _options = options ?? new ControlPlaneOptions();
    private readonly Lock _gate = new();
    private readonly Dictionary<string, DateTimeOffset> _timers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TrainJob> _deleted = new(StringComparer.Ordinal);
    private readonly FailureBackoff _failures = new();
    private ReconcileQueue? _queue;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var queue = _queue = new ReconcileQueue(_options.QueueCapacity);
        var metrics = Channel.CreateBounded<WorkloadMetricsReported>(new BoundedChannelOptions(MetricEventCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });

        // Subscribe to the runtime before listing jobs, so no status change between the two is missed.
        var runtimeEvents = runtime.WatchAsync(stoppingToken);
        var loops = new List<Task>
        {
            WatchJobsAsync(queue, stoppingToken),
            WatchRuntimeAsync(runtimeEvents, queue, metrics.Writer, stoppingToken),
            LogMetricsAsync(metrics.Reader, stoppingToken),
            TimersAsync(queue, stoppingToken),
        };
        for (var i = 0; i < Math.Max(1, _options.Workers); i++)
        {
            loops.Add(WorkAsync(queue, stoppingToken));
        }

        loops.AddRange(ExperimentLoops(stoppingToken));

        try
        {
            await Task.WhenAll(loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private async Task WatchJobsAsync(ReconcileQueue queue, CancellationToken cancellationToken)
    {
        await foreach (var change in resources.WatchAsync(TrainJob.KindName, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var key = TrainJobReconciler.Key(change.Object);
            if (change.Type == WatchEventType.Deleted && change.Object is TrainJob job)
            {
                lock (_gate)
                {
                    _deleted[key] = job;
                }
            }

            await queue.AddAsync(key, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task WatchRuntimeAsync(IAsyncEnumerable<WorkloadEvent> events, ReconcileQueue queue, ChannelWriter<WorkloadMetricsReported> metrics, CancellationToken cancellationToken)
    {
        await foreach (var item in events.ConfigureAwait(false))
        {
            switch (item)
            {
                case WorkloadMetricsReported reported:
                    await metrics.WriteAsync(reported, cancellationToken).ConfigureAwait(false);
                    break;
                case WorkloadStatusChanged changed when TrainJobReconciler.KeyOfWorkload(changed.WorkloadId) is { } key:
                    await queue.AddAsync(key, cancellationToken).ConfigureAwait(false);
                    break;
            }
        }
    }

    /// <summary>Takes every report waiting and logs them as one batch per workload.</summary>
    private async Task LogMetricsAsync(ChannelReader<WorkloadMetricsReported> reports, CancellationToken cancellationToken)
    {
        var batch = new Dictionary<string, List<Metric>>(StringComparer.Ordinal);
        while (await reports.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (reports.TryRead(out var report))
            {
                if (!batch.TryGetValue(report.WorkloadId, out var list))
                {
                    batch[report.WorkloadId] = list = [];
                }

                list.AddRange(report.Metrics);
            }

            foreach (var (workloadId, list) in batch)
            {
                try
                {
                    await reconciler.LogMetricsAsync(workloadId, list, cancellationToken).ConfigureAwait(false);
                }
                catch (CapstanException e)
                {
                    Log.MetricsNotLogged(logger, workloadId, list.Count, e);
                }
            }

            batch.Clear();
        }
    }

    private async Task TimersAsync(ReconcileQueue queue, CancellationToken cancellationToken)
    {
        var nextResync = time.GetUtcNow() + _options.ResyncInterval;
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

            if (now >= nextResync)
            {
                nextResync = now + _options.ResyncInterval;
                foreach (var job in await resources.ListAsync<TrainJob>(cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    if (job.Status?.Phase is not (TrainJobPhase.Succeeded or TrainJobPhase.Failed))
                    {
                        due.Add(TrainJobReconciler.Key(job));
                    }
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
                TrainJob? deleted;
                lock (_gate)
                {
                    _deleted.Remove(key, out deleted);
                }

                if (deleted is not null)
                {
                    await reconciler.StopDeletedAsync(deleted, cancellationToken).ConfigureAwait(false);
                    Log.JobDeleted(logger, key);
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
                // Conflicts (someone wrote the job meanwhile), a busy or broken store, a bug in one job's pass: the job is
                // tried again with exponential backoff per key, as Kubernetes controllers' rate-limited queues do, and
                // the other jobs and the server carry on.
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
