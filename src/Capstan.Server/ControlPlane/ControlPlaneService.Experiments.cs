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
    private IEnumerable<Task> ExperimentLoops(CancellationToken cancellationToken)
    {
        if (experiments is null)
        {
            return [];
        }

        var loop = new ReconcileLoop<Resource>(
            TuningExperiment.KindName,
            _options,
            time,
            experiments.ReconcileAsync,
            async (experiment, token) =>
            {
                await experiments.DeleteTrialsAsync(experiment, token).ConfigureAwait(false);
                Log.ExperimentDeleted(logger, TrainJobReconciler.Key(experiment));
            },
            (key, e) => Log.ExperimentReconcileFailed(logger, key, e),
            UnfinishedExperimentsAsync,
            metrics: controlPlaneMetrics);

        // One worker: an experiment's pass reads all its trials, and passes of different experiments are short.
        return
        [
            WatchExperimentsAsync(loop, cancellationToken),
            WatchTrialsAsync(loop, cancellationToken),
            .. loop.Run(workers: 1, cancellationToken),
        ];
    }

    private async Task WatchExperimentsAsync(ReconcileLoop<Resource> loop, CancellationToken cancellationToken)
    {
        await foreach (var change in resources.WatchAsync(TuningExperiment.KindName, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var key = TrainJobReconciler.Key(change.Object);
            if (change.Type == WatchEventType.Deleted)
            {
                await loop.DeletedAsync(key, change.Object, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await loop.AddAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task WatchTrialsAsync(ReconcileLoop<Resource> loop, CancellationToken cancellationToken)
    {
        await foreach (var change in resources.WatchAsync(TrainJob.KindName, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            if (ExperimentReconciler.ExperimentKeyOf(change.Object) is { } key)
            {
                await loop.AddAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The resync: every experiment that has not finished.</summary>
    private async Task<IEnumerable<string>> UnfinishedExperimentsAsync(CancellationToken cancellationToken) =>
        from experiment in await resources.ListAsync<TuningExperiment>(cancellationToken: cancellationToken).ConfigureAwait(false)
        where experiment.Status?.Phase is not (ExperimentPhase.Succeeded or ExperimentPhase.Failed)
        select TrainJobReconciler.Key(experiment);
}
