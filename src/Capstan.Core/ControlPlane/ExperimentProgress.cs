using System.Globalization;
using Capstan.Core.Resources;
using Engine = Capstan.Tuning;

namespace Capstan.Core.ControlPlane;

/// <summary>
/// The rules of an Experiment that do not depend on where its trials run, shared by the control plane's
/// <see cref="ExperimentReconciler"/> (trials as local TrainJobs, metrics in tracking runs) and the operator's
/// Experiment controller (trials as TrainJob custom resources, metrics from the trials' pods): a trial's objective
/// values by metric strategy, the trial as the search engine sees it, the counts, when the experiment ends and why,
/// how many new trials fit, and the status summary (counts, optimal trial, Pareto front).
/// </summary>
public static class ExperimentProgress
{
    /// <summary>
    /// Katib's restart: an experiment that succeeded by reaching maxTrialCount goes on when its spec is edited to a
    /// larger maxTrialCount, unless its resumePolicy is Never. Its finished trials stay and feed the search.
    /// </summary>
    public static bool Resumable(TuningExperiment experiment)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        return experiment.Spec.ResumePolicy is not ResumePolicy.Never
            && experiment.Status is { Phase: ExperimentPhase.Succeeded } status
            && status.ObservedGeneration != experiment.Metadata.Generation
            && status.Conditions?.FirstOrDefault(c => c.Type == ExperimentReconciler.ConditionSucceeded)?.Reason == ExperimentReconciler.ReasonMaxTrialsReached
            && experiment.Spec.MaxTrialCount > (status.Trials ?? 0);
    }

    /// <summary>The value of <paramref name="metric"/> in an observation, by the metric's strategy (latest unless min or max).</summary>
    public static double? Value(ExperimentSpec spec, Observation? observation, string metric)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (observation?.Metrics?.FirstOrDefault(m => m.Name == metric) is not { } observed)
        {
            return null;
        }

        return spec.Objective?.MetricStrategies?.FirstOrDefault(s => s.Name == metric)?.Value switch
        {
            MetricStrategyType.Min => observed.Min,
            MetricStrategyType.Max => observed.Max,
            _ => observed.Latest,
        };
    }

    /// <summary>Every objective's value in the observation, or null when one is missing.</summary>
    public static IReadOnlyList<double>? Values(ExperimentSpec spec, Observation? observation, IReadOnlyList<Engine.Objective> objectives)
    {
        ArgumentNullException.ThrowIfNull(objectives);
        var values = new double[objectives.Count];
        for (var i = 0; i < objectives.Count; i++)
        {
            if (Value(spec, observation, objectives[i].Name) is not { } value)
            {
                return null;
            }

            values[i] = value;
        }

        return values;
    }

    /// <summary>The trial as the search engine sees it: succeeded is Completed, early stopped is Pruned, any other end is Failed, else Running.</summary>
    public static Engine.Trial ToEngine(ExperimentSpec spec, TrialResult result, int number, Engine.ParameterAssignment parameters, IReadOnlyList<Engine.IntermediateValue>? intermediate, IReadOnlyList<Engine.Objective> objectives)
    {
        ArgumentNullException.ThrowIfNull(result);
        var state = result.Phase switch
        {
            TrialPhase.Succeeded => Engine.TrialState.Completed,
            TrialPhase.EarlyStopped => Engine.TrialState.Pruned,
            TrialPhase.Failed or TrialPhase.Killed or TrialPhase.MetricsUnavailable => Engine.TrialState.Failed,
            _ => Engine.TrialState.Running,
        };
        var values = state is Engine.TrialState.Completed or Engine.TrialState.Pruned ? Values(spec, result.Observation, objectives) : null;
        return new Engine.Trial(number, parameters, state, values, intermediate);
    }

    /// <summary>How many trials are in each phase; a trial that succeeded without its metrics counts as failed.</summary>
    public static TrialCounts Count(IEnumerable<TrialResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        int pending = 0, running = 0, succeeded = 0, failed = 0, earlyStopped = 0, killed = 0;
        foreach (var result in results)
        {
            switch (result.Phase)
            {
                case TrialPhase.Pending:
                    pending++;
                    break;
                case TrialPhase.Running:
                    running++;
                    break;
                case TrialPhase.Succeeded:
                    succeeded++;
                    break;
                case TrialPhase.Failed or TrialPhase.MetricsUnavailable:
                    failed++;
                    break;
                case TrialPhase.EarlyStopped:
                    earlyStopped++;
                    break;
                case TrialPhase.Killed:
                    killed++;
                    break;
            }
        }

        return new TrialCounts(pending, running, succeeded, failed, earlyStopped, killed);
    }

    public static bool IsTerminal(TrialPhase? phase) =>
        phase is TrialPhase.Succeeded or TrialPhase.Failed or TrialPhase.EarlyStopped or TrialPhase.Killed or TrialPhase.MetricsUnavailable;

    /// <summary>
    /// Whether the experiment ends now, before any new trial: a succeeded trial reached the goal, more trials failed than
    /// maxFailedTrialCount allows, or maxTrialCount trials have finished and none is <paramref name="active"/> (pending,
    /// running, or stopping and still holding its slot). Null: it goes on.
    /// </summary>
    public static ExperimentEnd? Ending(ExperimentSpec spec, IReadOnlyList<Engine.Objective> objectives, IReadOnlyList<TrialResult> results, int active)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(objectives);
        ArgumentNullException.ThrowIfNull(results);
        var counts = Count(results);
        var primary = objectives[0];
        var reached = results.FirstOrDefault(r => r.Phase == TrialPhase.Succeeded && Values(spec, r.Observation, objectives) is { } v && primary.GoalReached(v[0]));
        if (reached is not null)
        {
            return new ExperimentEnd(true, ExperimentReconciler.ReasonGoalReached, $"Trial {reached.Name} reached the goal: {primary.Name} {Format(Values(spec, reached.Observation, objectives)![0])} (goal {Format(primary.Goal!.Value)})");
        }

        if (spec.MaxFailedTrialCount is { } maxFailed && counts.Failed > maxFailed)
        {
            return new ExperimentEnd(false, ExperimentReconciler.ReasonMaxFailedTrialsReached, $"{counts.Failed} trial(s) failed, more than maxFailedTrialCount {maxFailed}");
        }

        var finished = results.Count - active;
        if (spec.MaxTrialCount is { } max && finished >= max && active == 0)
        {
            return counts.Succeeded == 0
                ? new ExperimentEnd(false, ExperimentReconciler.ReasonNoTrialSucceeded, $"All {finished} trial(s) ended without succeeding")
                : new ExperimentEnd(true, ExperimentReconciler.ReasonMaxTrialsReached, $"{finished} of maxTrialCount {max} trials completed");
        }

        return null;
    }

    /// <summary>The end when the search algorithm has no point left to try and no trial is active.</summary>
    public static ExperimentEnd Exhausted(IReadOnlyList<TrialResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        return Count(results).Succeeded == 0
            ? new ExperimentEnd(false, ExperimentReconciler.ReasonNoTrialSucceeded, $"The search space is exhausted and none of its {results.Count} trial(s) succeeded")
            : new ExperimentEnd(true, ExperimentReconciler.ReasonSearchSpaceExhausted, $"Every point of the search space was tried ({results.Count} trials)");
    }

    /// <summary>How many new trials to ask for: what parallelTrialCount leaves beside the active ones, within maxTrialCount.</summary>
    public static int Room(ExperimentSpec spec, int active, int total)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return Math.Min((spec.ParallelTrialCount ?? 1) - active, (spec.MaxTrialCount ?? int.MaxValue) - total);
    }

    /// <summary>Counts, the optimal trial, the Pareto front and the trial list, from the trials' results and their engine view (same order).</summary>
    public static void Summarize(ExperimentStatus status, IReadOnlyList<TrialResult> results, IReadOnlyList<Engine.Trial> history, IReadOnlyList<Engine.Objective> objectives)
    {
        ArgumentNullException.ThrowIfNull(status);
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(objectives);
        var counts = Count(results);
        status.Trials = results.Count;
        status.TrialsPending = counts.Pending;
        status.TrialsRunning = counts.Running;
        status.TrialsSucceeded = counts.Succeeded;
        status.TrialsFailed = counts.Failed;
        status.TrialsEarlyStopped = counts.EarlyStopped;
        status.TrialsKilled = counts.Killed;
        status.TrialResults = [.. results];
        var positions = new Dictionary<int, int>();
        for (var i = 0; i < history.Count; i++)
        {
            positions[history[i].Number] = i;
        }

        TrialResult ResultOf(Engine.Trial trial) => results[positions[trial.Number]];
        var best = Engine.ParetoFront.Best(history, objectives[0]);
        status.CurrentOptimalTrial = best is null ? null : ResultOf(best);
        status.ParetoFront = objectives.Count > 1
            ? [.. Engine.ParetoFront.Of(history, objectives).Select(ResultOf)]
            : null;
    }

    /// <summary>The status message of a running experiment: <c>3/8 trials: 1 succeeded, 2 running, ...</c>.</summary>
    public static string ProgressMessage(ExperimentSpec spec, ExperimentStatus status)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(status);
        var counts = $"{status.TrialsSucceeded ?? 0} succeeded, {status.TrialsRunning ?? 0} running, {status.TrialsPending ?? 0} pending, {status.TrialsFailed ?? 0} failed, {status.TrialsEarlyStopped ?? 0} early stopped";
        return $"{status.Trials ?? 0}{(spec.MaxTrialCount is { } max ? $"/{max}" : "")} trials: {counts}";
    }

    public static string Format(double value) => value.ToString("G6", CultureInfo.InvariantCulture);

    /// <summary>
    /// The trials of one pass, by index: every TrainJob of the experiment and every recorded result whose TrainJob is
    /// gone, with its parameters (recorded, else from the job's annotation) parsed in <paramref name="space"/>, and a
    /// new Pending result for a job not recorded yet. A trial whose parameters no longer fit the space is left out:
    /// the search space changed under it, and it no longer belongs to this search.
    /// </summary>
    public static List<ExperimentTrial> MatchTrials(TuningExperiment experiment, IReadOnlyDictionary<string, TrainJob> jobs, Engine.SearchSpace space)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        ArgumentNullException.ThrowIfNull(jobs);
        ArgumentNullException.ThrowIfNull(space);
        var recorded = (experiment.Status?.TrialResults ?? []).Where(r => r.Name is not null).ToDictionary(r => r.Name!, StringComparer.Ordinal);
        var trials = new List<ExperimentTrial>();
        foreach (var name in jobs.Keys.Union(recorded.Keys, StringComparer.Ordinal))
        {
            var job = jobs.GetValueOrDefault(name);
            var result = recorded.GetValueOrDefault(name);
            var parameters = result?.ParameterAssignments?.Where(a => a.Name is not null).ToDictionary(a => a.Name!, a => a.Value ?? "", StringComparer.Ordinal)
                ?? ReadParameters(job);
            var index = result?.Index ?? ReadIndex(job);
            if (parameters is null || index is null)
            {
                continue;
            }

            Engine.ParameterAssignment assignment;
            try
            {
                assignment = space.Parse(parameters);
            }
            catch (Engine.TuningSpecException)
            {
                continue;
            }

            result ??= NewResult(name, index.Value, parameters);
            trials.Add(new ExperimentTrial(experiment.Spec, name, index.Value, assignment, result, job));
        }

        return [.. trials.OrderBy(t => t.Index)];
    }

    /// <summary>The Pending result of a trial just created or not recorded yet.</summary>
    public static TrialResult NewResult(string name, int index, IReadOnlyDictionary<string, string> parameters) => new()
    {
        Name = name,
        Index = index,
        Phase = TrialPhase.Pending,
        ParameterAssignments = [.. parameters.Select(p => new ParameterAssignment { Name = p.Key, Value = p.Value })],
    };

    private static Dictionary<string, string>? ReadParameters(TrainJob? job) =>
        job?.Metadata.Annotations?.TryGetValue(ExperimentReconciler.TrialParametersAnnotation, out var json) == true
            ? System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(json)
            : null;

    private static int? ReadIndex(TrainJob? job) =>
        job?.Metadata.Annotations?.TryGetValue(ExperimentReconciler.TrialIndexAnnotation, out var text) == true
        && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            ? index
            : null;
}

