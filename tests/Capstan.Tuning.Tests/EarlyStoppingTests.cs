using Capstan.Tuning;

namespace Capstan.Tuning.Tests;

public class EarlyStoppingTests
{
    private static readonly SearchSpace s_space = SearchSpace.Create(ParameterSpec.Double("x", 0, 1));

    private static Trial Curve(int number, TrialState state, params double[] values) =>
        new(number, s_space.Parse(new Dictionary<string, string> { ["x"] = "0.5" }), state, state == TrialState.Completed ? [values[^1]] : null,
            values.Select((v, i) => new IntermediateValue(i + 1, v)).ToArray());

    [Fact]
    public void MedianStop_HandComputedCase_StopsOnlyTheWorseTrial()
    {
        // Completed trials' running averages up to step 4: (4+3+2+1)/4 = 2.5, (5+4+3+2)/4 = 3.5, (2+2+2+2)/4 = 2; median 2.5.
        var history = new[]
        {
            Curve(0, TrialState.Completed, 4, 3, 2, 1, 0.5),
            Curve(1, TrialState.Completed, 5, 4, 3, 2, 1),
            Curve(2, TrialState.Completed, 2, 2, 2, 2, 2),
        };
        var rule = EarlyStoppingRules.Create("medianstop", Objective.Minimize("loss"), [new AlgorithmSetting("min_trials_required", "3"), new AlgorithmSetting("start_step", "4")]);
        var bad = Curve(3, TrialState.Running, 6, 5, 4, 3);   // best 3 > 2.5
        var good = Curve(4, TrialState.Running, 6, 5, 4, 2.4); // best 2.4 < 2.5

        Assert.True(rule.ShouldStop(bad, 4, history).Stop);
        Assert.False(rule.ShouldStop(good, 4, history).Stop);
        Assert.False(rule.ShouldStop(bad, 3, history).Stop); // before start_step
    }

    [Fact]
    public void MedianStop_TooFewCompletedTrials_Continues()
    {
        var history = new[] { Curve(0, TrialState.Completed, 1, 1, 1, 1), Curve(1, TrialState.Running, 1, 1, 1, 1) };
        var rule = EarlyStoppingRules.Create("medianstop", Objective.Minimize("loss"), [new AlgorithmSetting("min_trials_required", "2")]);

        var decision = rule.ShouldStop(Curve(2, TrialState.Running, 9, 9, 9, 9), 4, history);

        Assert.False(decision.Stop);
        Assert.Contains("min_trials_required", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void MedianStop_Maximize_StopsTrialBelowMedian()
    {
        var history = new[] { Curve(0, TrialState.Completed, 0.8, 0.9), Curve(1, TrialState.Completed, 0.7, 0.8), Curve(2, TrialState.Completed, 0.9, 0.9) };
        var rule = new MedianStoppingRule(Objective.Maximize("accuracy"), 3, 2);

        Assert.True(rule.ShouldStop(Curve(3, TrialState.Running, 0.5, 0.6), 2, history).Stop);
        Assert.False(rule.ShouldStop(Curve(4, TrialState.Running, 0.5, 0.95), 2, history).Stop);
    }

    [Fact]
    public void Create_UnknownRuleOrSetting_SaysWhatIsAccepted()
    {
        Assert.Contains("accepted: medianstop", Assert.Single(EarlyStoppingRules.Validate("hyperopt", Objective.Minimize("l"))).Message, StringComparison.Ordinal);
        var error = Assert.Single(EarlyStoppingRules.Validate("medianstop", Objective.Minimize("l"), [new AlgorithmSetting("start_step", "-1")]));
        Assert.Equal("start_step", error.Field);
    }

    [Fact]
    public void SuccessiveHalving_AtARung_KeepsOnlyTheBestThird()
    {
        // Nine trials reached step 3 (the rung for min_resource 1, reduction_factor 3, rung 1) with values 1..9.
        var history = Enumerable.Range(0, 9).Select(i => Curve(i, TrialState.Running, 10, 10, i + 1)).ToArray();
        var rule = EarlyStoppingRules.Create("successivehalving", Objective.Minimize("loss"), [new AlgorithmSetting("min_resource", "1"), new AlgorithmSetting("reduction_factor", "3")]);

        var stopped = history.Where(t => rule.ShouldStop(t, 3, history).Stop).Select(t => t.Number).ToArray();

        Assert.Equal([3, 4, 5, 6, 7, 8], stopped);
        Assert.False(rule.ShouldStop(history[8], 2, history).Stop); // step 2 is between rungs 1 and 3: judged at rung 1, where all tie
    }
}
