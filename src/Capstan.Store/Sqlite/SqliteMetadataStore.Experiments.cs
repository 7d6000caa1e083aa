using System.Globalization;
using Capstan.Core;
using Capstan.Core.Search;
using Capstan.Core.Tracking;
using Microsoft.Data.Sqlite;

namespace Capstan.Store.Sqlite;

public sealed partial class SqliteMetadataStore
{
    private const string ExperimentColumns = "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time";

    public Task<Experiment> CreateExperimentAsync(NewExperiment experiment, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        TrackingValidation.ExperimentName(experiment.Name);
        TrackingValidation.Tags(experiment.Tags);
        return WriteAsync(transaction =>
        {
            using (var existing = WriteCommand(transaction, "SELECT lifecycle_stage FROM experiments WHERE name = @name"))
            {
                existing.Parameters.AddWithValue("@name", experiment.Name);
                if (existing.ExecuteScalar() is string stage)
                {
                    throw CapstanException.AlreadyExists(stage == "deleted"
                        ? $"Experiment '{experiment.Name}' already exists in deleted state. You can restore the experiment, or permanently delete it before creating a new one with the same name."
                        : $"Experiment '{experiment.Name}' already exists.");
                }
            }

            long id;
            using (var next = WriteCommand(transaction, "SELECT COALESCE(MAX(experiment_id), 0) + 1 FROM experiments"))
            {
                id = Convert.ToInt64(next.ExecuteScalar(), CultureInfo.InvariantCulture);
            }

            var idText = id.ToString(CultureInfo.InvariantCulture);
            var location = string.IsNullOrWhiteSpace(experiment.ArtifactLocation) ? $"{Core.Artifacts.ArtifactUri.Scheme}/{idText}" : experiment.ArtifactLocation;
            var now = Now();
            using (var insert = WriteCommand(transaction, """
                INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
                VALUES (@id, @name, @location, 'active', @now, @now)
                """))
            {
                insert.Parameters.AddWithValue("@id", id);
                insert.Parameters.AddWithValue("@name", experiment.Name);
                insert.Parameters.AddWithValue("@location", location);
                insert.Parameters.AddWithValue("@now", now);
                insert.ExecuteNonQuery();
            }

            foreach (var tag in experiment.Tags ?? [])
            {
                UpsertExperimentTag(transaction, id, tag.Key, tag.Value);
            }

            return new Experiment(idText, experiment.Name, location, LifecycleStage.Active, now, now, experiment.Tags?.ToList() ?? []);
        }, cancellationToken);
    }

    public Task<Experiment> GetExperimentAsync(string experimentId, CancellationToken cancellationToken = default) =>
        ReadAsync(connection =>
        {
            var id = ParseExperimentId(experimentId);
            return LoadExperiments(connection, $"SELECT {ExperimentColumns} FROM experiments e WHERE e.experiment_id = @id", c => c.Parameters.AddWithValue("@id", id))
                .SingleOrDefault() ?? throw ExperimentNotFound(experimentId);
        }, cancellationToken);

    public Task<Experiment> GetExperimentByNameAsync(string name, CancellationToken cancellationToken = default) =>
        ReadAsync(connection =>
            LoadExperiments(connection, $"SELECT {ExperimentColumns} FROM experiments e WHERE e.name = @name", c => c.Parameters.AddWithValue("@name", name))
                .SingleOrDefault() ?? throw CapstanException.NotFound($"Could not find experiment with name '{name}'."),
            cancellationToken);

