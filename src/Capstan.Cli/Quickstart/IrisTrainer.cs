using Microsoft.ML;
using Microsoft.ML.Trainers;

namespace Capstan.Cli.Quickstart;

/// <summary>The test-set quality of a model trained for <see cref="Iterations"/> SDCA passes.</summary>
public sealed record IrisEvaluation(int Iterations, double Accuracy, double MacroAccuracy, double LogLoss);

/// <summary>
/// Trains ML.NET's multiclass SDCA (maximum entropy) on Iris with a fixed split and seed. Training
/// once per iteration budget 1..N gives a real learning curve: the test metrics of a model that was
/// allowed k passes over the data.
/// </summary>
public sealed class IrisTrainer
{
    public const string TrainerName = "SdcaMaximumEntropy";

    private readonly MLContext _ml;
    private readonly IDataView _train;
    private readonly IDataView _test;

    public IrisTrainer(IReadOnlyList<IrisFlower> flowers, int seed, double testFraction, float l2)
    {
        Seed = seed;
        TestFraction = testFraction;
        L2 = l2;
        _ml = new MLContext(seed);
        var data = _ml.Data.LoadFromEnumerable(flowers);
        var split = _ml.Data.TrainTestSplit(data, testFraction, seed: seed);
        _train = split.TrainSet;
        _test = split.TestSet;
    }

    public int Seed { get; }

    public double TestFraction { get; }

    public float L2 { get; }

    public DataViewSchema InputSchema => _train.Schema;

    public (ITransformer Model, IrisEvaluation Evaluation) Train(int iterations)
    {
        var options = new SdcaMaximumEntropyMulticlassTrainer.Options
        {
            MaximumNumberOfIterations = iterations,
            L2Regularization = L2,
            NumberOfThreads = 1, // one thread: the same seed gives the same model on every machine
            ConvergenceTolerance = 1e-6f,
        };
        var pipeline = _ml.Transforms.Conversion.MapValueToKey("Label", nameof(IrisFlower.Species))
            .Append(_ml.Transforms.Concatenate(
                "Features",
                nameof(IrisFlower.SepalLength),
                nameof(IrisFlower.SepalWidth),
                nameof(IrisFlower.PetalLength),
                nameof(IrisFlower.PetalWidth)))
            .Append(_ml.Transforms.NormalizeMinMax("Features"))
            .Append(_ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(options))
            .Append(_ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(_train);
        var metrics = _ml.MulticlassClassification.Evaluate(model.Transform(_test));
        return (model, new IrisEvaluation(iterations, metrics.MicroAccuracy, metrics.MacroAccuracy, metrics.LogLoss));
    }

    public void Save(ITransformer model, Stream destination) => _ml.Model.Save(model, _train.Schema, destination);
}
