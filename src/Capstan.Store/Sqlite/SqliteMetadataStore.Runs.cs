using System.Globalization;
using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.Tracking;
using Microsoft.Data.Sqlite;

namespace Capstan.Store.Sqlite;

public sealed partial class SqliteMetadataStore
{
    /// <summary>The tag MLflow mirrors a run's name into.</summary>
    private const string RunNameTag = "mlflow.runName";

    private const int MaxMetricHistoryPage = 1_000_000;

    public Task<Run> CreateRunAsync(NewRun run, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        TrackingValidation.Tags(run.Tags);
        var tags = new List<Tag>(run.Tags ?? []);
        var name = !string.IsNullOrWhiteSpace(run.RunName) ? run.RunName
            : tags.LastOrDefault(t => t.Key == RunNameTag)?.Value is { Length: > 0 } tagged ? tagged
            : RunNames.Generate();
        tags.RemoveAll(t => t.Key == RunNameTag);
        tags.Add(new Tag(RunNameTag, name));
        var userId = string.IsNullOrWhiteSpace(run.UserId) ? Environment.UserName : run.UserId;
        var startTime = run.StartTime ?? Now();

        return WriteAsync(transaction =>
        {
            var experimentId = ParseExperimentId(run.ExperimentId);
            var stage = ExperimentStage(transaction, experimentId) ?? throw ExperimentNotFound(run.ExperimentId);
            if (stage != "active")
            {
                throw InvalidState($"Could not create run under non-active experiment with id={run.ExperimentId}.");
            }

            var runId = Guid.NewGuid().ToString("N");
            var experimentText = experimentId.ToString(CultureInfo.InvariantCulture);
            var info = new RunInfo(runId, experimentText, name, userId, RunStatus.Running, startTime, null,
                ArtifactUri.ForRun(experimentText, runId), LifecycleStage.Active);
            using (var insert = WriteCommand(transaction, """
                INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage)
                VALUES (@run, @experiment, @name, @user, @status, @start, NULL, @artifacts, 'active')
                """))
            {
                insert.Parameters.AddWithValue("@run", runId);
                insert.Parameters.AddWithValue("@experiment", experimentId);
                insert.Parameters.AddWithValue("@name", name);
                insert.Parameters.AddWithValue("@user", userId);
                insert.Parameters.AddWithValue("@status", StatusText(RunStatus.Running));
                insert.Parameters.AddWithValue("@start", startTime);
                insert.Parameters.AddWithValue("@artifacts", info.ArtifactUri);
                insert.ExecuteNonQuery();
            }

            var upsertTag = _statements.UpsertTag(transaction);
            foreach (var tag in tags)
            {
                Execute(upsertTag, runId, tag.Key, tag.Value);
            }

            return new Run(info, new RunData([], [], tags.OrderBy(t => t.Key, StringComparer.Ordinal).ToList()), []);
        }, cancellationToken);
    }

    public Task<Run> GetRunAsync(string runId, CancellationToken cancellationToken = default) =>
        ReadAsync(connection =>
        {
            var info = LoadRunInfo(connection, runId) ?? throw RunNotFound(runId);
            return LoadRuns(connection, [info])[0];
        }, cancellationToken);

    public Task<RunInfo> UpdateRunAsync(string runId, RunUpdate update, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(update);
        if (update.RunName is { Length: > TrackingValidation.MaxTagValueLength })
        {
            throw CapstanException.Invalid($"Run name exceeds the limit of {TrackingValidation.MaxTagValueLength} characters.");
        }

        return WriteAsync(transaction =>
        {
            RequireActiveRun(transaction, runId);
            using (var command = WriteCommand(transaction, """
                UPDATE runs SET status = COALESCE(@status, status), end_time = COALESCE(@end, end_time), name = COALESCE(@name, name)
                WHERE run_uuid = @run
                """))
            {
                command.Parameters.AddWithValue("@status", update.Status is { } status ? StatusText(status) : DBNull.Value);
                command.Parameters.AddWithValue("@end", update.EndTime is { } end ? end : DBNull.Value);
                command.Parameters.AddWithValue("@name", string.IsNullOrEmpty(update.RunName) ? DBNull.Value : update.RunName);
                command.Parameters.AddWithValue("@run", runId);
                command.ExecuteNonQuery();
            }

            if (!string.IsNullOrEmpty(update.RunName))
            {
                Execute(_statements.UpsertTag(transaction), runId, RunNameTag, update.RunName);
            }

            return LoadRunInfo(_writer, runId, transaction)!;
        }, cancellationToken);
    }

