using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;

namespace Capstan.Server.ControlPlane;

/// <summary>
/// The Experiment half of the loop: Experiment watch events and changes to TrainJobs that are an experiment's trials
/// become experiment keys in a queue of their own, drained by one worker through <see cref="ExperimentReconciler"/>;
/// requeue timers (early stopping looks at running trials periodically) and the resync add keys too. A deleted
/// experiment's trials are deleted, which stops them.
/// </summary>
public sealed partial class ControlPlaneService
{
    private readonly Dictionary<string, DateTimeOffset> _experimentTimers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Resource> _deletedExperiments = new(StringComparer.Ordinal);
    private readonly FailureBackoff _experimentFailures = new();

    private IEnumerable<Task> ExperimentLoops(CancellationToken cancellationToken)
    {
        if (experiments is null)
        {
            return [];
        }

        var queue = new ReconcileQueue(_options.QueueCapacity);
        return
        [
            WatchExperimentsAsync(queue, cancellationToken),
            WatchTrialsAsync(queue, cancellationToken),
            ExperimentTimersAsync(queue, cancellationToken),
            WorkExperimentsAsync(experiments, queue, cancellationToken),
        ];
    }

    private async Task WatchExperimentsAsync(ReconcileQueue queue, CancellationToken cancellationToken)
    {
        await foreach (var change in resources.WatchAsync(TuningExperiment.KindName, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var key = TrainJobReconciler.Key(change.Object);
            if (change.Type == WatchEventType.Deleted)
            {
                lock (_gate)
                {
                    _deletedExperiments[key] = change.Object;
                }
            }

            await queue.AddAsync(key, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task WatchTrialsAsync(ReconcileQueue queue, CancellationToken cancellationToken)
    {
        await foreach (var change in resources.WatchAsync(TrainJob.KindName, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            if (ExperimentReconciler.ExperimentKeyOf(change.Object) is { } key)
            {
                await queue.AddAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task ExperimentTimersAsync(ReconcileQueue queue, CancellationToken cancellationToken)
    {
        var nextResync = time.GetUtcNow() + _options.ResyncInterval;
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(_options.TimerInterval, time, cancellationToken).ConfigureAwait(false);
            var now = time.GetUtcNow();
            List<string> due;
            lock (_gate)
            {
                due = [.. _experimentTimers.Where(t => t.Value <= now).Select(t => t.Key)];
                foreach (var key in due)
                {
                    _experimentTimers.Remove(key);
                }
            }

            if (now >= nextResync)
            {
                nextResync = now + _options.ResyncInterval;
                foreach (var experiment in await resources.ListAsync<TuningExperiment>(cancellationToken: cancellationToken).ConfigureAwait(false))
                {
                    if (experiment.Status?.Phase is not (ExperimentPhase.Succeeded or ExperimentPhase.Failed))
                    {
                        due.Add(TrainJobReconciler.Key(experiment));
                    }
                }
            }

            foreach (var key in due)
            {
                await queue.AddAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task WorkExperimentsAsync(ExperimentReconciler reconciler, ReconcileQueue queue, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var key = await queue.TakeAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                Resource? deleted;
                lock (_gate)
                {
                    _deletedExperiments.Remove(key, out deleted);
                }

                if (deleted is not null)
                {
                    await reconciler.DeleteTrialsAsync(deleted, cancellationToken).ConfigureAwait(false);
                    Log.ExperimentDeleted(logger, key);
                }

                var result = await reconciler.ReconcileAsync(key, cancellationToken).ConfigureAwait(false);
                _experimentFailures.Succeeded(key);
                if (result.RequeueAfter is { } delay)
                {
                    ScheduleExperiment(key, delay);
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
                    Log.ExperimentReconcileFailed(logger, key, e);
                }

                ScheduleExperiment(key, _experimentFailures.Failed(key));
            }
            finally
            {
                await queue.DoneAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void ScheduleExperiment(string key, TimeSpan delay)
    {
        var due = time.GetUtcNow() + delay;
        lock (_gate)
        {
            if (!_experimentTimers.TryGetValue(key, out var existing) || due < existing)
            {
                _experimentTimers[key] = due;
            }
        }
    }
}