/// <summary>One trial during a pass: its result (as recorded, then brought up to date), its TrainJob (null when gone) and its parameters.</summary>
public sealed class ExperimentTrial(ExperimentSpec spec, string name, int index, Engine.ParameterAssignment parameters, TrialResult result, TrainJob? job)
{
    public string Name { get; } = name;

    public int Index { get; } = index;

    public Engine.ParameterAssignment Parameters { get; } = parameters;

    public TrialResult Result { get; } = result;

    public TrainJob? Job { get; set; } = job;

    /// <summary>The primary objective by step, read for early stopping; null when not read this pass.</summary>
    public IReadOnlyList<Engine.IntermediateValue>? Intermediate { get; set; }

    public IReadOnlyList<double>? Values(IReadOnlyList<Engine.Objective> objectives) => ExperimentProgress.Values(spec, Result.Observation, objectives);

    public Engine.Trial ToEngine(IReadOnlyList<Engine.Objective> objectives) => ExperimentProgress.ToEngine(spec, Result, Index, Parameters, Intermediate, objectives);
}

/// <summary>How many trials are in each phase.</summary>
public sealed record TrialCounts(int Pending, int Running, int Succeeded, int Failed, int EarlyStopped, int Killed);

/// <summary>Why an experiment ended: Succeeded or Failed, with the condition's reason and message.</summary>
public sealed record ExperimentEnd(bool Succeeded, string Reason, string Message);
