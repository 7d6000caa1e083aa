namespace Capstan.Tuning;

/// <summary>Whether a running trial should stop now, and why (the reason is for the trial's status).</summary>
public sealed record StopDecision(bool Stop, string Reason)
{
    public static StopDecision Continue(string reason) => new(false, reason);
}

/// <summary>An early-stopping rule: looks at a running trial's intermediate values against the other trials.</summary>
public interface IEarlyStoppingRule
{
    string Name { get; }

    /// <summary>Should <paramref name="trial"/> stop at <paramref name="step"/>, given the other trials in <paramref name="history"/>?</summary>
    StopDecision ShouldStop(Trial trial, long step, IReadOnlyList<Trial> history);
}

/// <summary>Early-stopping rules by Katib's name.</summary>
public static class EarlyStoppingRules
{
    public static IReadOnlyList<string> Names { get; } = ["medianstop", "successivehalving"];

    public static IReadOnlyList<TuningError> Validate(string name, Objective objective, IReadOnlyList<AlgorithmSetting>? settings = null)
    {
        TryBuild(name, objective, settings ?? [], out _, out var errors);
        return errors;
    }

    public static IEarlyStoppingRule Create(string name, Objective objective, IReadOnlyList<AlgorithmSetting>? settings = null) =>
        TryBuild(name, objective, settings ?? [], out var rule, out var errors) ? rule! : throw new TuningSpecException(errors);

    private static bool TryBuild(string name, Objective objective, IReadOnlyList<AlgorithmSetting> settings, out IEarlyStoppingRule? rule, out IReadOnlyList<TuningError> errors)
    {
        var list = new List<TuningError>();
        rule = null;
        var n = name.Trim().ToLowerInvariant();
        if (n is "medianstop" or "median" or "medianstopping" or "medianpruner" or "median-stop")
        {
            var reader = new SettingsReader("medianstop", settings, list);
            var minTrials = reader.Int("min_trials_required", 3, min: 1);
            var startStep = reader.Long("start_step", 4, min: 0);
            reader.RejectUnknown();
            rule = list.Count == 0 ? new MedianStoppingRule(objective, minTrials, startStep) : null;
        }
        else if (n is "successivehalving" or "successive-halving" or "asha" or "successivehalvingpruner")
        {
            var reader = new SettingsReader("successivehalving", settings, list);
            var minResource = reader.Long("min_resource", 1, min: 1);
            var eta = reader.Double("reduction_factor", 3, e => e > 1, "greater than 1");
            var rate = reader.Int("min_early_stopping_rate", 0, min: 0);
            reader.RejectUnknown();
            rule = list.Count == 0 ? new SuccessiveHalvingRule(objective, minResource, eta, rate) : null;
        }
        else
        {
            list.Add(new TuningError(name, "algorithmName", $"unknown early-stopping algorithm '{name}'; accepted: {string.Join(", ", Names)}"));
        }

        errors = list;
        return rule is not null;
    }
}

/// <summary>
/// Katib's median stopping rule: a trial stops at step S (S ≥ start_step) when its best value up to S is strictly worse
/// than the median of the running averages, up to S, of the completed trials — once at least min_trials_required
/// completed trials have reported up to S.
/// </summary>
public sealed class MedianStoppingRule(Objective objective, int minTrialsRequired = 3, long startStep = 4) : IEarlyStoppingRule
{
    public string Name => "medianstop";

    public int MinTrialsRequired => minTrialsRequired;

    public long StartStep => startStep;

