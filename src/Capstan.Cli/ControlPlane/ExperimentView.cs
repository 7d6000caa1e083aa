using System.Globalization;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Spectre.Console;

namespace Capstan.Cli.ControlPlane;

/// <summary>How an Experiment reads for people: its trials as a table sorted by the objective with the best one marked, and the Pareto front when there are several objectives.</summary>
internal static class ExperimentView
{
    public const string BestMark = "*";

    /// <summary>The objective metrics with their directions, the primary first.</summary>
    public static IReadOnlyList<(string Metric, ObjectiveType Type)> Objectives(ExperimentSpec spec) =>
        [.. TuningSearch.Objectives(spec).Select(o => (o.Name, o.Direction == Tuning.ObjectiveDirection.Minimize ? ObjectiveType.Minimize : ObjectiveType.Maximize))];

    /// <summary>The trials, best first by the primary objective; trials without a value follow in their order.</summary>
    public static IReadOnlyList<TrialResult> SortedTrials(TuningExperiment experiment)
    {
        var (metric, type) = Objectives(experiment.Spec)[0];
        var trials = experiment.Status?.TrialResults ?? [];
        var scored = trials.Where(t => Value(experiment, t, metric) is not null);
        var ordered = type == ObjectiveType.Minimize
            ? scored.OrderBy(t => Value(experiment, t, metric))
            : scored.OrderByDescending(t => Value(experiment, t, metric));
        return [.. ordered.ThenBy(t => t.Index), .. trials.Where(t => Value(experiment, t, metric) is null).OrderBy(t => t.Index)];
    }

    public static double? Value(TuningExperiment experiment, TrialResult trial, string metric) =>
        ExperimentReconciler.Value(experiment.Spec, trial.Observation, metric);

    /// <summary>One line of progress: trials done of the maximum and the best so far.</summary>
    public static string Progress(TuningExperiment experiment)
    {
        var status = experiment.Status;
        var done = (status?.TrialsSucceeded ?? 0) + (status?.TrialsFailed ?? 0) + (status?.TrialsEarlyStopped ?? 0) + (status?.TrialsKilled ?? 0);
        var max = experiment.Spec.MaxTrialCount is { } m ? m.ToString(CultureInfo.InvariantCulture) : "?";
        var line = $"experiment/{experiment.Metadata.Name}: {status?.Phase?.ToString() ?? "Pending"}, {done}/{max} trials done, {status?.TrialsRunning ?? 0} running";
        if (status?.CurrentOptimalTrial is { } best)
        {
            var (metric, _) = Objectives(experiment.Spec)[0];
            line += $", best {metric}={Number(Value(experiment, best, metric))} ({best.Name}: {Parameters(best)})";
        }

        return line;
    }

    public static void Write(IAnsiConsole output, TuningExperiment experiment)
    {
        var status = experiment.Status;
        var objectives = Objectives(experiment.Spec);
        var ended = status?.Conditions?.FirstOrDefault(c => c.Type is ExperimentReconciler.ConditionSucceeded or ExperimentReconciler.ConditionFailed && c.Status == ConditionStatus.True);
        output.WriteLine($"Experiment {experiment.Metadata.Name}: {status?.Phase?.ToString() ?? "Pending"}{(ended?.Reason is { } reason ? $" ({reason})" : "")}");
        output.WriteLine($"Objective:  {string.Join(", ", objectives.Select(o => $"{o.Type.ToString().ToLowerInvariant()} {o.Metric}"))}{(experiment.Spec.Objective?.Goal is { } goal ? $" (goal {Number(goal)})" : "")}");
        output.WriteLine($"Algorithm:  {experiment.Spec.Algorithm?.AlgorithmName ?? "random"}{(experiment.Spec.EarlyStopping?.AlgorithmName is { } early ? $", early stopping {early}" : "")}");
        output.WriteLine($"Trials:     {status?.Trials ?? 0}/{experiment.Spec.MaxTrialCount?.ToString(CultureInfo.InvariantCulture) ?? "?"} ({status?.TrialsSucceeded ?? 0} succeeded, {status?.TrialsRunning ?? 0} running, {status?.TrialsFailed ?? 0} failed, {status?.TrialsEarlyStopped ?? 0} early stopped, {status?.TrialsKilled ?? 0} killed), {experiment.Spec.ParallelTrialCount} at once");
        if (status?.RunId is { } runId)
        {
            output.WriteLine($"Parent run: {runId}");
        }

        if (status?.CurrentOptimalTrial is { } best)
        {
            output.WriteLine($"Best trial: {best.Name} ({Parameters(best)}): {string.Join(", ", objectives.Select(o => $"{o.Metric}={Number(Value(experiment, best, o.Metric))}"))}");
        }

        var trials = SortedTrials(experiment);
        if (trials.Count == 0)
        {
            output.WriteLine("No trials yet.");
            return;
        }

        output.WriteLine();
        output.Write(TrialTable(experiment, trials, markBest: true));
        if (status?.ParetoFront is { Count: > 0 } front)
        {
            output.WriteLine();
            output.WriteLine($"Pareto front ({front.Count} trial(s) no other trial beats on every objective):");
            output.Write(TrialTable(experiment, [.. front], markBest: false));
        }
    }

    private static Table TrialTable(TuningExperiment experiment, IReadOnlyList<TrialResult> trials, bool markBest)
    {
        var objectives = Objectives(experiment.Spec);
        var metrics = objectives.Select(o => o.Metric).Concat(experiment.Spec.Objective?.AdditionalMetricNames ?? []).Distinct(StringComparer.Ordinal).ToList();
        var parameters = (experiment.Spec.Parameters ?? []).Select(p => p.Name ?? "").ToList();
        var table = new Table().Border(TableBorder.None);
        table.AddColumns([.. (markBest ? new[] { "BEST" } : []), "TRIAL", "STATUS", .. parameters.Select(p => p.ToUpperInvariant()), .. metrics.Select(m => m.ToUpperInvariant()), "REASON"]);
        var bestName = experiment.Status?.CurrentOptimalTrial?.Name;
        foreach (var trial in trials)
        {
            var row = new List<string>();
            if (markBest)
            {
                row.Add(trial.Name == bestName ? BestMark : "");
            }

            row.Add(trial.Name ?? "");
            row.Add(trial.Phase?.ToString() ?? "Pending");
            row.AddRange(parameters.Select(p => trial.ParameterAssignments?.FirstOrDefault(a => a.Name == p)?.Value ?? "-"));
            row.AddRange(metrics.Select(m => Number(Value(experiment, trial, m))));
            row.Add(trial.Phase is TrialPhase.Succeeded or TrialPhase.Running or TrialPhase.Pending ? "" : $"{trial.Reason}: {trial.Message}");
            table.AddRow([.. row.Select(Markup.Escape)]);
        }

        return table;
    }

    public static string Parameters(TrialResult trial) =>
        string.Join(", ", (trial.ParameterAssignments ?? []).Select(a => $"{a.Name}={a.Value}"));

    public static string Number(double? value) => value is { } v ? v.ToString("G6", CultureInfo.InvariantCulture) : "-";
}