    public Task DeleteRunAsync(string runId, CancellationToken cancellationToken = default) =>
        SetRunLifecycle(runId, LifecycleStage.Deleted, cancellationToken);

    public Task RestoreRunAsync(string runId, CancellationToken cancellationToken = default) =>
        SetRunLifecycle(runId, LifecycleStage.Active, cancellationToken);

    public Task LogBatchAsync(string runId, LogBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        TrackingValidation.Batch(batch);

        // Validate and aggregate before taking the write lock: per key, the point that may become
        // the latest by MLflow's (step, timestamp, value) rule, so latest_metrics sees one upsert per key.
        var metrics = batch.Metrics ?? [];
        Dictionary<string, Metric>? latest = null;
        if (metrics.Count > 0)
        {
            latest = new Dictionary<string, Metric>(StringComparer.Ordinal);
            foreach (var metric in metrics)
            {
                if (latest.TryGetValue(metric.Key ?? string.Empty, out var current))
                {
                    if (IsLater(metric, current))
                    {
                        latest[metric.Key!] = metric;
                    }
                }
                else
                {
                    TrackingValidation.Key(metric.Key, "metric");
                    latest[metric.Key!] = metric;
                }
            }
        }

        return WriteAsync(transaction =>
        {
            RequireActiveRun(transaction, runId);
            if (batch.Params is { Count: > 0 } parameters)
            {
                LogParams(transaction, runId, parameters);
            }

            if (batch.Tags is { Count: > 0 } tags)
            {
                var upsertTag = _statements.UpsertTag(transaction);
                foreach (var tag in tags)
                {
                    Execute(upsertTag, runId, tag.Key, tag.Value);
                    if (tag.Key == RunNameTag)
                    {
                        RenameRun(transaction, runId, tag.Value);
                    }
                }
            }

            if (latest is not null)
            {
                WriteMetrics(_statements.InsertMetric(transaction), runId, metrics);
                WriteMetrics(_statements.UpsertLatestMetric(transaction), runId, latest.Values);
            }
        }, cancellationToken);
    }

    public Task DeleteTagAsync(string runId, string key, CancellationToken cancellationToken = default) =>
        WriteAsync(transaction =>
        {
            RequireActiveRun(transaction, runId);
            using var command = WriteCommand(transaction, "DELETE FROM tags WHERE run_uuid = @run AND key = @key");
            command.Parameters.AddWithValue("@run", runId);
            command.Parameters.AddWithValue("@key", key);
            if (command.ExecuteNonQuery() == 0)
            {
                throw CapstanException.NotFound($"No tag with name: {key} in run with id {runId}");
            }
        }, cancellationToken);

    public Task LogInputsAsync(string runId, IReadOnlyList<DatasetInput> inputs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        foreach (var input in inputs)
        {
            TrackingValidation.DatasetInput(input);
        }

        return WriteAsync(transaction =>
        {
            var experimentId = RequireActiveRun(transaction, runId);
            foreach (var input in inputs)
            {
                var datasetId = FindOrCreateDataset(transaction, experimentId, input.Dataset);
                using (var link = WriteCommand(transaction, "INSERT INTO run_inputs (run_uuid, dataset_uuid) VALUES (@run, @dataset) ON CONFLICT DO NOTHING"))
                {
                    link.Parameters.AddWithValue("@run", runId);
                    link.Parameters.AddWithValue("@dataset", datasetId);
                    link.ExecuteNonQuery();
                }

                foreach (var tag in input.Tags ?? [])
                {
                    using var tagCommand = WriteCommand(transaction, """
                        INSERT INTO input_tags (run_uuid, dataset_uuid, name, value) VALUES (@run, @dataset, @name, @value)
                        ON CONFLICT (run_uuid, dataset_uuid, name) DO UPDATE SET value = excluded.value
                        """);
                    tagCommand.Parameters.AddWithValue("@run", runId);
                    tagCommand.Parameters.AddWithValue("@dataset", datasetId);
                    tagCommand.Parameters.AddWithValue("@name", tag.Key);
                    tagCommand.Parameters.AddWithValue("@value", tag.Value);
                    tagCommand.ExecuteNonQuery();
                }
            }
        }, cancellationToken);
    }