    public StopDecision ShouldStop(Trial trial, long step, IReadOnlyList<Trial> history)
    {
        if (step < startStep)
        {
            return StopDecision.Continue($"step {step} is before start_step {startStep}");
        }

        var mine = trial.IntermediateValues.Where(v => v.Step <= step && double.IsFinite(v.Value)).Select(v => v.Value).ToArray();
        if (mine.Length == 0)
        {
            return StopDecision.Continue($"no value reported up to step {step}");
        }

        var averages = new List<double>();
        foreach (var other in history)
        {
            if (other.Number == trial.Number || other.State != TrialState.Completed)
            {
                continue;
            }

            var upTo = other.IntermediateValues.Where(v => v.Step <= step && double.IsFinite(v.Value)).ToArray();
            if (upTo.Length > 0 && upTo.Max(v => v.Step) >= step)
            {
                averages.Add(upTo.Average(v => v.Value));
            }
        }

        if (averages.Count < minTrialsRequired)
        {
            return StopDecision.Continue($"{averages.Count} completed trials reported up to step {step}; min_trials_required is {minTrialsRequired}");
        }

        var median = Median(averages);
        var best = objective.Direction == ObjectiveDirection.Minimize ? mine.Min() : mine.Max();
        return objective.IsBetter(median, best)
            ? new StopDecision(true, $"best {objective.Name} {best:G6} by step {step} is worse than the median {median:G6} of {averages.Count} completed trials' running averages")
            : StopDecision.Continue($"best {objective.Name} {best:G6} by step {step} is no worse than the median {median:G6}");
    }

    internal static double Median(List<double> values)
    {
        values.Sort();
        var n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[(n / 2) - 1] + values[n / 2]) / 2;
    }
}

/// <summary>
/// Asynchronous successive halving over a trial's own steps (Optuna's SuccessiveHalvingPruner, with its settings
/// <c>min_resource</c>, <c>reduction_factor</c> and <c>min_early_stopping_rate</c>): rung k is step
/// min_resource·η^(k + rate). When a trial reaches a rung, it goes on only if its value there is within the best
/// 1/η of the values every trial reported at that rung (the best one when fewer than η have); otherwise it stops.
/// </summary>
public sealed class SuccessiveHalvingRule(Objective objective, long minResource = 1, double reductionFactor = 3, int minEarlyStoppingRate = 0) : IEarlyStoppingRule
{
    public string Name => "successivehalving";

    public StopDecision ShouldStop(Trial trial, long step, IReadOnlyList<Trial> history)
    {
        var rung = -1;
        while (RungStep(rung + 1) <= step)
        {
            rung++;
        }

        if (rung < 0)
        {
            return StopDecision.Continue($"step {step} is before the first rung at step {RungStep(0)}");
        }

        var rungStep = RungStep(rung);
        var mine = ValueAt(trial, rungStep);
        if (mine is not { } value)
        {
            return StopDecision.Continue($"no value reported at rung step {rungStep}");
        }

        var competing = history.Where(t => t.Number != trial.Number).Select(t => ValueAt(t, rungStep)).OfType<double>().Append(value)
            .Select(objective.Loss).Order().ToArray();
        var promotable = Math.Max(0, (int)Math.Floor(competing.Length / reductionFactor) - 1);
        var threshold = competing[promotable];
        return objective.Loss(value) <= threshold
            ? StopDecision.Continue($"{objective.Name} {value:G6} at step {rungStep} is within the best 1/{reductionFactor:G3} of {competing.Length} trials")
            : new StopDecision(true, $"{objective.Name} {value:G6} at step {rungStep} is outside the best 1/{reductionFactor:G3} of {competing.Length} trials at that rung");
    }

    private long RungStep(int rung) => (long)Math.Round(minResource * Math.Pow(reductionFactor, rung + minEarlyStoppingRate));

    /// <summary>The value a trial reported at exactly the rung's step, or its last one before it if it went past.</summary>
    private static double? ValueAt(Trial trial, long step)
    {
        var values = trial.IntermediateValues;
        if (values.Count == 0 || values.Max(v => v.Step) < step)
        {
            return null;
        }

        var at = values.Where(v => v.Step <= step && double.IsFinite(v.Value)).OrderBy(v => v.Step).LastOrDefault();
        return at == default ? null : at.Value;
    }
}
