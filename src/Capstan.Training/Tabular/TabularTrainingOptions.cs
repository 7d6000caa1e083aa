using System.Globalization;

namespace Capstan.Training.Tabular;

public enum TabularAlgorithm
{
    LightGbm,
    FastTree,
    Sdca,
}

/// <summary>How to train: the algorithm, the task, and what makes a run reproducible.</summary>
public sealed record TabularTrainingOptions(
    string Label,
    TabularAlgorithm Algorithm = TabularAlgorithm.LightGbm,
    TabularTask Task = TabularTask.Auto,
    int Seed = 42,
    double TestFraction = 0.2,
    int? Iterations = null)
{
    public const int DefaultTrees = 100;
    public const int DefaultPasses = 20;
    public const int Leaves = 15;
    public const double LearningRate = 0.1;
    public const int MinimumExamplesPerLeaf = 5;
    public const float L2 = 1e-4f;

    /// <summary>Leaves per tree (lightgbm, fasttree); default <see cref="Leaves"/>.</summary>
    public int? NumberOfLeaves { get; init; }

    /// <summary>Boosting learning rate (lightgbm, fasttree); default <see cref="LearningRate"/>.</summary>
    public double? BoostingLearningRate { get; init; }

    /// <summary>Fewest training rows in a leaf (lightgbm, fasttree); default <see cref="MinimumExamplesPerLeaf"/>.</summary>
    public int? MinimumExampleCountPerLeaf { get; init; }

    /// <summary>L2 regularization (sdca); default <see cref="L2"/>.</summary>
    public float? L2Regularization { get; init; }

    public int ResolvedLeaves => NumberOfLeaves ?? Leaves;

    public double ResolvedLearningRate => BoostingLearningRate ?? LearningRate;

    public int ResolvedMinimumExamplesPerLeaf => MinimumExampleCountPerLeaf ?? MinimumExamplesPerLeaf;

    public float ResolvedL2 => L2Regularization ?? L2;

    /// <summary>Trees for the boosted algorithms, passes over the data for SDCA.</summary>
    public int ResolvedIterations => Iterations ?? (Algorithm == TabularAlgorithm.Sdca ? DefaultPasses : DefaultTrees);

    /// <summary>What the curve's steps count: trees or passes.</summary>
    public string IterationUnit => Algorithm == TabularAlgorithm.Sdca ? "passes" : "trees";

    /// <summary>The hyperparameters as the run's params record them.</summary>
    public IReadOnlyDictionary<string, string> Hyperparameters
    {
        get
        {
            var values = new SortedDictionary<string, string>(StringComparer.Ordinal);
            if (Algorithm == TabularAlgorithm.Sdca)
            {
                values["passes"] = Invariant(ResolvedIterations);
                values["l2"] = ResolvedL2.ToString("R", CultureInfo.InvariantCulture);
                values["normalization"] = "min-max";
            }
            else
            {
                values["trees"] = Invariant(ResolvedIterations);
                values["leaves"] = Invariant(ResolvedLeaves);
                values["learning_rate"] = ResolvedLearningRate.ToString("R", CultureInfo.InvariantCulture);
                values["min_examples_per_leaf"] = Invariant(ResolvedMinimumExamplesPerLeaf);
            }

            return values;
        }
    }

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Label))
        {
            throw new TrainingDataException("A label column is required (--label).");
        }

        if (TestFraction is <= 0 or >= 1 || double.IsNaN(TestFraction))
        {
            throw new TrainingDataException($"The test fraction must be between 0 and 1 (exclusive), not {TestFraction.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (ResolvedIterations < 1)
        {
            throw new TrainingDataException($"The number of {IterationUnit} must be at least 1.");
        }

        if (ResolvedLeaves < 2)
        {
            throw new TrainingDataException($"A tree needs at least 2 leaves, not {ResolvedLeaves}.");
        }

        if (ResolvedLearningRate is <= 0 or > 1 || double.IsNaN(ResolvedLearningRate))
        {
            throw new TrainingDataException($"The learning rate must be in (0, 1], not {ResolvedLearningRate.ToString(CultureInfo.InvariantCulture)}.");
        }

        if (ResolvedMinimumExamplesPerLeaf < 1)
        {
            throw new TrainingDataException($"A leaf needs at least 1 example, not {ResolvedMinimumExamplesPerLeaf}.");
        }

        if (ResolvedL2 < 0 || float.IsNaN(ResolvedL2))
        {
            throw new TrainingDataException($"The L2 regularization must not be negative, not {ResolvedL2.ToString(CultureInfo.InvariantCulture)}.");
        }
    }

    /// <summary>The learning curve's steps: about ten, evenly spaced, ending at the full budget.</summary>
    public IReadOnlyList<int> Checkpoints()
    {
        var total = ResolvedIterations;
        var step = Math.Max(1, (int)Math.Ceiling(total / 10.0));
        var steps = new List<int>();
        for (var i = step; i < total; i += step)
        {
            steps.Add(i);
        }

        steps.Add(total);
        return steps;
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
