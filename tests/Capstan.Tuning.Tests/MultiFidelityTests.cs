using Capstan.Tuning;

namespace Capstan.Tuning.Tests;

public class MultiFidelityTests
{
    private static readonly Objective[] s_loss = [Objective.Minimize("loss")];
    private static readonly AlgorithmSetting[] s_epochs = [new("resource_name", "epochs"), new("eta", "3")];

    private static SearchSpace Space() => SearchSpace.Create(ParameterSpec.Double("lr", 0, 1), ParameterSpec.Int("epochs", 1, 27));

    private static Trial Done(int number, ParameterAssignment a, double loss) => new(number, a, TrialState.Completed, [loss]);

    [Fact]
    public void Asha_NineAtTheFirstRung_PromotesTheBestThird()
    {
        var asha = SearchAlgorithms.Create("asha", Space(), s_loss, s_epochs, seed: 1);
        var first = asha.Suggest([], 9).Suggestions;
        Assert.All(first, s => Assert.Equal("1", s.Parameters["epochs"].Text));
        var losses = new[] { 0.9, 0.2, 0.5, 0.8, 0.1, 0.7, 0.3, 0.6, 0.4 };
        var history = first.Select((s, i) => Done(i, s.Parameters, losses[i])).ToList();

        var next = asha.Suggest(history, 4).Suggestions;

        Assert.Equal([4, 1, 6], next.Take(3).Select(s => s.PromotedFrom!.Value));
        Assert.All(next.Take(3), s => Assert.Equal("3", s.Parameters["epochs"].Text));
        Assert.Equal(history[4].Parameters["lr"], next[0].Parameters["lr"]);
        Assert.Null(next[3].PromotedFrom);
        Assert.Equal("1", next[3].Parameters["epochs"].Text);
    }

    [Fact]
    public void Asha_TopRungResult_PromotesToTheNextRungFirst()
    {
        var space = Space();
        var asha = SearchAlgorithms.Create("asha", space, s_loss, s_epochs, seed: 1);
        var history = asha.Suggest([], 9).Suggestions.Select((s, i) => Done(i, s.Parameters, i)).ToList();
        foreach (var s in asha.Suggest(history, 3).Suggestions)
        {
            history.Add(Done(history.Count, s.Parameters, s.PromotedFrom!.Value));
        }

        var next = asha.Suggest(history, 1).Suggestions[0];

        Assert.Equal("9", next.Parameters["epochs"].Text);
        Assert.Equal(9, next.PromotedFrom);
    }

    [Fact]
    public void Hyperband_FirstRung_WaitsThenPromotesTheBestThird()
    {
        var space = SearchSpace.Create(ParameterSpec.Double("lr", 0, 1), ParameterSpec.Int("epochs", 1, 9));
        var hyperband = SearchAlgorithms.Create("hyperband", space, s_loss, s_epochs, seed: 1);

        var first = hyperband.Suggest([], 20);
        Assert.Equal(9, first.Suggestions.Count);
        Assert.False(first.Exhausted);
        Assert.All(first.Suggestions, s => Assert.Equal("1", s.Parameters["epochs"].Text));

        var running = first.Suggestions.Select((s, i) => new Trial(i, s.Parameters, TrialState.Running)).ToList();
        Assert.Empty(hyperband.Suggest(running, 1).Suggestions);

        var losses = new[] { 0.9, 0.2, 0.5, 0.8, 0.1, 0.7, 0.3, 0.6, 0.4 };
        var done = first.Suggestions.Select((s, i) => Done(i, s.Parameters, losses[i])).ToList();
        var promoted = hyperband.Suggest(done, 5).Suggestions;

        Assert.Equal([4, 1, 6], promoted.Select(s => s.PromotedFrom!.Value));
        Assert.All(promoted, s => Assert.Equal("3", s.Parameters["epochs"].Text));
    }

    [Fact]
    public void Hyperband_WithoutResourceName_SaysWhatItNeeds()
    {
        var error = Assert.Single(SearchAlgorithms.Validate("hyperband", Space(), s_loss));

        Assert.Equal("resource_name", error.Field);
        Assert.Contains("int or double parameter", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Asha_CategoricalResource_IsRejected()
    {
        var space = SearchSpace.Create(ParameterSpec.Double("lr", 0, 1), ParameterSpec.Categorical("epochs", "few", "many"));

        var error = Assert.Single(SearchAlgorithms.Validate("asha", space, s_loss, s_epochs));

        Assert.Contains("must be an int or double", error.Message, StringComparison.Ordinal);
    }
}
