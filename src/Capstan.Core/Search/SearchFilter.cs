namespace Capstan.Core.Search;

/// <summary>What a filter or order-by identifier refers to (<c>metrics.acc</c>, <c>params.lr</c>, ...).</summary>
public enum EntityKind
{
    /// <summary>A bare identifier or <c>attributes.x</c>: a column of the searched entity (status, start_time, name...).</summary>
    Attribute,
    Metric,
    Param,
    Tag,
    /// <summary><c>datasets.name</c>, <c>datasets.digest</c>, <c>datasets.context</c>.</summary>
    Dataset,
}

public enum ComparisonOperator
{
    Equal,
    NotEqual,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
    Like,
    ILike,
    In,
    NotIn,
}

/// <summary>A literal on the right of a comparison: a quoted string, a number, or a list for IN.</summary>
public sealed record SearchValue(string? Text = null, double? Number = null, IReadOnlyList<string>? List = null)
{
    public bool IsNumber => Number is not null;

    public bool IsList => List is not null;

    public override string ToString() =>
        List is not null ? $"({string.Join(", ", List.Select(v => $"'{v}'"))})" : Number?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? $"'{Text}'";
}

/// <summary>One comparison of a conjunction, e.g. <c>metrics.acc &gt; 0.9</c>.</summary>
public sealed record Comparison(EntityKind Kind, string Key, ComparisonOperator Operator, SearchValue Value);

/// <summary>One order-by clause, e.g. <c>metrics.acc DESC</c>.</summary>
public sealed record OrderClause(EntityKind Kind, string Key, bool Ascending);
