using Capstan.Tuning;

namespace Capstan.Tuning.Tests;

public class SearchSpaceTests
{
    [Fact]
    public void Validate_MinGreaterThanMax_NamesParameterAndField()
    {
        var errors = SearchSpace.Validate([ParameterSpec.Double("lr", 0.5, 0.1)]);

        var error = Assert.Single(errors);
        Assert.Equal("lr", error.Subject);
        Assert.Equal("feasibleSpace.min", error.Field);
        Assert.Contains("greater than max", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_EmptyList_IsRejected()
    {
        var errors = SearchSpace.Validate([new ParameterSpec("optimizer", ParameterType.Categorical, new FeasibleSpace(List: []))]);

        var error = Assert.Single(errors);
        Assert.Equal(("optimizer", "feasibleSpace.list"), (error.Subject, error.Field));
    }

    [Fact]
    public void Validate_LogScaleOverNonPositiveRange_IsRejected()
    {
        var errors = SearchSpace.Validate([ParameterSpec.Double("lr", 0, 1, distribution: Distribution.LogUniform)]);

        var error = Assert.Single(errors);
        Assert.Equal(("lr", "feasibleSpace.distribution"), (error.Subject, error.Field));
        Assert.Contains("positive", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("20")]
    public void Validate_BadStep_IsRejected(string step)
    {
        var errors = SearchSpace.Validate([new ParameterSpec("epochs", ParameterType.Int, new FeasibleSpace("1", "10", step))]);

        Assert.Equal(("epochs", "feasibleSpace.step"), (Assert.Single(errors).Subject, Assert.Single(errors).Field));
    }

    [Fact]
    public void Validate_SeveralProblems_ReportsEveryOne()
    {
        var errors = SearchSpace.Validate(
        [
            new ParameterSpec("a", ParameterType.Int, new FeasibleSpace("1.5", "3")),
            new ParameterSpec("b", ParameterType.Discrete, new FeasibleSpace(List: ["1", "x"])),
            new ParameterSpec("a", ParameterType.Double, new FeasibleSpace(Min: "0")),
        ]);

        Assert.Contains(errors, e => e is { Subject: "a", Field: "feasibleSpace.min" } && e.Message.Contains("integer", StringComparison.Ordinal));
        Assert.Contains(errors, e => e is { Subject: "b", Field: "feasibleSpace.list[1]" });
        Assert.Contains(errors, e => e is { Subject: "a", Field: "name" });
        Assert.Contains(errors, e => e is { Subject: "a", Field: "feasibleSpace.max" });
    }

    [Fact]
    public void Create_InvalidSpace_ThrowsWithErrors()
    {
        var ex = Assert.Throws<TuningSpecException>(() => SearchSpace.Create(ParameterSpec.Int("n", 5, 1)));

        Assert.Contains("n: feasibleSpace.min", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_KatibStrings_RoundTripsTypedValues()
    {
        var space = SearchSpace.Create(
            ParameterSpec.Double("lr", 0.001, 0.1, distribution: Distribution.LogUniform),
            ParameterSpec.Int("layers", 1, 5),
            ParameterSpec.Discrete("batch", 16, 32, 64),
            ParameterSpec.Categorical("optimizer", "sgd", "adam"));

        var a = space.Parse(new Dictionary<string, string> { ["lr"] = "0.01", ["layers"] = "3", ["batch"] = "32", ["optimizer"] = "adam" });

        Assert.Equal(0.01, a["lr"].Number);
        Assert.Equal(3, a["layers"].Number);
        Assert.Equal(32, a["batch"].Number);
        Assert.Null(a["optimizer"].Number);
        Assert.Equal("adam", a.ToStrings()["optimizer"]);
    }

    [Fact]
    public void Parse_ValueOutsideList_NamesParameter()
    {
        var space = SearchSpace.Create(ParameterSpec.Categorical("optimizer", "sgd", "adam"));

        var ex = Assert.Throws<TuningSpecException>(() => space.Parse(new Dictionary<string, string> { ["optimizer"] = "rmsprop" }));

        Assert.Equal("optimizer", Assert.Single(ex.Errors).Subject);
    }
}
