using System.Globalization;
using Capstan.Core;
using Capstan.Core.Search;
using Microsoft.Data.Sqlite;

namespace Capstan.Store.Sqlite;

/// <summary>
/// Collects WHERE conditions and their parameters for a search. Values always travel as parameters,
/// never in the SQL text; only column names chosen from fixed lists are spliced in.
/// </summary>
internal sealed class SqlFilter
{
    private readonly List<string> _conditions = [];
    private readonly List<KeyValuePair<string, object>> _parameters = [];

    public string Where => _conditions.Count == 0 ? "1 = 1" : string.Join(" AND ", _conditions);

    public void Add(string condition) => _conditions.Add(condition);

    /// <summary>Adds a parameter and returns its name for the SQL text.</summary>
    public string Param(object value)
    {
        var name = "@p" + _parameters.Count.ToString(CultureInfo.InvariantCulture);
        _parameters.Add(new(name, value));
        return name;
    }

    public string ParamList(IEnumerable<string> values) => "(" + string.Join(", ", values.Select(v => Param(v))) + ")";

    public void BindTo(SqliteCommand command)
    {
        foreach (var (name, value) in _parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
    }

    /// <summary>
    /// A string comparison: = != LIKE ILIKE IN NOT IN. LIKE is case-sensitive (MLflow's meaning;
    /// the connections set <c>case_sensitive_like</c>), ILIKE compares lower-cased.
    /// </summary>
    public string StringPredicate(string column, Comparison comparison, string displayName)
    {
        var value = comparison.Value;
        if (comparison.Operator is ComparisonOperator.In or ComparisonOperator.NotIn)
        {
            var list = value.List ?? throw CapstanException.Invalid($"'{displayName}' {OperatorText(comparison.Operator)} needs a list of quoted strings.");
            if (list.Count == 0)
            {
                return comparison.Operator == ComparisonOperator.In ? "1 = 0" : "1 = 1";
            }

            return $"{column} {(comparison.Operator == ComparisonOperator.In ? "IN" : "NOT IN")} {ParamList(list)}";
        }

        if (value.Text is null)
        {
            throw CapstanException.Invalid(
                $"Invalid search value {value} for '{displayName}': expected a quoted string (e.g. {displayName} = 'value').");
        }

        return comparison.Operator switch
        {
            ComparisonOperator.Equal => $"{column} = {Param(value.Text)}",
            ComparisonOperator.NotEqual => $"{column} <> {Param(value.Text)}",
            ComparisonOperator.Like => $"{column} LIKE {Param(value.Text)}",
            ComparisonOperator.ILike => $"LOWER({column}) LIKE LOWER({Param(value.Text)})",
            _ => throw CapstanException.Invalid(
                $"Invalid comparator '{OperatorText(comparison.Operator)}' for string '{displayName}'. Only =, !=, LIKE, ILIKE, IN and NOT IN are supported."),
        };
    }

    /// <summary>A numeric comparison: = != &gt; &gt;= &lt; &lt;=.</summary>
    public string NumericPredicate(string column, Comparison comparison, string displayName, bool integral = false)
    {
        var sqlOperator = comparison.Operator switch
        {
            ComparisonOperator.Equal => "=",
            ComparisonOperator.NotEqual => "<>",
            ComparisonOperator.GreaterThan => ">",
            ComparisonOperator.GreaterThanOrEqual => ">=",
            ComparisonOperator.LessThan => "<",
            ComparisonOperator.LessThanOrEqual => "<=",
            _ => throw CapstanException.Invalid(
                $"Invalid comparator '{OperatorText(comparison.Operator)}' for numeric '{displayName}'. Only =, !=, >, >=, < and <= are supported."),
        };
        var number = comparison.Value.Number;
        if (number is null && comparison.Value.Text is { } text
            && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed))
        {
            number = parsed;
        }

        if (number is not { } n)
        {
            throw CapstanException.Invalid($"Invalid search value {comparison.Value} for '{displayName}': expected a number.");
        }

        object parameter = integral && n == Math.Floor(n) && Math.Abs(n) < long.MaxValue ? (long)n : n;
        return $"{column} {sqlOperator} {Param(parameter)}";
    }

    public static string OperatorText(ComparisonOperator op) => op switch
    {
        ComparisonOperator.Equal => "=",
        ComparisonOperator.NotEqual => "!=",
        ComparisonOperator.GreaterThan => ">",
        ComparisonOperator.GreaterThanOrEqual => ">=",
        ComparisonOperator.LessThan => "<",
        ComparisonOperator.LessThanOrEqual => "<=",
        ComparisonOperator.Like => "LIKE",
        ComparisonOperator.ILike => "ILIKE",
        ComparisonOperator.In => "IN",
        _ => "NOT IN",
    };

    public static string DisplayName(EntityKind kind, string key) => kind switch
    {
        EntityKind.Metric => $"metrics.{key}",
        EntityKind.Param => $"params.{key}",
        EntityKind.Tag => $"tags.{key}",
        EntityKind.Dataset => $"datasets.{key}",
        _ => key,
    };
}