    public Task<Page<Experiment>> SearchExperimentsAsync(ExperimentSearch search, CancellationToken cancellationToken = default) =>
        ReadAsync(connection =>
        {
            ArgumentNullException.ThrowIfNull(search);
            PageToken.CheckMaxResults(search.MaxResults);
            var offset = PageToken.Decode(search.PageToken);
            var filter = new SqlFilter();
            switch (search.ViewType)
            {
                case ViewType.ActiveOnly:
                    filter.Add($"e.lifecycle_stage = {filter.Param("active")}");
                    break;
                case ViewType.DeletedOnly:
                    filter.Add($"e.lifecycle_stage = {filter.Param("deleted")}");
                    break;
            }

            foreach (var comparison in SearchFilterParser.Parse(search.Filter))
            {
                var display = SqlFilter.DisplayName(comparison.Kind, comparison.Key);
                filter.Add(comparison.Kind switch
                {
                    EntityKind.Tag => $"e.experiment_id IN (SELECT t.experiment_id FROM experiment_tags t WHERE t.key = {filter.Param(comparison.Key)} AND {filter.StringPredicate("t.value", comparison, display)})",
                    EntityKind.Attribute => ExperimentAttribute(comparison.Key) is var (column, numeric) && numeric
                        ? filter.NumericPredicate(column, comparison, display, integral: true)
                        : filter.StringPredicate(column, comparison, display),
                    _ => throw CapstanException.Invalid($"Invalid experiment search key '{display}': only attributes (name, creation_time, last_update_time) and tags are supported."),
                });
            }

            var orderBy = SearchFilterParser.ParseOrderBy(search.OrderBy).Select(clause => clause.Kind == EntityKind.Attribute
                ? $"{ExperimentAttribute(clause.Key).Column} {(clause.Ascending ? "ASC" : "DESC")}"
                : throw CapstanException.Invalid($"Invalid order_by clause for experiments: '{SqlFilter.DisplayName(clause.Kind, clause.Key)}'. Use name, creation_time, last_update_time or experiment_id."))
                .ToList();
            if (orderBy.Count == 0)
            {
                orderBy.Add("e.creation_time DESC");
            }

            orderBy.Add("e.experiment_id ASC");
            var sql = $"SELECT {ExperimentColumns} FROM experiments e WHERE {filter.Where} ORDER BY {string.Join(", ", orderBy)} LIMIT {filter.Param((long)search.MaxResults + 1)} OFFSET {filter.Param(offset)}";
            var experiments = LoadExperiments(connection, sql, filter.BindTo);
            var next = PageToken.Next(offset, search.MaxResults, experiments.Count);
            return new Page<Experiment>(experiments.Take(search.MaxResults).ToList(), next);
        }, cancellationToken);

    public Task RenameExperimentAsync(string experimentId, string newName, CancellationToken cancellationToken = default)
    {
        TrackingValidation.ExperimentName(newName);
        return WriteAsync(transaction =>
        {
            var id = RequireActiveExperiment(transaction, experimentId);
            using (var taken = WriteCommand(transaction, "SELECT 1 FROM experiments WHERE name = @name AND experiment_id <> @id"))
            {
                taken.Parameters.AddWithValue("@name", newName);
                taken.Parameters.AddWithValue("@id", id);
                if (taken.ExecuteScalar() is not null)
                {
                    throw CapstanException.AlreadyExists($"Experiment '{newName}' already exists.");
                }
            }

            using var update = WriteCommand(transaction, "UPDATE experiments SET name = @name, last_update_time = @now WHERE experiment_id = @id");
            update.Parameters.AddWithValue("@name", newName);
            update.Parameters.AddWithValue("@now", Now());
            update.Parameters.AddWithValue("@id", id);
            update.ExecuteNonQuery();
        }, cancellationToken);
    }

    public Task DeleteExperimentAsync(string experimentId, CancellationToken cancellationToken = default) =>
        SetExperimentLifecycle(experimentId, LifecycleStage.Deleted, cancellationToken);

    public Task RestoreExperimentAsync(string experimentId, CancellationToken cancellationToken = default) =>
        SetExperimentLifecycle(experimentId, LifecycleStage.Active, cancellationToken);

    public Task SetExperimentTagAsync(string experimentId, string key, string value, CancellationToken cancellationToken = default)
    {
        TrackingValidation.Tag(new Tag(key, value));
        return WriteAsync(transaction =>
        {
            var id = RequireActiveExperiment(transaction, experimentId);
            UpsertExperimentTag(transaction, id, key, value);
        }, cancellationToken);
    }

    /// <summary>Deleting or restoring an experiment does the same to its runs, as MLflow does.</summary>
    private Task SetExperimentLifecycle(string experimentId, LifecycleStage stage, CancellationToken cancellationToken) =>
        WriteAsync(transaction =>
        {
            var id = ParseExperimentId(experimentId);
            var current = ExperimentStage(transaction, id) ?? throw ExperimentNotFound(experimentId);
            var target = LifecycleText(stage);
            if (current == target)
            {
                throw InvalidState($"Cannot {(stage == LifecycleStage.Deleted ? "delete" : "restore")} experiment with id={experimentId}: it is already {target}.");
            }

            var now = Now();
            using (var update = WriteCommand(transaction, "UPDATE experiments SET lifecycle_stage = @stage, last_update_time = @now WHERE experiment_id = @id"))
            {
                update.Parameters.AddWithValue("@stage", target);
                update.Parameters.AddWithValue("@now", now);
                update.Parameters.AddWithValue("@id", id);
                update.ExecuteNonQuery();
            }

            using var runs = WriteCommand(transaction, "UPDATE runs SET lifecycle_stage = @stage, deleted_time = @deleted WHERE experiment_id = @id AND lifecycle_stage = @from");
            runs.Parameters.AddWithValue("@stage", target);
            runs.Parameters.AddWithValue("@deleted", stage == LifecycleStage.Deleted ? now : DBNull.Value);
            runs.Parameters.AddWithValue("@id", id);
            runs.Parameters.AddWithValue("@from", current);
            runs.ExecuteNonQuery();
        }, cancellationToken);

