using Microsoft.Data.Sqlite;

namespace Capstan.Store.Sqlite;

/// <summary>
/// The ingest hot path's statements, prepared once on the writer connection and reused: only the
/// parameter values change between executions. Used only while holding the write lock.
/// </summary>
internal sealed class WriterStatements(SqliteConnection writer) : IDisposable
{
    private SqliteCommand? _runState;
    private SqliteCommand? _insertMetric;
    private SqliteCommand? _upsertLatestMetric;
    private SqliteCommand? _insertParam;
    private SqliteCommand? _selectParam;
    private SqliteCommand? _upsertTag;

    /// <summary>The run's experiment id, its lifecycle stage and its experiment's lifecycle stage.</summary>
    public SqliteCommand RunState(SqliteTransaction transaction) => Bind(ref _runState, transaction, """
        SELECT r.experiment_id, r.lifecycle_stage, e.lifecycle_stage
        FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
        WHERE r.run_uuid = @run
        """, "@run");

    public SqliteCommand InsertMetric(SqliteTransaction transaction) => Bind(ref _insertMetric, transaction, """
        INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan)
        VALUES (@run, @key, @value, @timestamp, @step, @is_nan)
        ON CONFLICT DO NOTHING
        """, "@run", "@key", "@value", "@timestamp", "@step", "@is_nan");

    /// <summary>Replaces the latest point only when the new one is greater by (step, timestamp, value).</summary>
    public SqliteCommand UpsertLatestMetric(SqliteTransaction transaction) => Bind(ref _upsertLatestMetric, transaction, """
        INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, is_nan)
        VALUES (@run, @key, @value, @timestamp, @step, @is_nan)
        ON CONFLICT (run_uuid, key) DO UPDATE SET
            value = excluded.value, timestamp = excluded.timestamp, step = excluded.step, is_nan = excluded.is_nan
        WHERE (excluded.step, excluded.timestamp, excluded.value)
            > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)
        """, "@run", "@key", "@value", "@timestamp", "@step", "@is_nan");

    public SqliteCommand InsertParam(SqliteTransaction transaction) => Bind(ref _insertParam, transaction, """
        INSERT INTO params (run_uuid, key, value) VALUES (@run, @key, @value)
        ON CONFLICT (run_uuid, key) DO NOTHING
        """, "@run", "@key", "@value");

    public SqliteCommand SelectParam(SqliteTransaction transaction) => Bind(ref _selectParam, transaction,
        "SELECT value FROM params WHERE run_uuid = @run AND key = @key", "@run", "@key");

    public SqliteCommand UpsertTag(SqliteTransaction transaction) => Bind(ref _upsertTag, transaction, """
        INSERT INTO tags (run_uuid, key, value) VALUES (@run, @key, @value)
        ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value
        """, "@run", "@key", "@value");

    public void Dispose()
    {
        _runState?.Dispose();
        _insertMetric?.Dispose();
        _upsertLatestMetric?.Dispose();
        _insertParam?.Dispose();
        _selectParam?.Dispose();
        _upsertTag?.Dispose();
    }

    private SqliteCommand Bind(ref SqliteCommand? command, SqliteTransaction transaction, string sql, params string[] parameters)
    {
        if (command is null)
        {
            command = writer.CreateCommand();
            command.CommandText = sql;
            foreach (var name in parameters)
            {
                command.Parameters.Add(new SqliteParameter { ParameterName = name });
            }

            command.Transaction = transaction;
            command.Prepare();
        }

        command.Transaction = transaction;
        return command;
    }
}
