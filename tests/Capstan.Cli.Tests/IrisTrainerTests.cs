using Capstan.Cli.Quickstart;

namespace Capstan.Cli.Tests;

public sealed class IrisTrainerTests
{
    [Fact]
    public void EmbeddedCsv_Read_HasFisherIrisShape()
    {
        var flowers = IrisData.Parse(IrisData.ReadCsv());

        Assert.Equal(150, flowers.Count);
        Assert.All(flowers.GroupBy(f => f.Species), g => Assert.Equal(50, g.Count()));
        Assert.Equal(876.5, flowers.Sum(f => (double)f.SepalLength), 1);
        Assert.Equal(179.9, flowers.Sum(f => (double)f.PetalWidth), 1);
    }

    [Fact]
    public void Train_MoreIterations_ReachesHighTestAccuracy()
    {
        var trainer = new IrisTrainer(IrisData.Parse(IrisData.ReadCsv()), QuickstartCommand.Seed, QuickstartCommand.TestFraction, QuickstartCommand.L2);

        var (_, first) = trainer.Train(1);
        var (_, last) = trainer.Train(QuickstartCommand.Iterations);

        Assert.True(last.Accuracy > 0.9, $"accuracy {last.Accuracy}");
        Assert.True(last.LogLoss <= first.LogLoss, $"log-loss {first.LogLoss} -> {last.LogLoss}");
    }
}
