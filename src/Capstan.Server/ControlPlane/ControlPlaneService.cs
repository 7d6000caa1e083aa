using System.Threading.Channels;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Core.Tracking;
using Capstan.Server.Metrics;
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
    ExperimentReconciler? experiments = null,
    ControlPlaneMetrics? controlPlaneMetrics = null) : BackgroundService
{
    private const int MetricEventCapacity = 16_384;

    private readonly ControlPlaneOptions _options = options ?? new ControlPlaneOptions();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var jobs = new ReconcileLoop<TrainJob>(
            TrainJob.KindName,
            _options,
            time,
            reconciler.ReconcileAsync,
            async (job, cancellationToken) =>
            {
                await reconciler.StopDeletedAsync(job, cancellationToken).ConfigureAwait(false);
                Log.JobDeleted(logger, TrainJobReconciler.Key(job));
            },
            (key, e) => Log.ReconcileFailed(logger, key, e),
            UnfinishedJobsAsync,
            metrics: controlPlaneMetrics);
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
            WatchJobsAsync(jobs, stoppingToken),
            WatchRuntimeAsync(runtimeEvents, jobs, metrics.Writer, stoppingToken),
            LogMetricsAsync(metrics.Reader, stoppingToken),
            OrphanSweep.RunAsync(logger, runtime, resources, TrainJob.KindName, TrainJobReconciler.KeyOfWorkload, stoppingToken),
        };
        loops.AddRange(jobs.Run(_options.Workers, stoppingToken));
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

    private async Task WatchJobsAsync(ReconcileLoop<TrainJob> jobs, CancellationToken cancellationToken)
    {
        await foreach (var change in resources.WatchAsync(TrainJob.KindName, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var key = TrainJobReconciler.Key(change.Object);
            if (change.Type == WatchEventType.Deleted && change.Object is TrainJob job)
            {
                await jobs.DeletedAsync(key, job, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await jobs.AddAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async Task WatchRuntimeAsync(IAsyncEnumerable<WorkloadEvent> events, ReconcileLoop<TrainJob> jobs, ChannelWriter<WorkloadMetricsReported> metrics, CancellationToken cancellationToken)
    {
        await foreach (var item in events.ConfigureAwait(false))
        {
            switch (item)
            {
                case WorkloadMetricsReported reported:
                    await metrics.WriteAsync(reported, cancellationToken).ConfigureAwait(false);
                    break;
                case WorkloadStatusChanged changed when TrainJobReconciler.KeyOfWorkload(changed.WorkloadId) is { } key:
                    await jobs.AddAsync(key, cancellationToken).ConfigureAwait(false);
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

    /// <summary>The resync: every job that has not finished.</summary>
    private async Task<IEnumerable<string>> UnfinishedJobsAsync(CancellationToken cancellationToken) =>
        from job in await resources.ListAsync<TrainJob>(cancellationToken: cancellationToken).ConfigureAwait(false)
        where job.Status?.Phase is not (TrainJobPhase.Succeeded or TrainJobPhase.Failed)
        select TrainJobReconciler.Key(job);
}
