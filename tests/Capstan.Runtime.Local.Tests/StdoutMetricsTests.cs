using Capstan.Core.Runtime;

namespace Capstan.Runtime.Local.Tests;

public sealed class StdoutMetricsTests
{
    [Fact]
    public void Parse_SeveralPairsWithEpoch_AllTakeTheEpochAsStep()
    {
        var metrics = new StdoutMetrics().Parse("epoch=3 loss=0.25, accuracy=0.91", 1000);

        Assert.Equal(["epoch", "loss", "accuracy"], metrics.Select(m => m.Key));
        Assert.All(metrics, m => Assert.Equal(3, m.Step));
        Assert.Equal(0.25, metrics[1].Value);
        Assert.All(metrics, m => Assert.Equal(1000, m.Timestamp));
    }

    [Fact]
    public void Parse_ExplicitStep_GivesStepAndIsNotAMetric()
    {
        var metrics = new StdoutMetrics().Parse("step=7 lr=1e-3", 0);

        var metric = Assert.Single(metrics);
        Assert.Equal(("lr", 0.001, 7L), (metric.Key, metric.Value, metric.Step));
    }

    [Fact]
    public void Parse_NoStepOnLine_CountsStepsPerMetric()
    {
        var parser = new StdoutMetrics();

        var first = parser.Parse("loss=0.9", 0);
        var second = parser.Parse("loss=0.8 acc=0.5", 0);
        var third = parser.Parse("loss = 0.7", 0);

        Assert.Equal(0, first[0].Step);
        Assert.Equal([1L, 0L], second.Select(m => m.Step));
        Assert.Equal(2, third[0].Step);
        Assert.Equal(0.7, third[0].Value);
    }

    [Fact]
    public void Parse_NonNumericOrPlainText_NoMetrics()
    {
        var parser = new StdoutMetrics();

        Assert.Empty(parser.Parse("downloading url=http://example.com/x", 0));
        Assert.Empty(parser.Parse("Epoch 1/10 done", 0));
        Assert.Empty(parser.Parse("a==b", 0));
        Assert.Empty(parser.Parse("loss=0.5abc", 0));
    }

    [Fact]
    public void Parse_NanAndNegative_Parsed()
    {
        var metrics = new StdoutMetrics().Parse("val/loss=nan delta=-2.5", 0);

        Assert.Equal("val/loss", metrics[0].Key);
        Assert.True(double.IsNaN(metrics[0].Value));
        Assert.Equal(-2.5, metrics[1].Value);
    }
}
