using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Spectre.Console;

namespace Capstan.Cli.ControlPlane;

/// <summary>
/// The Experiment part of <c>capstan run</c>: waits for each experiment, showing its trials as they start and end and
/// a progress bar of trials done against maxTrialCount with the best so far, then prints the trial table.
/// </summary>
internal static class RunExperiments
{
    private static readonly TimeSpan s_poll = TimeSpan.FromMilliseconds(100);

    /// <summary>Waits for the experiment to end; true when it succeeded.</summary>
    public static async Task<bool> WaitAsync(CliContext context, IResourceStore resources, TuningExperiment applied, CancellationToken cancellationToken)
    {
        var ns = applied.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;
        var name = applied.Metadata.Name!;
        TuningExperiment experiment;
        if (context.Error.Profile.Capabilities.Interactive)
        {
            experiment = applied;
            await context.Error.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .StartAsync(async progress =>
                {
                    var bar = progress.AddTask($"experiment/{name}", maxValue: applied.Spec.MaxTrialCount ?? 1);
                    experiment = await PollAsync(context, resources, ns, name, e =>
                    {
                        bar.Description = Markup.Escape(ExperimentView.Progress(e));
                        bar.Value = Done(e);
                    }, cancellationToken);
                    bar.Value = bar.MaxValue;
                });
        }
        else
        {
            string? last = null;
            experiment = await PollAsync(context, resources, ns, name, e =>
            {
                var line = ExperimentView.Progress(e);
                if (line != last)
                {
                    context.Error.WriteLine(line);
                    last = line;
                }
            }, cancellationToken);
        }

        ExperimentView.Write(context.Out, experiment);
        var status = experiment.Status!;
        if (status.Phase == ExperimentPhase.Succeeded)
        {
            context.Error.MarkupLineInterpolated($"[green]experiment/{name} succeeded[/] ({status.Conditions?.FirstOrDefault(c => c.Type == ExperimentReconciler.ConditionSucceeded)?.Reason}): {status.Message}");
            return true;
        }

        var reason = status.Conditions?.FirstOrDefault(c => c.Type == ExperimentReconciler.ConditionFailed)?.Reason ?? "Failed";
        CommandAction.Fail(context, $"experiment/{name} failed ({reason}): {status.Message}");
        return false;
    }

    private static async Task<TuningExperiment> PollAsync(CliContext context, IResourceStore resources, string ns, string name, Action<TuningExperiment> show, CancellationToken cancellationToken)
    {
        var seen = new Dictionary<string, TrialPhase?>(StringComparer.Ordinal);
        while (true)
        {
            var experiment = await resources.GetAsync<TuningExperiment>(ns, name, cancellationToken);
            foreach (var trial in experiment.Status?.TrialResults ?? [])
            {
                if (trial.Name is { } trialName && (!seen.TryGetValue(trialName, out var before) || before != trial.Phase))
                {
                    seen[trialName] = trial.Phase;
                    context.Error.WriteLine(TrialLine(experiment, trial));
                }
            }

            show(experiment);
            if (experiment.Status?.Phase is ExperimentPhase.Succeeded or ExperimentPhase.Failed)
            {
                return experiment;
            }

            await Task.Delay(s_poll, cancellationToken);
        }
    }

    private static string TrialLine(TuningExperiment experiment, TrialResult trial)
    {
        var metrics = string.Join(", ", ExperimentView.Objectives(experiment.Spec).Select(o => (o.Metric, Value: ExperimentView.Value(experiment, trial, o.Metric)))
            .Where(m => m.Value is not null).Select(m => $"{m.Metric}={ExperimentView.Number(m.Value)}"));
        var detail = trial.Phase switch
        {
            TrialPhase.Pending or TrialPhase.Running or null => ExperimentView.Parameters(trial),
            TrialPhase.Succeeded => metrics,
            _ => $"{trial.Reason}: {trial.Message}",
        };
        return $"trial {trial.Name}: {trial.Phase ?? TrialPhase.Pending} ({detail})";
    }

    private static int Done(TuningExperiment experiment)
    {
        var s = experiment.Status;
        return (s?.TrialsSucceeded ?? 0) + (s?.TrialsFailed ?? 0) + (s?.TrialsEarlyStopped ?? 0) + (s?.TrialsKilled ?? 0);
    }

    /// <summary>Ctrl-C: the experiment's running trials stop with the command.</summary>
    public static async Task StopTrialsAsync(CliContext context, IResourceStore resources, IWorkloadRuntime runtime, TuningExperiment experiment)
    {
        var ns = experiment.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;
        var trials = await resources.ListAsync<TrainJob>(ns, new Dictionary<string, string> { [ExperimentReconciler.ExperimentLabel] = experiment.Metadata.Name! }, CancellationToken.None);
        foreach (var job in trials.Where(j => j.Status is { Attempts: > 0, Phase: not (TrainJobPhase.Succeeded or TrainJobPhase.Failed) }))
        {
            await runtime.StopAsync(TrainJobWorkloads.WorkloadId(job, job.Status!.Attempts!.Value), CancellationToken.None);
            context.Error.WriteLine($"trainjob/{job.Metadata.Name} (trial of experiment/{experiment.Metadata.Name}) stopped");
        }
    }
}
