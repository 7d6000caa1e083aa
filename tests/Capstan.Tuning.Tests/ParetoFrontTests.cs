using Capstan.Tuning;

namespace Capstan.Tuning.Tests;

public class ParetoFrontTests
{
    private static readonly Objective[] s_accuracyLatency = [Objective.Maximize("accuracy"), Objective.Minimize("latency")];

    [Fact]
    public void Of_KnownSet_ReturnsTheNonDominatedTrials()
    {
        var space = SearchSpace.Create(ParameterSpec.Int("i", 0, 10));
        (double Accuracy, double Latency)[] points = [(0.90, 10), (0.95, 20), (0.85, 5), (0.89, 12), (0.95, 25), (0.80, 5), (0.99, 40)];
        var trials = points.Select((p, i) => new Trial(i, space.Parse(new Dictionary<string, string> { ["i"] = $"{i}" }), TrialState.Completed, [p.Accuracy, p.Latency])).ToList();
        trials.Add(new Trial(7, space.Parse(new Dictionary<string, string> { ["i"] = "7" }), TrialState.Failed));

        var front = ParetoFront.Of(trials, s_accuracyLatency);

        Assert.Equal([0, 1, 2, 6], front.Select(t => t.Number));
    }

    [Fact]
    public void Ranks_LayeredFronts_AreNumberedFromZero()
    {
        IReadOnlyList<double>[] values = [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [1.0, 3.0], [3.0, 1.0]];

        var ranks = ParetoFront.Ranks(values, [Objective.Minimize("a"), Objective.Minimize("b")]);

        Assert.Equal([0, 1, 2, 1, 1], ranks);
    }

    [Fact]
    public void Best_Maximize_PicksHighestCompleted()
    {
        var space = SearchSpace.Create(ParameterSpec.Int("i", 0, 10));
        var trials = new[]
        {
            new Trial(0, space.Parse(new Dictionary<string, string> { ["i"] = "0" }), TrialState.Completed, [0.5]),
            new Trial(1, space.Parse(new Dictionary<string, string> { ["i"] = "1" }), TrialState.Pruned, [0.99]),
            new Trial(2, space.Parse(new Dictionary<string, string> { ["i"] = "2" }), TrialState.Completed, [0.7]),
        };

        Assert.Equal(2, ParetoFront.Best(trials, Objective.Maximize("acc"))!.Number);
    }
}
