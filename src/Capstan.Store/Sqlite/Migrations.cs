using Microsoft.Data.Sqlite;

namespace Capstan.Store.Sqlite;

/// <summary>One versioned schema change. <c>@now</c> in the script is bound to the current Unix time in milliseconds.</summary>
internal sealed record SchemaMigration(int Version, string Description, string Sql);

/// <summary>
/// The ordered schema history. Each migration runs once, in its own transaction, and is recorded in
/// <c>schema_migrations</c>; opening an existing database applies only the ones it lacks.
/// The SQL sticks to standard types and <c>ON CONFLICT</c> so the PostgreSQL store can share it.
/// Append new migrations at the end; never edit one that has shipped.
/// </summary>
internal static class SchemaMigrations
{
    public static IReadOnlyList<SchemaMigration> All { get; } =
    [
        new(1, "tracking: experiments, runs, params, tags, metrics, datasets", """
            CREATE TABLE experiments (
                experiment_id BIGINT NOT NULL PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                artifact_location TEXT NOT NULL,
                lifecycle_stage TEXT NOT NULL,
                creation_time BIGINT NOT NULL,
                last_update_time BIGINT NOT NULL
            );
            CREATE TABLE experiment_tags (
                experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (experiment_id, key)
            );
            INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
            VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active', @now, @now);

            CREATE TABLE runs (
                run_uuid TEXT NOT NULL PRIMARY KEY,
                experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
                name TEXT NOT NULL,
                user_id TEXT NOT NULL,
                status TEXT NOT NULL,
                start_time BIGINT NOT NULL,
                end_time BIGINT,
                artifact_uri TEXT NOT NULL,
                lifecycle_stage TEXT NOT NULL,
                deleted_time BIGINT
            );
            CREATE INDEX ix_runs_experiment_start ON runs (experiment_id, lifecycle_stage, start_time DESC, run_uuid);

            CREATE TABLE params (
                run_uuid TEXT NOT NULL REFERENCES runs (run_uuid) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (run_uuid, key)
            );
            CREATE INDEX ix_params_key_value ON params (key, value);

            CREATE TABLE tags (
                run_uuid TEXT NOT NULL REFERENCES runs (run_uuid) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (run_uuid, key)
            );
            CREATE INDEX ix_tags_key_value ON tags (key, value);

            -- Full history. The key makes re-sending the same point (a retried batch) a no-op, and
            -- its prefix (run_uuid, key, step, timestamp) serves history reads in order.
            -- NaN is stored as value 0 with is_nan = 1 (SQLite would turn a NaN into NULL).
            CREATE TABLE metrics (
                run_uuid TEXT NOT NULL REFERENCES runs (run_uuid) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value DOUBLE PRECISION NOT NULL,
                timestamp BIGINT NOT NULL,
                step BIGINT NOT NULL,
                is_nan INTEGER NOT NULL,
                PRIMARY KEY (run_uuid, key, step, timestamp, value, is_nan)
            );

            -- Per run and key, the point with the greatest (step, timestamp, value): MLflow's rule.
            -- Deliberately no (key, value) index: every batch would then rewrite one index page per
            -- metric key, which cut ingest of 100-key batches several-fold. Searches are scoped to
            -- experiments, so metric filters probe the primary key run by run instead.
            CREATE TABLE latest_metrics (
                run_uuid TEXT NOT NULL REFERENCES runs (run_uuid) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value DOUBLE PRECISION NOT NULL,
                timestamp BIGINT NOT NULL,
                step BIGINT NOT NULL,
                is_nan INTEGER NOT NULL,
                PRIMARY KEY (run_uuid, key)
            );

            CREATE TABLE datasets (
                dataset_uuid TEXT NOT NULL PRIMARY KEY,
                experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                digest TEXT NOT NULL,
                dataset_source_type TEXT NOT NULL,
                dataset_source TEXT NOT NULL,
                dataset_schema TEXT,
                dataset_profile TEXT,
                UNIQUE (experiment_id, name, digest)
            );
            CREATE TABLE run_inputs (
                run_uuid TEXT NOT NULL REFERENCES runs (run_uuid) ON DELETE CASCADE,
                dataset_uuid TEXT NOT NULL REFERENCES datasets (dataset_uuid) ON DELETE CASCADE,
                PRIMARY KEY (run_uuid, dataset_uuid)
            );
            CREATE INDEX ix_run_inputs_dataset ON run_inputs (dataset_uuid);
            CREATE TABLE input_tags (
                run_uuid TEXT NOT NULL,
                dataset_uuid TEXT NOT NULL,
                name TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (run_uuid, dataset_uuid, name),
                FOREIGN KEY (run_uuid, dataset_uuid) REFERENCES run_inputs (run_uuid, dataset_uuid) ON DELETE CASCADE
            );
            """),
        new(2, "registry: registered models, versions, tags, aliases", """
            CREATE TABLE registered_models (
                name TEXT NOT NULL PRIMARY KEY,
                creation_time BIGINT NOT NULL,
                last_updated_time BIGINT NOT NULL,
                description TEXT,
                last_version BIGINT NOT NULL DEFAULT 0
            );
            CREATE TABLE registered_model_tags (
                name TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (name, key)
            );
            CREATE TABLE model_versions (
                name TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
                version BIGINT NOT NULL,
                creation_time BIGINT NOT NULL,
                last_updated_time BIGINT NOT NULL,
                description TEXT,
                user_id TEXT,
                current_stage TEXT NOT NULL DEFAULT 'None',
                source TEXT NOT NULL,
                run_id TEXT,
                run_link TEXT,
                status TEXT NOT NULL,
                status_message TEXT,
                signature_inputs TEXT,
                signature_outputs TEXT,
                PRIMARY KEY (name, version)
            );
            CREATE INDEX ix_model_versions_run ON model_versions (run_id);
            CREATE TABLE model_version_tags (
                name TEXT NOT NULL,
                version BIGINT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (name, version, key),
                FOREIGN KEY (name, version) REFERENCES model_versions (name, version) ON UPDATE CASCADE ON DELETE CASCADE
            );
            CREATE TABLE registered_model_aliases (
                name TEXT NOT NULL,
                alias TEXT NOT NULL,
                version BIGINT NOT NULL,
                PRIMARY KEY (name, alias),
                FOREIGN KEY (name, version) REFERENCES model_versions (name, version) ON UPDATE CASCADE ON DELETE CASCADE
            );
            """),
        new(3, "control plane: declarative resources, their change log and events", """
            -- One increasing number per kind of sequence: 'resource_version' is the store's revision
            -- (etcd's), shared by every object so a watch can resume from any point.
            CREATE TABLE resource_sequences (
                name TEXT NOT NULL PRIMARY KEY,
                value BIGINT NOT NULL
            );
            INSERT INTO resource_sequences (name, value) VALUES ('resource_version', 0);
            INSERT INTO resource_sequences (name, value) VALUES ('event', 0);

            -- The current state of every object; body is ResourceSerializer's JSON (Kubernetes field names).
            CREATE TABLE resources (
                kind TEXT NOT NULL,
                namespace TEXT NOT NULL,
                name TEXT NOT NULL,
                uid TEXT NOT NULL UNIQUE,
                generation BIGINT NOT NULL,
                resource_version BIGINT NOT NULL,
                creation_time BIGINT NOT NULL,
                body TEXT NOT NULL,
                PRIMARY KEY (kind, namespace, name)
            );

            -- Every committed change, so a watch replays what it missed (after a restart too).
            CREATE TABLE resource_changes (
                resource_version BIGINT NOT NULL PRIMARY KEY,
                change_type TEXT NOT NULL,
                kind TEXT NOT NULL,
                namespace TEXT NOT NULL,
                name TEXT NOT NULL,
                body TEXT NOT NULL
            );
            CREATE INDEX ix_resource_changes_kind ON resource_changes (kind, resource_version);

            -- Kubernetes Events; a repeat of the same type, reason and message bumps count.
            CREATE TABLE resource_events (
                event_id BIGINT NOT NULL PRIMARY KEY,
                kind TEXT NOT NULL,
                namespace TEXT NOT NULL,
                name TEXT NOT NULL,
                uid TEXT,
                event_type TEXT NOT NULL,
                reason TEXT NOT NULL,
                message TEXT NOT NULL,
                count INTEGER NOT NULL,
                first_time BIGINT NOT NULL,
                last_time BIGINT NOT NULL,
                UNIQUE (kind, namespace, name, event_type, reason, message)
            );
            """),
    ];

