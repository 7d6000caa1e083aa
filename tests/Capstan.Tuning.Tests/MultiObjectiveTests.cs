using Capstan.Tuning;

namespace Capstan.Tuning.Tests;

public class MultiObjectiveTests
{
    private static readonly Objective[] s_two = [Objective.Minimize("f1"), Objective.Minimize("f2")];

    /// <summary>ZDT1 in four dimensions: the Pareto front is f2 = 1 − √f1 at x1..x3 = 0.</summary>
    private static double[] Zdt1(ParameterAssignment a)
    {
        var x = a.Values.Select(v => v.Number!.Value).ToArray();
        var g = 1 + (9 * x.Skip(1).Average());
        return [x[0], g * (1 - Math.Sqrt(x[0] / g))];
    }

    private static double Hypervolume(IEnumerable<Trial> trials) =>
        MultiObjective.Hypervolume2D(trials.Select(t => t.Values!.ToArray()).ToArray(), [1.1, 11]);

    [Theory]
    [InlineData("nsga2")]
    [InlineData("motpe")]
    [InlineData("tpe")]
    public void MultiObjectiveSampler_Zdt1_DominatesMoreThanRandom(string name)
    {
        var space = Optimization.Box(4, 0, 1);
        var settings = name == "nsga2" ? new[] { new AlgorithmSetting("population_size", "20") } : [];
        var trials = name == "nsga2" ? 160 : 60;
        var searched = Enumerable.Range(0, 3).Select(seed =>
            Hypervolume(Optimization.Run(SearchAlgorithms.Create(name, space, s_two, settings, seed), Zdt1, trials))).ToArray();
        var random = Enumerable.Range(0, 3).Select(seed =>
            Hypervolume(Optimization.Run(SearchAlgorithms.Create("random", space, s_two, seed: seed), Zdt1, trials))).ToArray();

        Assert.True(Optimization.Median(searched) > Optimization.Median(random), $"{name} hypervolume {Optimization.Median(searched)} vs random {Optimization.Median(random)}");
    }

    [Fact]
    public void Hypervolume2D_KnownSet_IsTheDominatedArea()
    {
        double[][] points = [[1, 3], [2, 2], [3, 1], [2.5, 2.5]];

        Assert.Equal(6, MultiObjective.Hypervolume2D(points, [4, 4]), 10);
    }
}
