using System.Globalization;
using System.Text;
using Capstan.Core;
using Capstan.Core.Search;
using Capstan.Core.Tracking;

namespace Capstan.Store.Sqlite;

/// <summary>
/// Translates a run search (MLflow's filter and order-by grammar) into one SELECT over <c>runs</c>.
/// Param, tag and dataset conditions become <c>run_uuid IN (subquery)</c>, which the (key, value)
/// indexes answer; metric conditions probe latest_metrics' primary key per run (EXISTS); order-by
/// keys become LEFT JOINs so runs missing the key sort last.
/// </summary>
internal static class RunSearchSql
{
    public const string RunColumns =
        "r.run_uuid, r.experiment_id, r.name, r.user_id, r.status, r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage";

    public static (string Sql, SqlFilter Filter) Build(RunSearch search, long offset)
    {
        var filter = new SqlFilter();
        var experimentIds = (search.ExperimentIds ?? []).Select(id => long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw CapstanException.Invalid($"Invalid experiment id '{id}': experiment ids are integers.")).Distinct().ToList();
        filter.Add(experimentIds.Count == 0 ? "1 = 0" : $"r.experiment_id IN ({string.Join(", ", experimentIds.Select(id => filter.Param(id)))})");
        switch (search.ViewType)
        {
            case ViewType.ActiveOnly:
                filter.Add($"r.lifecycle_stage = {filter.Param("active")}");
                break;
            case ViewType.DeletedOnly:
                filter.Add($"r.lifecycle_stage = {filter.Param("deleted")}");
                break;
        }

        foreach (var comparison in SearchFilterParser.Parse(search.Filter))
        {
            filter.Add(Condition(comparison, filter));
        }

        var joins = new StringBuilder();
        var orderBy = new List<string>();
        var orderIndex = 0;
        foreach (var clause in SearchFilterParser.ParseOrderBy(search.OrderBy))
        {
            var direction = clause.Ascending ? "ASC" : "DESC";
            var alias = "o" + orderIndex++.ToString(CultureInfo.InvariantCulture);
            switch (clause.Kind)
            {
                case EntityKind.Metric:
                    joins.Append(CultureInfo.InvariantCulture, $" LEFT JOIN latest_metrics {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = {filter.Param(clause.Key)}");
                    orderBy.Add($"CASE WHEN {alias}.value IS NULL THEN 2 WHEN {alias}.is_nan = 1 THEN 1 ELSE 0 END");
                    orderBy.Add($"{alias}.value {direction}");
                    break;
                case EntityKind.Param or EntityKind.Tag:
                    var table = clause.Kind == EntityKind.Param ? "params" : "tags";
                    joins.Append(CultureInfo.InvariantCulture, $" LEFT JOIN {table} {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = {filter.Param(clause.Key)}");
                    orderBy.Add($"CASE WHEN {alias}.value IS NULL THEN 1 ELSE 0 END");
                    orderBy.Add($"{alias}.value {direction}");
                    break;
                case EntityKind.Attribute:
                    var (column, _) = Attribute(clause.Key);
                    orderBy.Add($"CASE WHEN {column} IS NULL THEN 1 ELSE 0 END");
                    orderBy.Add($"{column} {direction}");
                    break;
                default:
                    throw CapstanException.Invalid($"Invalid order_by clause: runs cannot be ordered by datasets.{clause.Key}.");
            }
        }

        orderBy.Add("r.start_time DESC");
        orderBy.Add("r.run_uuid ASC");
        var limit = filter.Param((long)search.MaxResults + 1);
        var skip = filter.Param(offset);
        var sql = $"SELECT {RunColumns} FROM runs r{joins} WHERE {filter.Where} ORDER BY {string.Join(", ", orderBy)} LIMIT {limit} OFFSET {skip}";
        return (sql, filter);
    }

    private static string Condition(Comparison comparison, SqlFilter filter)
    {
        var display = SqlFilter.DisplayName(comparison.Kind, comparison.Key);
        switch (comparison.Kind)
        {
            case EntityKind.Metric:
                var key = filter.Param(comparison.Key);
                return $"EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_uuid = r.run_uuid AND m.key = {key} AND m.is_nan = 0 AND {filter.NumericPredicate("m.value", comparison, display)})";
            case EntityKind.Param or EntityKind.Tag:
                var table = comparison.Kind == EntityKind.Param ? "params" : "tags";
                var name = filter.Param(comparison.Key);
                return $"r.run_uuid IN (SELECT k.run_uuid FROM {table} k WHERE k.key = {name} AND {filter.StringPredicate("k.value", comparison, display)})";
            case EntityKind.Dataset:
                return DatasetCondition(comparison, filter, display);
            default:
                var (column, numeric) = Attribute(comparison.Key);
                if (column == "r.run_uuid" && comparison.Operator is not (ComparisonOperator.Equal or ComparisonOperator.NotEqual or ComparisonOperator.In or ComparisonOperator.NotIn))
                {
                    throw CapstanException.Invalid(
                        $"Invalid comparator '{SqlFilter.OperatorText(comparison.Operator)}' for attribute 'run_id'. Only =, !=, IN and NOT IN are supported.");
                }

                return numeric ? filter.NumericPredicate(column, comparison, display, integral: true) : filter.StringPredicate(column, comparison, display);
        }
    }

    private static string DatasetCondition(Comparison comparison, SqlFilter filter, string display)
    {
        switch (comparison.Key.ToLowerInvariant())
        {
            case "name" or "digest":
                var column = comparison.Key.Equals("name", StringComparison.OrdinalIgnoreCase) ? "d.name" : "d.digest";
                return $"r.run_uuid IN (SELECT ri.run_uuid FROM run_inputs ri JOIN datasets d ON d.dataset_uuid = ri.dataset_uuid WHERE {filter.StringPredicate(column, comparison, display)})";
            case "context":
                var contextTag = filter.Param(DatasetContextTag);
                return $"r.run_uuid IN (SELECT it.run_uuid FROM input_tags it WHERE it.name = {contextTag} AND {filter.StringPredicate("it.value", comparison, display)})";
            default:
                throw CapstanException.Invalid($"Invalid dataset attribute '{comparison.Key}'. Valid attributes are name, digest and context.");
        }
    }

    /// <summary>The input tag holding a dataset's role (train, eval...), as MLflow names it.</summary>
    public const string DatasetContextTag = "mlflow.data.context";

    /// <summary>The column of a run attribute and whether it is numeric.</summary>
    private static (string Column, bool Numeric) Attribute(string key) => key.ToLowerInvariant() switch
    {
        "run_id" or "run_uuid" or "id" => ("r.run_uuid", false),
        "run_name" or "name" => ("r.name", false),
        "status" => ("r.status", false),
        "user_id" => ("r.user_id", false),
        "artifact_uri" => ("r.artifact_uri", false),
        "start_time" or "created" => ("r.start_time", true),
        "end_time" => ("r.end_time", true),
        _ => throw CapstanException.Invalid(
            $"Invalid attribute key '{key}'. Valid attributes are run_id, run_name, status, user_id, artifact_uri, start_time and end_time."),
    };
}