    /// <summary>Applies the migrations the database lacks, each in a transaction. Returns the versions applied.</summary>
    public static IReadOnlyList<int> Apply(SqliteConnection connection, IReadOnlyList<SchemaMigration> migrations, CancellationToken cancellationToken)
    {
        using (var create = connection.CreateCommand())
        {
            create.CommandText = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)";
            create.ExecuteNonQuery();
        }

        var applied = new HashSet<int>();
        using (var select = connection.CreateCommand())
        {
            select.CommandText = "SELECT version FROM schema_migrations";
            using var reader = select.ExecuteReader();
            while (reader.Read())
            {
                applied.Add(reader.GetInt32(0));
            }
        }

        var done = new List<int>();
        foreach (var migration in migrations.OrderBy(m => m.Version))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (applied.Contains(migration.Version))
            {
                continue;
            }

            using var transaction = connection.BeginTransaction();
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            using (var script = connection.CreateCommand())
            {
                script.Transaction = transaction;
                script.CommandText = migration.Sql;
                script.Parameters.AddWithValue("@now", now);
                script.ExecuteNonQuery();
            }

            using (var record = connection.CreateCommand())
            {
                record.Transaction = transaction;
                record.CommandText = "INSERT INTO schema_migrations (version, applied_at) VALUES (@version, @now)";
                record.Parameters.AddWithValue("@version", migration.Version);
                record.Parameters.AddWithValue("@now", now);
                record.ExecuteNonQuery();
            }

            transaction.Commit();
            done.Add(migration.Version);
        }

        return done;
    }
}
