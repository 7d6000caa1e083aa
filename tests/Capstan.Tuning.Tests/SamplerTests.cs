using Capstan.Tuning;

namespace Capstan.Tuning.Tests;

public class SamplerTests
{
    private static readonly Objective[] s_loss = [Objective.Minimize("loss")];

    [Fact]
    public void Sobol_FirstPoints_MatchJoeKuoSequence()
    {
        // The first eight points of the unscrambled three-dimensional Sobol sequence with Joe–Kuo directions, in Gray-code order.
        double[][] expected =
        [
            [0, 0, 0], [0.5, 0.5, 0.5], [0.75, 0.25, 0.25], [0.25, 0.75, 0.75],
            [0.375, 0.375, 0.625], [0.875, 0.875, 0.125], [0.625, 0.125, 0.875], [0.125, 0.625, 0.375],
        ];

        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], Enumerable.Range(0, 3).Select(d => SobolSearch.Unit(i, d)));
        }
    }

    [Fact]
    public void Sobol_Suggestions_SkipOriginAndMapOntoSpace()
    {
        var space = SearchSpace.Create(ParameterSpec.Double("a", 0, 10), ParameterSpec.Double("b", -1, 1));

        var batch = SearchAlgorithms.Create("sobol", space, s_loss).Suggest([], 3);

        Assert.Equal(["a=5, b=0", "a=7.5, b=-0.5", "a=2.5, b=0.5"], batch.Suggestions.Select(s => s.Parameters.ToString()));
    }

    [Fact]
    public void Sobol_Scrambled_DiffersFromPlainAndRepeatsForSeed()
    {
        var space = Optimization.Box(4, 0, 1);
        var settings = new[] { new AlgorithmSetting("scramble", "true") };

        var plain = SearchAlgorithms.Create("sobol", space, s_loss).Suggest([], 4).Suggestions.Select(s => s.Parameters);
        var a = SearchAlgorithms.Create("sobol", space, s_loss, settings, seed: 1).Suggest([], 4).Suggestions.Select(s => s.Parameters).ToArray();
        var b = SearchAlgorithms.Create("sobol", space, s_loss, settings, seed: 1).Suggest([], 4).Suggestions.Select(s => s.Parameters).ToArray();

        Assert.NotEqual(plain, a);
        Assert.Equal(a, b);
    }

    [Theory]
    [InlineData("tpe")]
    [InlineData("multivariate-tpe")]
    public void Tpe_SphereOverSeeds_BeatsRandom(string name)
    {
        var space = Optimization.Box(3, -5, 5);
        var tpe = Enumerable.Range(0, 9).Select(seed => Optimization.Best(name, space, a => Optimization.Sphere(a, 1), 60, seed));
        var random = Enumerable.Range(0, 9).Select(seed => Optimization.Best("random", space, a => Optimization.Sphere(a, 1), 60, seed));

        Assert.True(Optimization.Median(tpe) < Optimization.Median(random) / 2, $"TPE {Optimization.Median(tpe)} vs random {Optimization.Median(random)}");
    }

    [Fact]
    public void Tpe_CategoricalWithOneGoodChoice_PrefersIt()
    {
        var space = SearchSpace.Create(ParameterSpec.Categorical("optimizer", "sgd", "adam", "rmsprop", "adagrad"), ParameterSpec.Double("x", 0, 1));
        var history = Optimization.Run(
            SearchAlgorithms.Create("tpe", space, s_loss, seed: 4),
            a => [(a["optimizer"].Text == "adam" ? 0 : 1) + Math.Abs(a.X("x") - 0.3)],
            60);

        var adamAfterStartup = history.Skip(10).Count(t => t.Parameters["optimizer"].Text == "adam");
        Assert.True(adamAfterStartup > 30, $"adam chosen {adamAfterStartup} of 50 times after the startup trials");
    }

    [Theory]
    [InlineData("tpe")]
    [InlineData("multivariate-tpe")]
    [InlineData("bayesianoptimization")]
    [InlineData("cmaes")]
    [InlineData("nsga2")]
    [InlineData("sobol")]
    public void Suggest_SameSeedAndHistory_SameSuggestions(string name)
    {
        var space = SearchAlgorithmTests.MixedSpace();
        var history = Optimization.Run(SearchAlgorithms.Create("random", space, s_loss, seed: 11), a => [a.X("lr") + a.X("dropout")], 14);

        var first = SearchAlgorithms.Create(name, space, s_loss, seed: 5).Suggest(history, 3).Suggestions.Select(s => s.Parameters).ToArray();
        var second = SearchAlgorithms.Create(name, space, s_loss, seed: 5).Suggest(history, 3).Suggestions.Select(s => s.Parameters).ToArray();

        Assert.Equal(3, first.Length);
        Assert.Equal(first, second);
    }

    [Fact]
    public void Suggest_HistoryRebuiltFromStoredStrings_SameSuggestions()
    {
        var space = SearchAlgorithmTests.MixedSpace();
        var history = Optimization.Run(SearchAlgorithms.Create("tpe", space, s_loss, seed: 2), a => [a.X("lr") * a.X("layers")], 20);
        var restored = history.Select(t => t with { Parameters = space.Parse(t.Parameters.ToStrings()) }).Reverse().ToList();

        var before = SearchAlgorithms.Create("tpe", space, s_loss, seed: 2).Suggest(history, 2).Suggestions.Select(s => s.Parameters);
        var after = SearchAlgorithms.Create("tpe", space, s_loss, seed: 2).Suggest(restored, 2).Suggestions.Select(s => s.Parameters);

        Assert.Equal(before, after);
    }

    [Fact]
    public void CmaEs_Sphere_Converges()
    {
        var space = Optimization.Box(4, -1, 1);
        var history = Optimization.Run(SearchAlgorithms.Create("cmaes", space, s_loss, seed: 3), a => [Optimization.Sphere(a, 0.3)], 400);

        Assert.True(history.Min(t => t.Value!.Value) < 1e-4, $"best {history.Min(t => t.Value!.Value)}");
        Assert.True(history.TakeLast(8).Average(t => t.Value!.Value) < 1e-3, "the last generation sits at the optimum");
    }

    [Fact]
    public void CmaEs_MultipleObjectives_IsRejected()
    {
        var errors = SearchAlgorithms.Validate("cmaes", Optimization.Box(2, 0, 1), [Objective.Minimize("a"), Objective.Maximize("b")]);

        Assert.Contains(errors, e => e.Field == "objective" && e.Message.Contains("nsga2", StringComparison.Ordinal));
    }

    [Fact]
    public void GaussianProcess_KnownFunction_FitsHeldOutPoints()
    {
        var x = Enumerable.Range(0, 15).Select(i => new[] { i / 14.0 }).ToArray();
        double F(double v) => Math.Sin(6 * v) + (0.5 * v);
        var gp = new GaussianProcess(x, x.Select(p => F(p[0])).ToArray()).Fit();

        var test = Enumerable.Range(0, 50).Select(i => (i + 0.5) / 50).ToArray();
        var rmse = Math.Sqrt(test.Average(t => Math.Pow(gp.Predict([t]).Mean - F(t), 2)));

        Assert.True(rmse < 0.05, $"RMSE {rmse}");
        Assert.True(gp.Predict([0.5]).Std < gp.Predict([1.6]).Std, "uncertainty grows away from the data");
    }

    [Fact]
    public void BayesianOptimization_Branin_BeatsRandom()
    {
        var space = SearchSpace.Create(ParameterSpec.Double("x1", -5, 10), ParameterSpec.Double("x2", 0, 15));
        static double Branin(ParameterAssignment a)
        {
            double x1 = a.X("x1"), x2 = a.X("x2");
            return Math.Pow(x2 - (5.1 / (4 * Math.PI * Math.PI) * x1 * x1) + (5 / Math.PI * x1) - 6, 2) + (10 * (1 - (1 / (8 * Math.PI))) * Math.Cos(x1)) + 10;
        }

        var bo = Enumerable.Range(0, 3).Select(seed => Optimization.Best("bayesianoptimization", space, Branin, 25, seed)).ToArray();
        var random = Enumerable.Range(0, 3).Select(seed => Optimization.Best("random", space, Branin, 25, seed)).ToArray();

        Assert.True(Optimization.Median(bo) < 0.6, $"GP-BO median best {Optimization.Median(bo)} (optimum 0.398)");
        Assert.True(Optimization.Median(bo) < Optimization.Median(random), $"GP-BO {Optimization.Median(bo)} vs random {Optimization.Median(random)}");
    }

    [Fact]
    public void BayesianOptimization_UnknownAcquisition_ListsAccepted()
    {
        var error = Assert.Single(SearchAlgorithms.Validate("bayesianoptimization", Optimization.Box(2, 0, 1), s_loss, [new AlgorithmSetting("acq_func", "gp_hedge")]));

        Assert.Equal("acq_func", error.Field);
        Assert.Contains("EI, PI, LCB", error.Message, StringComparison.Ordinal);
    }
}
