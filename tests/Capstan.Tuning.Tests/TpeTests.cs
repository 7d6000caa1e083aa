namespace Capstan.Tuning.Tests;

public class TpeTests
{
    private static readonly Objective[] s_loss = [Objective.Minimize("loss")];
    private static readonly AlgorithmSetting[] s_independent = [new("multivariate", "false")];

    [Fact]
    public void Tpe_MultivariateFalse_SuggestsDifferently()
    {
        var space = SearchAlgorithmTests.MixedSpace();
        var history = Optimization.Run(SearchAlgorithms.Create("random", space, s_loss, seed: 11), a => [a.X("lr") + a.X("dropout")], 20);

        var joint = SearchAlgorithms.Create("tpe", space, s_loss, seed: 5).Suggest(history, 3).Suggestions.Select(s => s.Parameters).ToArray();
        var independent = SearchAlgorithms.Create("tpe", space, s_loss, s_independent, seed: 5).Suggest(history, 3).Suggestions.Select(s => s.Parameters).ToArray();
        var stated = SearchAlgorithms.Create("tpe", space, s_loss, [new("multivariate", "true")], seed: 5).Suggest(history, 3).Suggestions.Select(s => s.Parameters).ToArray();

        Assert.NotEqual(joint, independent);
        Assert.Equal(joint, stated);
    }

    [Theory]
    [InlineData("multivariate", "sometimes")]
    [InlineData("startup_sampler", "halton")]
    [InlineData("bandwidth", "silverman")]
    [InlineData("bandwidth_factor", "0")]
    [InlineData("kernel_recombination", "1.5")]
    public void Tpe_BadSetting_Reported(string name, string value)
    {
        var error = Assert.Single(SearchAlgorithms.Validate("tpe", SearchAlgorithmTests.MixedSpace(), s_loss, [new(name, value)]));

        Assert.Equal(name, error.Field);
    }

    [Fact]
    public void Tpe_StartupTrials_ReproducibleBySeedAndScrambledAcrossSeeds()
    {
        var space = Optimization.Box(3, 0, 1);

        var first = SearchAlgorithms.Create("tpe", space, s_loss, seed: 1).Suggest([], 5).Suggestions.Select(s => s.Parameters).ToArray();
        var again = SearchAlgorithms.Create("tpe", space, s_loss, seed: 1).Suggest([], 5).Suggestions.Select(s => s.Parameters).ToArray();
        var other = SearchAlgorithms.Create("tpe", space, s_loss, seed: 2).Suggest([], 5).Suggestions.Select(s => s.Parameters).ToArray();

        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
        Assert.Equal(first.Length, first.Distinct().Count());
    }

    [Fact]
    public void Tpe_CurvedValleyOverSeeds_BeatsRandom()
    {
        // Rosenbrock in four dimensions: the good region is a narrow curved valley.
        var space = Optimization.Box(4, -2, 2);
        static double Valley(ParameterAssignment a)
        {
            var x = a.Values.Select(v => v.Number!.Value).ToArray();
            return Enumerable.Range(0, x.Length - 1).Sum(i => (100 * Math.Pow(x[i + 1] - (x[i] * x[i]), 2)) + Math.Pow(1 - x[i], 2));
        }

        var seeds = Enumerable.Range(0, 15);
        var tpe = Optimization.Median(seeds.Select(seed => Optimization.Best("tpe", space, Valley, 80, seed)));
        var random = Optimization.Median(seeds.Select(seed => Optimization.Best("random", space, Valley, 80, seed)));

        Assert.True(tpe < random / 2, $"tpe {tpe} vs random {random}");
    }
}