    private string? ExperimentStage(SqliteTransaction transaction, long id)
    {
        using var command = WriteCommand(transaction, "SELECT lifecycle_stage FROM experiments WHERE experiment_id = @id");
        command.Parameters.AddWithValue("@id", id);
        return command.ExecuteScalar() as string;
    }

    private long RequireActiveExperiment(SqliteTransaction transaction, string experimentId)
    {
        var id = ParseExperimentId(experimentId);
        var stage = ExperimentStage(transaction, id) ?? throw ExperimentNotFound(experimentId);
        if (stage != "active")
        {
            throw InvalidState($"The experiment {experimentId} must be in the 'active' state. Current state is {stage}.");
        }

        return id;
    }

    private void UpsertExperimentTag(SqliteTransaction transaction, long id, string key, string value)
    {
        using var command = WriteCommand(transaction, """
            INSERT INTO experiment_tags (experiment_id, key, value) VALUES (@id, @key, @value)
            ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value
            """);
        command.Parameters.AddWithValue("@id", id);
        command.Parameters.AddWithValue("@key", key);
        command.Parameters.AddWithValue("@value", value);
        command.ExecuteNonQuery();
    }

    private static List<Experiment> LoadExperiments(SqliteConnection connection, string sql, Action<SqliteCommand> bind)
    {
        var rows = new List<(long Id, Experiment Experiment)>();
        using (var command = Command(connection, sql))
        {
            bind(command);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var id = reader.GetInt64(0);
                rows.Add((id, new Experiment(
                    id.ToString(CultureInfo.InvariantCulture), reader.GetString(1), reader.GetString(2), ParseLifecycle(reader.GetString(3)),
                    reader.GetInt64(4), reader.GetInt64(5), [])));
            }
        }

        if (rows.Count == 0)
        {
            return [];
        }

        var tags = new Dictionary<long, List<Tag>>();
        foreach (var chunk in rows.Select(r => r.Id).Chunk(MaxInListSize))
        {
            using var command = Command(connection, $"SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN ({InList(chunk.Length)}) ORDER BY key");
            BindInList(command, chunk);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var id = reader.GetInt64(0);
                if (!tags.TryGetValue(id, out var list))
                {
                    tags[id] = list = [];
                }

                list.Add(new Tag(reader.GetString(1), reader.GetString(2)));
            }
        }

        return rows.Select(r => tags.TryGetValue(r.Id, out var list) ? r.Experiment with { Tags = list } : r.Experiment).ToList();
    }

    private static long ParseExperimentId(string experimentId) =>
        long.TryParse(experimentId, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : throw ExperimentNotFound(experimentId);

    private static CapstanException ExperimentNotFound(string experimentId) =>
        CapstanException.NotFound($"No Experiment with id={experimentId} exists");

    private static (string Column, bool Numeric) ExperimentAttribute(string key) => key.ToLowerInvariant() switch
    {
        "name" => ("e.name", false),
        "creation_time" => ("e.creation_time", true),
        "last_update_time" => ("e.last_update_time", true),
        "experiment_id" => ("e.experiment_id", true),
        _ => throw CapstanException.Invalid($"Invalid experiment attribute '{key}'. Valid attributes are name, creation_time, last_update_time and experiment_id."),
    };

    /// <summary>How many values one <c>IN (...)</c> list binds; SQLite allows 32766 parameters per statement.</summary>
    private const int MaxInListSize = 500;

    private static string InList(int count) =>
        string.Join(", ", Enumerable.Range(0, count).Select(i => "@i" + i.ToString(CultureInfo.InvariantCulture)));

    private static void BindInList<T>(SqliteCommand command, IReadOnlyList<T> values)
    {
        for (var i = 0; i < values.Count; i++)
        {
            command.Parameters.AddWithValue("@i" + i.ToString(CultureInfo.InvariantCulture), values[i]);
        }
    }
}