    public Task<Page<Run>> SearchRunsAsync(RunSearch search, CancellationToken cancellationToken = default) =>
        ReadAsync(connection =>
        {
            ArgumentNullException.ThrowIfNull(search);
            PageToken.CheckMaxResults(search.MaxResults);
            var offset = PageToken.Decode(search.PageToken);
            var (sql, filter) = RunSearchSql.Build(search, offset);
            var infos = new List<RunInfo>();
            using (var command = Command(connection, sql))
            {
                filter.BindTo(command);
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    infos.Add(ReadRunInfo(reader));
                }
            }

            var next = PageToken.Next(offset, search.MaxResults, infos.Count);
            if (infos.Count > search.MaxResults)
            {
                infos.RemoveAt(infos.Count - 1);
            }

            return new Page<Run>(LoadRuns(connection, infos), next);
        }, cancellationToken);

    public Task<Page<Metric>> GetMetricHistoryAsync(string runId, string key, int maxResults = 100_000, string? pageToken = null, CancellationToken cancellationToken = default) =>
        ReadAsync(connection =>
        {
            PageToken.CheckMaxResults(maxResults, MaxMetricHistoryPage);
            var offset = PageToken.Decode(pageToken);
            if (LoadRunInfo(connection, runId) is null)
            {
                throw RunNotFound(runId);
            }

            var points = new List<Metric>(Math.Min(maxResults + 1, 4096));
            using (var command = Command(connection, """
                SELECT value, timestamp, step, is_nan FROM metrics
                WHERE run_uuid = @run AND key = @key
                ORDER BY step, timestamp, value, is_nan
                LIMIT @limit OFFSET @offset
                """))
            {
                command.Parameters.AddWithValue("@run", runId);
                command.Parameters.AddWithValue("@key", key);
                command.Parameters.AddWithValue("@limit", (long)maxResults + 1);
                command.Parameters.AddWithValue("@offset", offset);
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    points.Add(new Metric(key, reader.GetInt64(3) != 0 ? double.NaN : reader.GetDouble(0), reader.GetInt64(1), reader.GetInt64(2)));
                }
            }

            var next = PageToken.Next(offset, maxResults, points.Count);
            if (points.Count > maxResults)
            {
                points.RemoveAt(points.Count - 1);
            }

            return new Page<Metric>(points, next);
        }, cancellationToken);

    private void LogParams(SqliteTransaction transaction, string runId, IReadOnlyList<Param> parameters)
    {
        var insert = _statements.InsertParam(transaction);
        foreach (var param in parameters)
        {
            if (Execute(insert, runId, param.Key, param.Value) > 0)
            {
                continue;
            }

            var select = _statements.SelectParam(transaction);
            select.Parameters[0].Value = runId;
            select.Parameters[1].Value = param.Key;
            var existing = (string?)select.ExecuteScalar();
            if (!string.Equals(existing, param.Value, StringComparison.Ordinal))
            {
                throw CapstanException.Invalid(
                    $"Changing param values is not allowed. Param with key='{param.Key}' was already logged with value='{existing}' for run ID='{runId}'. Attempted logging new value '{param.Value}'.");
            }
        }
    }

    private static void WriteMetrics(SqliteCommand command, string runId, IEnumerable<Metric> metrics)
    {
        var parameters = command.Parameters;
        parameters[0].Value = runId;
        foreach (var metric in metrics)
        {
            var isNan = double.IsNaN(metric.Value);
            parameters[1].Value = metric.Key;
            parameters[2].Value = isNan ? 0d : metric.Value;
            parameters[3].Value = metric.Timestamp;
            parameters[4].Value = metric.Step;
            parameters[5].Value = isNan ? 1L : 0L;
            command.ExecuteNonQuery();
        }
    }

    /// <summary>MLflow's latest-metric rule: greater (step, timestamp, value) wins; NaN counts as 0, as stored.</summary>
    private static bool IsLater(Metric candidate, Metric current)
    {
        if (candidate.Step != current.Step)
        {
            return candidate.Step > current.Step;
        }

        if (candidate.Timestamp != current.Timestamp)
        {
            return candidate.Timestamp > current.Timestamp;
        }

        return StoredValue(candidate) > StoredValue(current);
    }

    private static double StoredValue(Metric metric) => double.IsNaN(metric.Value) ? 0d : metric.Value;

    private static int Execute(SqliteCommand command, string runId, string key, string value)
    {
        command.Parameters[0].Value = runId;
        command.Parameters[1].Value = key;
        command.Parameters[2].Value = value;
        return command.ExecuteNonQuery();
    }

    private void RenameRun(SqliteTransaction transaction, string runId, string name)
    {
        using var command = WriteCommand(transaction, "UPDATE runs SET name = @name WHERE run_uuid = @run");
        command.Parameters.AddWithValue("@name", name);
        command.Parameters.AddWithValue("@run", runId);
        command.ExecuteNonQuery();
    }

    /// <summary>Checks the run exists and it and its experiment are active; returns its experiment id.</summary>
    private long RequireActiveRun(SqliteTransaction transaction, string runId)
    {
        var command = _statements.RunState(transaction);
        command.Parameters[0].Value = runId;
        using var reader = command.ExecuteReader();
        if (!reader.Read())
        {
            throw RunNotFound(runId);
        }

        var experimentId = reader.GetInt64(0);
        var runStage = reader.GetString(1);
        if (runStage != "active")
        {
            throw InvalidState($"The run {runId} must be in the 'active' state. Current state is {runStage}.");
        }

        var experimentStage = reader.GetString(2);
        if (experimentStage != "active")
        {
            throw InvalidState($"The experiment {experimentId} of run {runId} must be in the 'active' state. Current state is {experimentStage}.");
        }

        return experimentId;
    }

    private Task SetRunLifecycle(string runId, LifecycleStage stage, CancellationToken cancellationToken) =>
        WriteAsync(transaction =>
        {
            using var command = WriteCommand(transaction, "UPDATE runs SET lifecycle_stage = @stage, deleted_time = @deleted WHERE run_uuid = @run");
            command.Parameters.AddWithValue("@stage", LifecycleText(stage));
            command.Parameters.AddWithValue("@deleted", stage == LifecycleStage.Deleted ? Now() : DBNull.Value);
            command.Parameters.AddWithValue("@run", runId);
            if (command.ExecuteNonQuery() == 0)
            {
                throw RunNotFound(runId);
            }
        }, cancellationToken);

    private string FindOrCreateDataset(SqliteTransaction transaction, long experimentId, Dataset dataset)
    {
        using (var find = WriteCommand(transaction, "SELECT dataset_uuid FROM datasets WHERE experiment_id = @experiment AND name = @name AND digest = @digest"))
        {
            find.Parameters.AddWithValue("@experiment", experimentId);
            find.Parameters.AddWithValue("@name", dataset.Name);
            find.Parameters.AddWithValue("@digest", dataset.Digest);
            if (find.ExecuteScalar() is string existing)
            {
                return existing;
            }
        }

        var id = Guid.NewGuid().ToString("N");
        using var insert = WriteCommand(transaction, """
            INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, dataset_source, dataset_schema, dataset_profile)
            VALUES (@id, @experiment, @name, @digest, @source_type, @source, @schema, @profile)
            """);
        insert.Parameters.AddWithValue("@id", id);
        insert.Parameters.AddWithValue("@experiment", experimentId);
        insert.Parameters.AddWithValue("@name", dataset.Name);
        insert.Parameters.AddWithValue("@digest", dataset.Digest);
        insert.Parameters.AddWithValue("@source_type", dataset.SourceType);
        insert.Parameters.AddWithValue("@source", dataset.Source);
        insert.Parameters.AddWithValue("@schema", (object?)dataset.Schema ?? DBNull.Value);
        insert.Parameters.AddWithValue("@profile", (object?)dataset.Profile ?? DBNull.Value);
        insert.ExecuteNonQuery();
        return id;
    }

    private static RunInfo? LoadRunInfo(SqliteConnection connection, string runId, SqliteTransaction? transaction = null)
    {
        using var command = Command(connection, $"SELECT {RunSearchSql.RunColumns} FROM runs r WHERE r.run_uuid = @run", transaction);
        command.Parameters.AddWithValue("@run", runId);
        using var reader = command.ExecuteReader();
        return reader.Read() ? ReadRunInfo(reader) : null;
    }

    private static RunInfo ReadRunInfo(SqliteDataReader reader) => new(
        reader.GetString(0),
        reader.GetInt64(1).ToString(CultureInfo.InvariantCulture),
        reader.GetString(2),
        reader.GetString(3),
        ParseStatus(reader.GetString(4)),
        reader.GetInt64(5),
        reader.IsDBNull(6) ? null : reader.GetInt64(6),
        reader.GetString(7),
        ParseLifecycle(reader.GetString(8)));

    /// <summary>Loads params, tags, latest metrics and inputs for all the runs with one query per table (per 500 runs).</summary>
    private static List<Run> LoadRuns(SqliteConnection connection, IReadOnlyList<RunInfo> infos)
    {
        var data = new Dictionary<string, RunParts>(infos.Count, StringComparer.Ordinal);
        foreach (var info in infos)
        {
            data[info.RunId] = new RunParts();
        }

        foreach (var chunk in infos.Select(i => i.RunId).Chunk(MaxInListSize))
        {
            var inList = InList(chunk.Length);
            ReadRows(connection, $"SELECT run_uuid, key, value, timestamp, step, is_nan FROM latest_metrics WHERE run_uuid IN ({inList}) ORDER BY run_uuid, key", chunk,
                reader => data[reader.GetString(0)].Metrics.Add(new Metric(
                    reader.GetString(1), reader.GetInt64(5) != 0 ? double.NaN : reader.GetDouble(2), reader.GetInt64(3), reader.GetInt64(4))));
            ReadRows(connection, $"SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({inList}) ORDER BY run_uuid, key", chunk,
                reader => data[reader.GetString(0)].Params.Add(new Param(reader.GetString(1), reader.GetString(2))));
            ReadRows(connection, $"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({inList}) ORDER BY run_uuid, key", chunk,
                reader => data[reader.GetString(0)].Tags.Add(new Tag(reader.GetString(1), reader.GetString(2))));
            ReadRows(connection, $"""
                SELECT ri.run_uuid, d.dataset_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema, d.dataset_profile
                FROM run_inputs ri JOIN datasets d ON d.dataset_uuid = ri.dataset_uuid
                WHERE ri.run_uuid IN ({inList}) ORDER BY ri.run_uuid, d.name, d.digest
                """, chunk,
                reader => data[reader.GetString(0)].Inputs.Add((reader.GetString(1), new Dataset(
                    reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5),
                    reader.IsDBNull(6) ? null : reader.GetString(6), reader.IsDBNull(7) ? null : reader.GetString(7)))));
            ReadRows(connection, $"SELECT run_uuid, dataset_uuid, name, value FROM input_tags WHERE run_uuid IN ({inList}) ORDER BY run_uuid, name", chunk,
                reader => data[reader.GetString(0)].InputTags.Add((reader.GetString(1), new Tag(reader.GetString(2), reader.GetString(3)))));
        }

        return infos.Select(info =>
        {
            var parts = data[info.RunId];
            var inputs = parts.Inputs.Select(input => new DatasetInput(input.Dataset,
                parts.InputTags.Where(t => t.DatasetId == input.DatasetId).Select(t => t.Tag).ToList())).ToList();
            return new Run(info, new RunData(parts.Metrics, parts.Params, parts.Tags), inputs);
        }).ToList();
    }

    private static void ReadRows(SqliteConnection connection, string sql, string[] runIds, Action<SqliteDataReader> row)
    {
        using var command = Command(connection, sql);
        BindInList(command, runIds);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            row(reader);
        }
    }

    private static string StatusText(RunStatus status) => status switch
    {
        RunStatus.Running => "RUNNING",
        RunStatus.Scheduled => "SCHEDULED",
        RunStatus.Finished => "FINISHED",
        RunStatus.Failed => "FAILED",
        _ => "KILLED",
    };

    private static RunStatus ParseStatus(string text) => text switch
    {
        "RUNNING" => RunStatus.Running,
        "SCHEDULED" => RunStatus.Scheduled,
        "FINISHED" => RunStatus.Finished,
        "FAILED" => RunStatus.Failed,
        _ => RunStatus.Killed,
    };

    private static CapstanException RunNotFound(string runId) => CapstanException.NotFound($"Run with id={runId} not found");

    private sealed class RunParts
    {
        public List<Metric> Metrics { get; } = [];

        public List<Param> Params { get; } = [];

        public List<Tag> Tags { get; } = [];

        public List<(string DatasetId, Dataset Dataset)> Inputs { get; } = [];

        public List<(string DatasetId, Tag Tag)> InputTags { get; } = [];
    }
}
