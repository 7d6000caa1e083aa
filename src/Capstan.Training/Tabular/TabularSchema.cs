using System.Globalization;

namespace Capstan.Training.Tabular;

public enum TabularTask
{
    Auto,
    Binary,
    Multiclass,
    Regression,
}

public enum ColumnKind
{
    /// <summary>Every non-empty cell parses as a number: a float feature (empty cells are missing values).</summary>
    Numeric,

    /// <summary>Anything else: one-hot encoded by its distinct values.</summary>
    Categorical,
}

/// <summary>A feature column of the CSV: its position, name and inferred kind.</summary>
public sealed record FeatureColumn(string Name, int Index, ColumnKind Kind, bool HasMissing);

/// <summary>
/// What a CSV means for training: the feature columns with their inferred kinds, the label column,
/// the task (resolved from <see cref="TabularTask.Auto"/>) and, for classification, the classes.
/// </summary>
public sealed record TabularSchema(
    string Label,
    int LabelIndex,
    TabularTask Task,
    IReadOnlyList<FeatureColumn> Features,
    IReadOnlyList<string> Classes)
{
    /// <summary>Column names the ML.NET pipeline produces itself; a CSV feature must not take them.</summary>
    public static readonly IReadOnlySet<string> ReservedNames = new HashSet<string>(StringComparer.Ordinal)
    {
        "Features", "Label", "Score", "PredictedLabel", "Probability",
    };

    /// <summary>Integer labels with at most this many distinct values are classes under <see cref="TabularTask.Auto"/>.</summary>
    public const int MaxAutoClasses = 20;

    public static TabularSchema Infer(CsvTable table, string label, TabularTask task)
    {
        ArgumentNullException.ThrowIfNull(table);
        var labelIndex = table.IndexOf(label);
        if (labelIndex < 0)
        {
            throw new TrainingDataException(
                $"Data file '{table.Path}' has no column '{label}'; its columns are: {string.Join(", ", table.Header)}.");
        }

        var features = new List<FeatureColumn>();
        for (var i = 0; i < table.Header.Count; i++)
        {
            if (i == labelIndex)
            {
                continue;
            }

            var name = table.Header[i];
            if (ReservedNames.Contains(name))
            {
                throw new TrainingDataException(
                    $"Data file '{table.Path}': feature column '{name}' uses a name the model's outputs need; rename it.");
            }

            var hasMissing = false;
            var numeric = true;
            foreach (var row in table.Rows)
            {
                var cell = row[i].Trim();
                if (cell.Length == 0)
                {
                    hasMissing = true;
                }
                else if (!TryParseNumber(cell, out _))
                {
                    numeric = false;
                }
            }

            features.Add(new FeatureColumn(name, i, numeric ? ColumnKind.Numeric : ColumnKind.Categorical, numeric && hasMissing));
        }

        if (features.Count == 0)
        {
            throw new TrainingDataException($"Data file '{table.Path}' has no feature columns besides the label '{label}'.");
        }

        var labels = table.Rows.Select(r => r[labelIndex].Trim()).Where(v => v.Length > 0).ToList();
        if (labels.Count == 0)
        {
            throw new TrainingDataException($"Data file '{table.Path}': label column '{label}' has no values.");
        }

        var distinct = labels.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var allNumeric = labels.All(v => TryParseNumber(v, out _));
        var resolved = task switch
        {
            TabularTask.Auto when distinct.Count == 2 => TabularTask.Binary,
            TabularTask.Auto when !allNumeric => TabularTask.Multiclass,
            TabularTask.Auto when distinct.Count <= MaxAutoClasses && labels.All(IsInteger) => TabularTask.Multiclass,
            TabularTask.Auto => TabularTask.Regression,
            _ => task,
        };

        switch (resolved)
        {
            case TabularTask.Regression when !allNumeric:
                var bad = labels.First(v => !TryParseNumber(v, out _));
                throw new TrainingDataException(
                    $"Data file '{table.Path}': label column '{label}' has the non-numeric value '{bad}', so it cannot be a regression target.");
            case TabularTask.Binary when distinct.Count != 2:
                throw new TrainingDataException(
                    $"Data file '{table.Path}': label column '{label}' has {distinct.Count} distinct values; binary classification needs exactly 2.");
            case TabularTask.Multiclass when distinct.Count < 2:
                throw new TrainingDataException(
                    $"Data file '{table.Path}': label column '{label}' has a single value '{distinct[0]}'; classification needs at least 2.");
        }

        var classes = resolved switch
        {
            TabularTask.Binary => OrderBinaryClasses(distinct),
            TabularTask.Multiclass => distinct,
            _ => [],
        };
        return new TabularSchema(label, labelIndex, resolved, features, classes);
    }

    public static bool TryParseNumber(string cell, out float value) =>
        float.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out value);

    private static bool IsInteger(string cell) =>
        double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && Math.Abs(value - Math.Round(value)) < 1e-9;

    /// <summary>[negative, positive]: the positive class is true/1/yes/positive when present, else the second in ordinal order.</summary>
    private static List<string> OrderBinaryClasses(List<string> sorted)
    {
        string[] positives = ["true", "1", "yes", "y", "positive", "pos", "t"];
        var positive = sorted.FirstOrDefault(v => positives.Contains(v, StringComparer.OrdinalIgnoreCase)) ?? sorted[1];
        return [sorted.Single(v => v != positive), positive];
    }
}
