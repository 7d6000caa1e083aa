using Capstan.Tuning;

namespace Capstan.Tuning.Tests;

public class SearchAlgorithmTests
{
    private static readonly Objective[] s_loss = [Objective.Minimize("loss")];

    internal static SearchSpace MixedSpace() => SearchSpace.Create(
        ParameterSpec.Double("lr", 1e-4, 1e-1, distribution: Distribution.LogUniform),
        ParameterSpec.Double("dropout", 0, 0.5, step: 0.05),
        ParameterSpec.Int("layers", 1, 8),
        ParameterSpec.Discrete("batch", 16, 32, 64, 128),
        ParameterSpec.Categorical("optimizer", "sgd", "adam", "rmsprop"));

    [Fact]
    public void Create_UnknownName_ListsAccepted()
    {
        var ex = Assert.Throws<TuningSpecException>(() => SearchAlgorithms.Create("annealing", MixedSpace(), s_loss));

        Assert.Contains("accepted: random, grid, sobol, tpe", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_UnknownSetting_ListsAccepted()
    {
        var ex = Assert.Throws<TuningSpecException>(() => SearchAlgorithms.Create("random", MixedSpace(), s_loss, [new AlgorithmSetting("n_startup", "5")]));

        var error = Assert.Single(ex.Errors);
        Assert.Equal("n_startup", error.Field);
        Assert.Contains("random_state", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_BadRandomState_SaysWhy()
    {
        var errors = SearchAlgorithms.Validate("random", MixedSpace(), s_loss, [new AlgorithmSetting("random_state", "abc")]);

        Assert.Equal("random_state", Assert.Single(errors).Field);
    }

    [Fact]
    public void Canonical_OptunaAlias_MapsToKatibName()
    {
        Assert.Equal("random", SearchAlgorithms.Canonical("RandomSampler"));
        Assert.Equal("cmaes", SearchAlgorithms.Canonical("CmaEsSampler"));
        Assert.Null(SearchAlgorithms.Canonical("annealing"));
    }

    [Fact]
    public void Random_SameSeedAndHistory_SameSuggestions()
    {
        var space = MixedSpace();
        var a = SearchAlgorithms.Create("random", space, s_loss, seed: 7).Suggest([], 5);
        var b = SearchAlgorithms.Create("random", space, s_loss, seed: 7).Suggest([], 5);
        var c = SearchAlgorithms.Create("random", space, s_loss, seed: 8).Suggest([], 5);

        Assert.Equal(a.Suggestions.Select(s => s.Parameters), b.Suggestions.Select(s => s.Parameters));
        Assert.NotEqual(a.Suggestions.Select(s => s.Parameters), c.Suggestions.Select(s => s.Parameters));
    }

    [Fact]
    public void Random_OneAtATime_MatchesOneBatch()
    {
        var space = MixedSpace();
        var algorithm = SearchAlgorithms.Create("random", space, s_loss, seed: 3);
        var batch = algorithm.Suggest([], 4).Suggestions.Select(s => s.Parameters).ToArray();
        var history = new List<Trial>();
        for (var i = 0; i < 4; i++)
        {
            history.Add(new Trial(i, algorithm.Suggest(history, 1).Suggestions[0].Parameters, TrialState.Completed, [i]));
        }

        Assert.Equal(batch, history.Select(t => t.Parameters));
    }

    [Fact]
    public void Random_Values_StayInTheFeasibleSpace()
    {
        var space = MixedSpace();
        var suggestions = SearchAlgorithms.Create("random", space, s_loss, seed: 1).Suggest([], 300).Suggestions;

        foreach (var s in suggestions.Select(s => s.Parameters))
        {
            Assert.InRange(s["lr"].Number!.Value, 1e-4, 1e-1);
            Assert.Contains(s["dropout"].Text, Enumerable.Range(0, 11).Select(k => (k * 0.05).ToString("R", System.Globalization.CultureInfo.InvariantCulture)).Select(t => Math.Round(double.Parse(t, System.Globalization.CultureInfo.InvariantCulture), 2).ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
            Assert.InRange(s["layers"].Number!.Value, 1, 8);
            Assert.Contains(s["batch"].Text, new[] { "16", "32", "64", "128" });
            Assert.Contains(s["optimizer"].Text, new[] { "sgd", "adam", "rmsprop" });
        }

        // Log-uniform: about a third of the draws fall in each decade.
        var lowDecade = suggestions.Count(s => s.Parameters["lr"].Number < 1e-3);
        Assert.InRange(lowDecade, 70, 130);
        Assert.Equal(8, suggestions.Select(s => s.Parameters["layers"].Text).Distinct().Count());
    }

    [Fact]
    public void Grid_EnumeratesExactlyTheGrid_ThenIsExhausted()
    {
        var space = SearchSpace.Create(
            ParameterSpec.Double("lr", 0.1, 0.3, step: 0.1),
            ParameterSpec.Categorical("optimizer", "sgd", "adam"));
        var grid = SearchAlgorithms.Create("grid", space, s_loss);

        var batch = grid.Suggest([], 10);

        Assert.Equal(
            ["lr=0.1, optimizer=sgd", "lr=0.1, optimizer=adam", "lr=0.2, optimizer=sgd", "lr=0.2, optimizer=adam", "lr=0.3, optimizer=sgd", "lr=0.3, optimizer=adam"],
            batch.Suggestions.Select(s => s.Parameters.ToString()));
        Assert.True(batch.Exhausted);
    }

    [Fact]
    public void Grid_SkipsPointsAlreadyTried()
    {
        var space = SearchSpace.Create(ParameterSpec.Int("n", 1, 4));
        var grid = SearchAlgorithms.Create("grid", space, s_loss);
        var tried = space.Parse(new Dictionary<string, string> { ["n"] = "1" });

        var batch = grid.Suggest([new Trial(0, tried, TrialState.Failed)], 2);

        Assert.Equal(["2", "3"], batch.Suggestions.Select(s => s.Parameters["n"].Text));
        Assert.False(batch.Exhausted);
    }

    [Fact]
    public void Grid_DoubleWithoutStep_IsRejected()
    {
        var errors = SearchAlgorithms.Validate("grid", SearchSpace.Create(ParameterSpec.Double("lr", 0, 1)), s_loss);

        Assert.Equal(("lr", "feasibleSpace.step"), (Assert.Single(errors).Subject, Assert.Single(errors).Field));
    }
}
