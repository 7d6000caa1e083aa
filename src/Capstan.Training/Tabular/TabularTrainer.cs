using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using Microsoft.ML.Trainers.FastTree;
using Microsoft.ML.Trainers.LightGbm;
using Microsoft.ML.Transforms;

namespace Capstan.Training.Tabular;

/// <summary>The test-set metrics after <see cref="Step"/> trees or passes, of <see cref="Total"/>.</summary>
public sealed record TrainingCheckpoint(int Step, int Total, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// Trains ML.NET on a CSV: label preparation (kept out of the exported model), a feature pipeline
/// (imputation, one-hot, concatenation, normalization for SDCA), the chosen trainer, and a fixed
/// train/test split by seed. Training once per checkpoint of the tree or pass budget gives a real
/// learning curve; the last checkpoint is the final model.
/// </summary>
public sealed class TabularTrainer : IDisposable
{
    internal const string LabelColumn = "__label";
    internal const string FeaturesColumn = "__features";

    private readonly MLContext _ml;
    private readonly TabularTrainingOptions _options;
    private readonly string _loadPath;
    private readonly string? _filteredCopy;
    private readonly IDataView _train;
    private readonly IDataView _test;

    public TabularTrainer(CsvTable table, TabularTrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        Schema = TabularSchema.Infer(table, options.Label, options.Task);
        _ml = new MLContext(options.Seed);

        // Rows without a label cannot be learned from; train on a copy without them.
        var labelled = table.Rows.Where(r => r[Schema.LabelIndex].Trim().Length > 0).ToList();
        DroppedRows = table.Rows.Count - labelled.Count;
        _loadPath = table.Path;
        if (DroppedRows > 0)
        {
            _filteredCopy = Path.Combine(Path.GetTempPath(), $"capstan-train-{Guid.NewGuid():N}.csv");
            CsvTable.Write(_filteredCopy, table.Header, labelled);
            _loadPath = _filteredCopy;
        }

        var raw = CreateLoader(includeLabel: true).Load(_loadPath);
        var prepared = PrepareLabel().Fit(raw).Transform(raw);
        var split = _ml.Data.TrainTestSplit(prepared, options.TestFraction, seed: options.Seed);
        _train = split.TrainSet;
        _test = split.TestSet;
        TrainRows = CountRows(_train);
        TestRows = CountRows(_test);
        if (TrainRows == 0 || TestRows == 0)
        {
            throw new TrainingDataException(
                $"Data file '{table.Path}' has {labelled.Count} labelled rows, too few to split into training and test sets with test fraction {options.TestFraction}.");
        }
    }

    public TabularSchema Schema { get; }

    public TabularTrainingOptions Options => _options;

    public int TrainRows { get; }

    public int TestRows { get; }

    /// <summary>Rows left out because their label cell was empty.</summary>
    public int DroppedRows { get; }

    /// <summary>Trains at each checkpoint of the budget, reporting each; returns the model of the last.</summary>
    public TabularModel Train(Action<TrainingCheckpoint>? onCheckpoint = null, CancellationToken cancellationToken = default)
    {
        var checkpoints = _options.Checkpoints();
        ITransformer? fitted = null;
        IReadOnlyDictionary<string, double>? metrics = null;
        foreach (var step in checkpoints)
        {
            cancellationToken.ThrowIfCancellationRequested();
            fitted = BuildPipeline(step).Fit(_train);
            metrics = EvaluateTestSet(fitted.Transform(_test));
            onCheckpoint?.Invoke(new TrainingCheckpoint(step, checkpoints[^1], metrics));
        }

        // The exported model gives classes back as the CSV wrote them, not as ML.NET's key indices.
        ITransformer exported = Schema.Task == TabularTask.Multiclass
            ? new TransformerChain<ITransformer>(fitted!, _ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(fitted!.Transform(_train)))
            : fitted!;
        return new TabularModel(_ml, exported, Schema, metrics!, CreateLoader(includeLabel: false).Load(_loadPath), _test);
    }

    public void Dispose()
    {
        if (_filteredCopy is not null)
        {
            File.Delete(_filteredCopy);
        }
    }

    private TextLoader CreateLoader(bool includeLabel)
    {
        var columns = Schema.Features
            .Select(f => new TextLoader.Column(f.Name, f.Kind == ColumnKind.Numeric ? DataKind.Single : DataKind.String, f.Index))
            .ToList();
        if (includeLabel)
        {
            columns.Add(new TextLoader.Column(Schema.Label, Schema.Task == TabularTask.Regression ? DataKind.Single : DataKind.String, Schema.LabelIndex));
        }

        return _ml.Data.CreateTextLoader(new TextLoader.Options
        {
            Columns = [.. columns],
            HasHeader = true,
            Separators = [','],
            AllowQuoting = true,
            TrimWhitespace = true,
        });
    }

    private IEstimator<ITransformer> PrepareLabel() => Schema.Task switch
    {
        TabularTask.Regression => _ml.Transforms.CopyColumns(LabelColumn, Schema.Label),
        TabularTask.Binary => _ml.Transforms.Conversion.MapValue(
            LabelColumn,
            [new KeyValuePair<string, bool>(Schema.Classes[0], false), new KeyValuePair<string, bool>(Schema.Classes[1], true)],
            Schema.Label),
        _ => _ml.Transforms.Conversion.MapValueToKey(LabelColumn, Schema.Label, keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue),
    };

    private IEstimator<ITransformer> BuildPipeline(int iterations)
    {
        IEstimator<ITransformer> pipeline = new EstimatorChain<ITransformer>();
        var parts = new List<string>();
        foreach (var feature in Schema.Features)
        {
            switch (feature.Kind)
            {
                case ColumnKind.Numeric when feature.HasMissing:
                    pipeline = pipeline.Append(_ml.Transforms.ReplaceMissingValues("__imputed_" + feature.Name, feature.Name, MissingValueReplacingEstimator.ReplacementMode.Mean));
                    parts.Add("__imputed_" + feature.Name);
                    break;
                case ColumnKind.Numeric:
                    parts.Add(feature.Name);
                    break;
                default:
                    pipeline = pipeline.Append(_ml.Transforms.Categorical.OneHotEncoding("__onehot_" + feature.Name, feature.Name));
                    parts.Add("__onehot_" + feature.Name);
                    break;
            }
        }

        pipeline = pipeline.Append(_ml.Transforms.Concatenate(FeaturesColumn, [.. parts]));
        if (_options.Algorithm == TabularAlgorithm.Sdca)
        {
            pipeline = pipeline.Append(_ml.Transforms.NormalizeMinMax(FeaturesColumn));
        }

        return pipeline.Append(CreateTrainer(iterations));
    }

    private IEstimator<ITransformer> CreateTrainer(int iterations)
    {
        var seed = _options.Seed;
        // One thread everywhere: the same seed gives the same model on every machine.
        return (_options.Algorithm, Schema.Task) switch
        {
            (TabularAlgorithm.LightGbm, TabularTask.Binary) => _ml.BinaryClassification.Trainers.LightGbm(new LightGbmBinaryTrainer.Options
            {
                LabelColumnName = LabelColumn,
                FeatureColumnName = FeaturesColumn,
                NumberOfIterations = iterations,
                NumberOfLeaves = _options.ResolvedLeaves,
                LearningRate = _options.ResolvedLearningRate,
                MinimumExampleCountPerLeaf = _options.ResolvedMinimumExamplesPerLeaf,
                NumberOfThreads = 1,
                Seed = seed,
            }),
            (TabularAlgorithm.LightGbm, TabularTask.Multiclass) => _ml.MulticlassClassification.Trainers.LightGbm(new LightGbmMulticlassTrainer.Options
            {
                LabelColumnName = LabelColumn,
                FeatureColumnName = FeaturesColumn,
                NumberOfIterations = iterations,
                NumberOfLeaves = _options.ResolvedLeaves,
                LearningRate = _options.ResolvedLearningRate,
                MinimumExampleCountPerLeaf = _options.ResolvedMinimumExamplesPerLeaf,
                NumberOfThreads = 1,
                Seed = seed,
            }),
            (TabularAlgorithm.LightGbm, _) => _ml.Regression.Trainers.LightGbm(new LightGbmRegressionTrainer.Options
            {
                LabelColumnName = LabelColumn,
                FeatureColumnName = FeaturesColumn,
                NumberOfIterations = iterations,
                NumberOfLeaves = _options.ResolvedLeaves,
                LearningRate = _options.ResolvedLearningRate,
                MinimumExampleCountPerLeaf = _options.ResolvedMinimumExamplesPerLeaf,
                NumberOfThreads = 1,
                Seed = seed,
            }),
            (TabularAlgorithm.FastTree, TabularTask.Binary) => _ml.BinaryClassification.Trainers.FastTree(FastTreeBinary(iterations)),
            (TabularAlgorithm.FastTree, TabularTask.Multiclass) => _ml.MulticlassClassification.Trainers.OneVersusAll(
                _ml.BinaryClassification.Trainers.FastTree(FastTreeBinary(iterations)), LabelColumn),
            (TabularAlgorithm.FastTree, _) => _ml.Regression.Trainers.FastTree(new FastTreeRegressionTrainer.Options
            {
                LabelColumnName = LabelColumn,
                FeatureColumnName = FeaturesColumn,
                NumberOfTrees = iterations,
                NumberOfLeaves = _options.ResolvedLeaves,
                LearningRate = _options.ResolvedLearningRate,
                MinimumExampleCountPerLeaf = _options.ResolvedMinimumExamplesPerLeaf,
                NumberOfThreads = 1,
                Seed = seed,
            }),
            (TabularAlgorithm.Sdca, TabularTask.Binary) => _ml.BinaryClassification.Trainers.SdcaLogisticRegression(new SdcaLogisticRegressionBinaryTrainer.Options
            {
                LabelColumnName = LabelColumn,
                FeatureColumnName = FeaturesColumn,
                MaximumNumberOfIterations = iterations,
                L2Regularization = _options.ResolvedL2,
                NumberOfThreads = 1,
                ConvergenceTolerance = 1e-6f,
            }),
            (TabularAlgorithm.Sdca, TabularTask.Multiclass) => _ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(new SdcaMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = LabelColumn,
                FeatureColumnName = FeaturesColumn,
                MaximumNumberOfIterations = iterations,
                L2Regularization = _options.ResolvedL2,
                NumberOfThreads = 1,
                ConvergenceTolerance = 1e-6f,
            }),
            _ => _ml.Regression.Trainers.Sdca(new SdcaRegressionTrainer.Options
            {
                LabelColumnName = LabelColumn,
                FeatureColumnName = FeaturesColumn,
                MaximumNumberOfIterations = iterations,
                L2Regularization = _options.ResolvedL2,
                NumberOfThreads = 1,
                ConvergenceTolerance = 1e-6f,
            }),
        };
    }

    private FastTreeBinaryTrainer.Options FastTreeBinary(int iterations) => new()
    {
        LabelColumnName = LabelColumn,
        FeatureColumnName = FeaturesColumn,
        NumberOfTrees = iterations,
        NumberOfLeaves = _options.ResolvedLeaves,
        LearningRate = _options.ResolvedLearningRate,
        MinimumExampleCountPerLeaf = _options.ResolvedMinimumExamplesPerLeaf,
        NumberOfThreads = 1,
        Seed = _options.Seed,
    };

    private Dictionary<string, double> EvaluateTestSet(IDataView scored)
    {
        try
        {
            return Evaluate(scored);
        }
        catch (ArgumentOutOfRangeException ex)
        {
            // ML.NET refuses e.g. AUC when the held-out rows hold a single class.
            throw new TrainingDataException(
                $"The {TestRows} test rows cannot be scored ({ex.Message.Split('\n')[0].Split(" (Parameter")[0]}); use more rows or a larger --test-fraction.");
        }
    }

    private Dictionary<string, double> Evaluate(IDataView scored)
    {
        switch (Schema.Task)
        {
            case TabularTask.Regression:
                var regression = _ml.Regression.Evaluate(scored, LabelColumn);
                return new() { ["rmse"] = regression.RootMeanSquaredError, ["mae"] = regression.MeanAbsoluteError, ["r2"] = regression.RSquared };
            case TabularTask.Binary:
                var binary = _ml.BinaryClassification.Evaluate(scored, LabelColumn);
                return new() { ["accuracy"] = binary.Accuracy, ["auc"] = binary.AreaUnderRocCurve, ["log_loss"] = binary.LogLoss, ["f1"] = binary.F1Score };
            default:
                var multiclass = _ml.MulticlassClassification.Evaluate(scored, LabelColumn);
                return new() { ["accuracy"] = multiclass.MicroAccuracy, ["macro_accuracy"] = multiclass.MacroAccuracy, ["log_loss"] = multiclass.LogLoss };
        }
    }

    private static int CountRows(IDataView view)
    {
        var count = 0;
        using var cursor = view.GetRowCursor([]);
        while (cursor.MoveNext())
        {
            count++;
        }

        return count;
    }
}
