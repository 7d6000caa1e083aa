using Capstan.Core;
using Capstan.Core.Registry;
using Capstan.Core.Search;
using Capstan.Core.Tracking;
using Microsoft.Data.Sqlite;

namespace Capstan.Store.Sqlite;

public sealed partial class SqliteMetadataStore
{
    private const string ModelColumns = "m.name, m.creation_time, m.last_updated_time, m.description";

    private const string VersionColumns =
        "v.name, v.version, v.creation_time, v.last_updated_time, v.description, v.user_id, v.current_stage, v.source, v.run_id, v.run_link, v.status, v.status_message, v.signature_inputs, v.signature_outputs";

    /// <summary>MLflow's stages, in the order latest versions are listed.</summary>
    private static readonly string[] s_stages = ["None", "Staging", "Production", "Archived"];

    public Task<RegisteredModel> CreateRegisteredModelAsync(NewRegisteredModel model, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        TrackingValidation.ModelName(model.Name);
        TrackingValidation.Tags(model.Tags);
        return WriteAsync(transaction =>
        {
            if (ModelExists(transaction, model.Name))
            {
                throw CapstanException.AlreadyExists($"Registered Model (name={model.Name}) already exists.");
            }

            var now = Now();
            using (var insert = WriteCommand(transaction, """
                INSERT INTO registered_models (name, creation_time, last_updated_time, description, last_version)
                VALUES (@name, @now, @now, @description, 0)
                """))
            {
                insert.Parameters.AddWithValue("@name", model.Name);
                insert.Parameters.AddWithValue("@now", now);
                insert.Parameters.AddWithValue("@description", (object?)model.Description ?? DBNull.Value);
                insert.ExecuteNonQuery();
            }

            foreach (var tag in model.Tags ?? [])
            {
                UpsertModelTag(transaction, model.Name, tag);
            }

            return new RegisteredModel(model.Name, now, now, model.Description,
                (model.Tags ?? []).OrderBy(t => t.Key, StringComparer.Ordinal).ToList(), [], []);
        }, cancellationToken);
    }

    public Task<RegisteredModel> GetRegisteredModelAsync(string name, CancellationToken cancellationToken = default) =>
        ReadAsync(connection => GetModel(connection, name, null), cancellationToken);

    public Task<Page<RegisteredModel>> SearchRegisteredModelsAsync(RegistrySearch search, CancellationToken cancellationToken = default) =>
        ReadAsync(connection =>
        {
            ArgumentNullException.ThrowIfNull(search);
            PageToken.CheckMaxResults(search.MaxResults);
            var offset = PageToken.Decode(search.PageToken);
            var filter = new SqlFilter();
            foreach (var comparison in SearchFilterParser.Parse(search.Filter))
            {
                var display = SqlFilter.DisplayName(comparison.Kind, comparison.Key);
                filter.Add(comparison switch
                {
                    { Kind: EntityKind.Attribute } when comparison.Key.Equals("name", StringComparison.OrdinalIgnoreCase) =>
                        filter.StringPredicate("m.name", comparison, display),
                    { Kind: EntityKind.Tag } =>
                        $"m.name IN (SELECT t.name FROM registered_model_tags t WHERE t.key = {filter.Param(comparison.Key)} AND {filter.StringPredicate("t.value", comparison, display)})",
                    _ => throw CapstanException.Invalid($"Invalid registered model search key '{display}': only name and tags.<key> are supported."),
                });
            }

            var orderBy = SearchFilterParser.ParseOrderBy(search.OrderBy).Select(clause =>
                $"{ModelOrderColumn(clause)} {(clause.Ascending ? "ASC" : "DESC")}").ToList();
            orderBy.Add("m.name ASC");
            var sql = $"SELECT {ModelColumns} FROM registered_models m WHERE {filter.Where} ORDER BY {string.Join(", ", orderBy)} LIMIT {filter.Param((long)search.MaxResults + 1)} OFFSET {filter.Param(offset)}";
            var models = LoadModels(connection, null, sql, filter.BindTo);
            var next = PageToken.Next(offset, search.MaxResults, models.Count);
            return new Page<RegisteredModel>(models.Take(search.MaxResults).ToList(), next);
        }, cancellationToken);

    public Task<RegisteredModel> UpdateRegisteredModelAsync(string name, string? description, CancellationToken cancellationToken = default) =>
        WriteAsync(transaction =>
        {
            using (var update = WriteCommand(transaction, "UPDATE registered_models SET description = @description, last_updated_time = @now WHERE name = @name"))
            {
                update.Parameters.AddWithValue("@description", (object?)description ?? DBNull.Value);
                update.Parameters.AddWithValue("@now", Now());
                update.Parameters.AddWithValue("@name", name);
                if (update.ExecuteNonQuery() == 0)
                {
                    throw ModelNotFound(name);
                }
            }

            return GetModel(_writer, name, transaction);
        }, cancellationToken);

    /// <summary>Renames the model; its versions, tags and aliases follow through ON UPDATE CASCADE.</summary>
    public Task<RegisteredModel> RenameRegisteredModelAsync(string name, string newName, CancellationToken cancellationToken = default)
    {
        TrackingValidation.ModelName(newName);
        return WriteAsync(transaction =>
        {
            RequireModel(transaction, name);
            if (name != newName && ModelExists(transaction, newName))
            {
                throw CapstanException.AlreadyExists($"Registered Model (name={newName}) already exists.");
            }

            using (var update = WriteCommand(transaction, "UPDATE registered_models SET name = @new, last_updated_time = @now WHERE name = @name"))
            {
                update.Parameters.AddWithValue("@new", newName);
                update.Parameters.AddWithValue("@now", Now());
                update.Parameters.AddWithValue("@name", name);
                update.ExecuteNonQuery();
            }

            return GetModel(_writer, newName, transaction);
        }, cancellationToken);
    }

    public Task DeleteRegisteredModelAsync(string name, CancellationToken cancellationToken = default) =>
        WriteAsync(transaction =>
        {
            using var delete = WriteCommand(transaction, "DELETE FROM registered_models WHERE name = @name");
            delete.Parameters.AddWithValue("@name", name);
            if (delete.ExecuteNonQuery() == 0)
            {
                throw ModelNotFound(name);
            }
        }, cancellationToken);

    public Task SetRegisteredModelTagAsync(string name, string key, string value, CancellationToken cancellationToken = default)
    {
        var tag = new Tag(key, value);
        TrackingValidation.Tag(tag);
        return WriteAsync(transaction =>
        {
            RequireModel(transaction, name);
            UpsertModelTag(transaction, name, tag);
        }, cancellationToken);
    }

    public Task DeleteRegisteredModelTagAsync(string name, string key, CancellationToken cancellationToken = default) =>
        WriteAsync(transaction =>
        {
            RequireModel(transaction, name);
            using var delete = WriteCommand(transaction, "DELETE FROM registered_model_tags WHERE name = @name AND key = @key");
            delete.Parameters.AddWithValue("@name", name);
            delete.Parameters.AddWithValue("@key", key);
            delete.ExecuteNonQuery();
        }, cancellationToken);

    public Task<ModelVersion> CreateModelVersionAsync(NewModelVersion version, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(version);
        TrackingValidation.ModelName(version.Name);
        TrackingValidation.Tags(version.Tags);
        if (string.IsNullOrWhiteSpace(version.Source))
        {
            throw CapstanException.Invalid("A model version needs a source (the model's artifact location).");
        }

        return WriteAsync(transaction =>
        {
            var now = Now();
            long number;
            using (var next = WriteCommand(transaction, """
                UPDATE registered_models SET last_version = last_version + 1, last_updated_time = @now
                WHERE name = @name RETURNING last_version
                """))
            {
                next.Parameters.AddWithValue("@now", now);
                next.Parameters.AddWithValue("@name", version.Name);
                number = next.ExecuteScalar() is long n ? n : throw ModelNotFound(version.Name);
            }

            using (var insert = WriteCommand(transaction, """
                INSERT INTO model_versions (name, version, creation_time, last_updated_time, description, user_id, current_stage,
                    source, run_id, run_link, status, status_message, signature_inputs, signature_outputs)
                VALUES (@name, @version, @now, @now, @description, @user, 'None', @source, @run, @link, 'READY', NULL, @inputs, @outputs)
                """))
            {
                insert.Parameters.AddWithValue("@name", version.Name);
                insert.Parameters.AddWithValue("@version", number);
                insert.Parameters.AddWithValue("@now", now);
                insert.Parameters.AddWithValue("@description", (object?)version.Description ?? DBNull.Value);
                insert.Parameters.AddWithValue("@user", (object?)version.UserId ?? DBNull.Value);
                insert.Parameters.AddWithValue("@source", version.Source);
                insert.Parameters.AddWithValue("@run", (object?)version.RunId ?? DBNull.Value);
                insert.Parameters.AddWithValue("@link", (object?)version.RunLink ?? DBNull.Value);
                insert.Parameters.AddWithValue("@inputs", (object?)version.Signature?.Inputs ?? DBNull.Value);
                insert.Parameters.AddWithValue("@outputs", (object?)version.Signature?.Outputs ?? DBNull.Value);
                insert.ExecuteNonQuery();
            }

            foreach (var tag in version.Tags ?? [])
            {
                UpsertVersionTag(transaction, version.Name, number, tag);
            }

            return GetVersion(_writer, version.Name, number, transaction);
        }, cancellationToken);
    }

    public Task<ModelVersion> GetModelVersionAsync(string name, long version, CancellationToken cancellationToken = default) =>
        ReadAsync(connection => GetVersion(connection, name, version, null), cancellationToken);

    public Task<ModelVersion> UpdateModelVersionAsync(string name, long version, string? description, CancellationToken cancellationToken = default) =>
        WriteAsync(transaction =>
        {
            using (var update = WriteCommand(transaction, "UPDATE model_versions SET description = @description, last_updated_time = @now WHERE name = @name AND version = @version"))
            {
                update.Parameters.AddWithValue("@description", (object?)description ?? DBNull.Value);
                update.Parameters.AddWithValue("@now", Now());
                update.Parameters.AddWithValue("@name", name);
                update.Parameters.AddWithValue("@version", version);
                if (update.ExecuteNonQuery() == 0)
                {
                    throw VersionNotFound(name, version);
                }
            }

            return GetVersion(_writer, name, version, transaction);
        }, cancellationToken);

    /// <summary>Deletes the version with its tags and the aliases pointing at it; its number is never reused.</summary>
    public Task DeleteModelVersionAsync(string name, long version, CancellationToken cancellationToken = default) =>
        WriteAsync(transaction =>
        {
            using (var delete = WriteCommand(transaction, "DELETE FROM model_versions WHERE name = @name AND version = @version"))
            {
                delete.Parameters.AddWithValue("@name", name);
                delete.Parameters.AddWithValue("@version", version);
                if (delete.ExecuteNonQuery() == 0)
                {
                    throw VersionNotFound(name, version);
                }
            }

            using var touch = WriteCommand(transaction, "UPDATE registered_models SET last_updated_time = @now WHERE name = @name");
            touch.Parameters.AddWithValue("@now", Now());
            touch.Parameters.AddWithValue("@name", name);
            touch.ExecuteNonQuery();
        }, cancellationToken);

    public Task<Page<ModelVersion>> SearchModelVersionsAsync(RegistrySearch search, CancellationToken cancellationToken = default) =>
        ReadAsync(connection =>
        {
            ArgumentNullException.ThrowIfNull(search);
            PageToken.CheckMaxResults(search.MaxResults);
            var offset = PageToken.Decode(search.PageToken);
            var filter = new SqlFilter();
            foreach (var comparison in SearchFilterParser.Parse(search.Filter))
            {
                var display = SqlFilter.DisplayName(comparison.Kind, comparison.Key);
                filter.Add(comparison.Kind switch
                {
                    EntityKind.Tag =>
                        $"EXISTS (SELECT 1 FROM model_version_tags t WHERE t.name = v.name AND t.version = v.version AND t.key = {filter.Param(comparison.Key)} AND {filter.StringPredicate("t.value", comparison, display)})",
                    EntityKind.Attribute => comparison.Key.ToLowerInvariant() switch
                    {
                        "name" => filter.StringPredicate("v.name", comparison, display),
                        "run_id" => comparison.Operator is ComparisonOperator.Equal or ComparisonOperator.NotEqual or ComparisonOperator.In or ComparisonOperator.NotIn
                            ? filter.StringPredicate("v.run_id", comparison, display)
                            : throw CapstanException.Invalid($"Invalid comparator '{SqlFilter.OperatorText(comparison.Operator)}' for 'run_id'. Only =, !=, IN and NOT IN are supported."),
                        "source_path" or "source" => filter.StringPredicate("v.source", comparison, display),
                        "version_number" or "version" => filter.NumericPredicate("v.version", comparison, display, integral: true),
                        _ => throw CapstanException.Invalid($"Invalid model version search key '{display}': use name, run_id, source_path, version_number or tags.<key>."),
                    },
                    _ => throw CapstanException.Invalid($"Invalid model version search key '{display}': use name, run_id, source_path, version_number or tags.<key>."),
                });
            }

            var orderBy = SearchFilterParser.ParseOrderBy(search.OrderBy).Select(clause =>
                $"{VersionOrderColumn(clause)} {(clause.Ascending ? "ASC" : "DESC")}").ToList();
            if (orderBy.Count == 0)
            {
                orderBy.Add("v.version DESC");
            }

            orderBy.Add("v.name ASC");
            orderBy.Add("v.version DESC");
            var sql = $"SELECT {VersionColumns} FROM model_versions v WHERE {filter.Where} ORDER BY {string.Join(", ", orderBy)} LIMIT {filter.Param((long)search.MaxResults + 1)} OFFSET {filter.Param(offset)}";
            var versions = LoadVersions(connection, null, sql, filter.BindTo);
            var next = PageToken.Next(offset, search.MaxResults, versions.Count);
            return new Page<ModelVersion>(versions.Take(search.MaxResults).ToList(), next);
        }, cancellationToken);

    public Task<IReadOnlyList<ModelVersion>> GetLatestVersionsAsync(string name, IReadOnlyList<string>? stages = null, CancellationToken cancellationToken = default) =>
        ReadAsync(connection =>
        {
            var wanted = (stages ?? []).Select(CanonicalStage).ToHashSet(StringComparer.Ordinal);
            var model = GetModel(connection, name, null);
            IReadOnlyList<ModelVersion> latest = wanted.Count == 0
                ? model.LatestVersions
                : model.LatestVersions.Where(v => wanted.Contains(v.CurrentStage)).ToList();
            return latest;
        }, cancellationToken);

    public Task SetModelVersionTagAsync(string name, long version, string key, string value, CancellationToken cancellationToken = default)
    {
        var tag = new Tag(key, value);
        TrackingValidation.Tag(tag);
        return WriteAsync(transaction =>
        {
            RequireVersion(transaction, name, version);
            UpsertVersionTag(transaction, name, version, tag);
        }, cancellationToken);
    }

    public Task DeleteModelVersionTagAsync(string name, long version, string key, CancellationToken cancellationToken = default) =>
        WriteAsync(transaction =>
        {
            RequireVersion(transaction, name, version);
            using var delete = WriteCommand(transaction, "DELETE FROM model_version_tags WHERE name = @name AND version = @version AND key = @key");
            delete.Parameters.AddWithValue("@name", name);
            delete.Parameters.AddWithValue("@version", version);
            delete.Parameters.AddWithValue("@key", key);
            delete.ExecuteNonQuery();
        }, cancellationToken);

    /// <summary>Points the alias at the version, moving it if it pointed elsewhere.</summary>
    public Task SetAliasAsync(string name, string alias, long version, CancellationToken cancellationToken = default)
    {
        TrackingValidation.AliasName(alias);
        return WriteAsync(transaction =>
        {
            RequireVersion(transaction, name, version);
            using var upsert = WriteCommand(transaction, """
                INSERT INTO registered_model_aliases (name, alias, version) VALUES (@name, @alias, @version)
                ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version
                """);
            upsert.Parameters.AddWithValue("@name", name);
            upsert.Parameters.AddWithValue("@alias", alias);
            upsert.Parameters.AddWithValue("@version", version);
            upsert.ExecuteNonQuery();
        }, cancellationToken);
    }

    public Task DeleteAliasAsync(string name, string alias, CancellationToken cancellationToken = default) =>
        WriteAsync(transaction =>
        {
            RequireModel(transaction, name);
            using var delete = WriteCommand(transaction, "DELETE FROM registered_model_aliases WHERE name = @name AND alias = @alias");
            delete.Parameters.AddWithValue("@name", name);
            delete.Parameters.AddWithValue("@alias", alias);
            if (delete.ExecuteNonQuery() == 0)
            {
                throw AliasNotFound(name, alias);
            }
        }, cancellationToken);

    public Task<ModelVersion> GetModelVersionByAliasAsync(string name, string alias, CancellationToken cancellationToken = default) =>
        ReadAsync(connection =>
        {
            using var command = Command(connection, "SELECT version FROM registered_model_aliases WHERE name = @name AND alias = @alias");
            command.Parameters.AddWithValue("@name", name);
            command.Parameters.AddWithValue("@alias", alias);
            var version = command.ExecuteScalar() as long? ?? throw AliasNotFound(name, alias);
            return GetVersion(connection, name, version, null);
        }, cancellationToken);

    private RegisteredModel GetModel(SqliteConnection connection, string name, SqliteTransaction? transaction) =>
        LoadModels(connection, transaction, $"SELECT {ModelColumns} FROM registered_models m WHERE m.name = @p0", c => c.Parameters.AddWithValue("@p0", name))
            .SingleOrDefault() ?? throw ModelNotFound(name);

    private ModelVersion GetVersion(SqliteConnection connection, string name, long version, SqliteTransaction? transaction) =>
        LoadVersions(connection, transaction, $"SELECT {VersionColumns} FROM model_versions v WHERE v.name = @p0 AND v.version = @p1", c =>
        {
            c.Parameters.AddWithValue("@p0", name);
            c.Parameters.AddWithValue("@p1", version);
        }).SingleOrDefault() ?? throw VersionNotFound(name, version);

    /// <summary>Models with their tags, aliases and newest version per stage, one query per table.</summary>
    private static List<RegisteredModel> LoadModels(SqliteConnection connection, SqliteTransaction? transaction, string sql, Action<SqliteCommand> bind)
    {
        var models = new List<RegisteredModel>();
        using (var command = Command(connection, sql, transaction))
        {
            bind(command);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                models.Add(new RegisteredModel(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2),
                    reader.IsDBNull(3) ? null : reader.GetString(3), [], [], []));
            }
        }

        if (models.Count == 0)
        {
            return models;
        }

        var result = new List<RegisteredModel>(models.Count);
        foreach (var chunk in models.Chunk(MaxInListSize))
        {
            var names = chunk.Select(m => m.Name).ToArray();
            var inList = InList(names.Length);
            var tags = new List<(string Name, Tag Tag)>();
            ReadRows(connection, transaction, $"SELECT name, key, value FROM registered_model_tags WHERE name IN ({inList}) ORDER BY name, key", names,
                reader => tags.Add((reader.GetString(0), new Tag(reader.GetString(1), reader.GetString(2)))));
            var aliases = new List<(string Name, ModelAlias Alias)>();
            ReadRows(connection, transaction, $"SELECT name, alias, version FROM registered_model_aliases WHERE name IN ({inList}) ORDER BY name, alias", names,
                reader => aliases.Add((reader.GetString(0), new ModelAlias(reader.GetString(1), reader.GetInt64(2)))));
            var latest = LoadVersions(connection, transaction, $"""
                SELECT {VersionColumns} FROM model_versions v
                WHERE v.name IN ({inList})
                  AND v.version = (SELECT MAX(v2.version) FROM model_versions v2 WHERE v2.name = v.name AND v2.current_stage = v.current_stage)
                """, c => BindInList(c, names));
            result.AddRange(chunk.Select(model => model with
            {
                Tags = tags.Where(t => t.Name == model.Name).Select(t => t.Tag).ToList(),
                Aliases = aliases.Where(a => a.Name == model.Name).Select(a => a.Alias).ToList(),
                LatestVersions = latest.Where(v => v.Name == model.Name).OrderBy(v => Array.IndexOf(s_stages, v.CurrentStage)).ThenBy(v => v.Version).ToList(),
            }));
        }

        return result;
    }

    /// <summary>Versions with their tags and aliases (looked up per model name, one query per table).</summary>
    private static List<ModelVersion> LoadVersions(SqliteConnection connection, SqliteTransaction? transaction, string sql, Action<SqliteCommand> bind)
    {
        var versions = new List<ModelVersion>();
        using (var command = Command(connection, sql, transaction))
        {
            bind(command);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var inputs = reader.IsDBNull(12) ? null : reader.GetString(12);
                var outputs = reader.IsDBNull(13) ? null : reader.GetString(13);
                versions.Add(new ModelVersion(
                    reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3),
                    reader.IsDBNull(4) ? null : reader.GetString(4),
                    reader.IsDBNull(5) ? null : reader.GetString(5),
                    reader.GetString(6), reader.GetString(7),
                    reader.IsDBNull(8) ? null : reader.GetString(8),
                    reader.IsDBNull(9) ? null : reader.GetString(9),
                    ParseVersionStatus(reader.GetString(10)),
                    reader.IsDBNull(11) ? null : reader.GetString(11),
                    [], [],
                    inputs is null && outputs is null ? null : new ModelSignature(inputs, outputs)));
            }
        }

        if (versions.Count == 0)
        {
            return versions;
        }

        var tags = new List<(string Name, long Version, Tag Tag)>();
        var aliases = new List<(string Name, long Version, string Alias)>();
        foreach (var names in versions.Select(v => v.Name).Distinct(StringComparer.Ordinal).Chunk(MaxInListSize))
        {
            var inList = InList(names.Length);
            ReadRows(connection, transaction, $"SELECT name, version, key, value FROM model_version_tags WHERE name IN ({inList}) ORDER BY name, version, key", names,
                reader => tags.Add((reader.GetString(0), reader.GetInt64(1), new Tag(reader.GetString(2), reader.GetString(3)))));
            ReadRows(connection, transaction, $"SELECT name, version, alias FROM registered_model_aliases WHERE name IN ({inList}) ORDER BY name, alias", names,
                reader => aliases.Add((reader.GetString(0), reader.GetInt64(1), reader.GetString(2))));
        }

        return versions.Select(v => v with
        {
            Tags = tags.Where(t => t.Name == v.Name && t.Version == v.Version).Select(t => t.Tag).ToList(),
            Aliases = aliases.Where(a => a.Name == v.Name && a.Version == v.Version).Select(a => a.Alias).ToList(),
        }).ToList();
    }

    private static void ReadRows(SqliteConnection connection, SqliteTransaction? transaction, string sql, string[] names, Action<SqliteDataReader> row)
    {
        using var command = Command(connection, sql, transaction);
        BindInList(command, names);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            row(reader);
        }
    }

    private bool ModelExists(SqliteTransaction transaction, string name)
    {
        using var command = WriteCommand(transaction, "SELECT 1 FROM registered_models WHERE name = @name");
        command.Parameters.AddWithValue("@name", name);
        return command.ExecuteScalar() is not null;
    }

    private void RequireModel(SqliteTransaction transaction, string name)
    {
        if (!ModelExists(transaction, name))
        {
            throw ModelNotFound(name);
        }
    }

    private void RequireVersion(SqliteTransaction transaction, string name, long version)
    {
        using var command = WriteCommand(transaction, "SELECT 1 FROM model_versions WHERE name = @name AND version = @version");
        command.Parameters.AddWithValue("@name", name);
        command.Parameters.AddWithValue("@version", version);
        if (command.ExecuteScalar() is null)
        {
            RequireModel(transaction, name);
            throw VersionNotFound(name, version);
        }
    }

    private void UpsertModelTag(SqliteTransaction transaction, string name, Tag tag)
    {
        using var command = WriteCommand(transaction, """
            INSERT INTO registered_model_tags (name, key, value) VALUES (@name, @key, @value)
            ON CONFLICT (name, key) DO UPDATE SET value = excluded.value
            """);
        command.Parameters.AddWithValue("@name", name);
        command.Parameters.AddWithValue("@key", tag.Key);
        command.Parameters.AddWithValue("@value", tag.Value);
        command.ExecuteNonQuery();
    }

    private void UpsertVersionTag(SqliteTransaction transaction, string name, long version, Tag tag)
    {
        using var command = WriteCommand(transaction, """
            INSERT INTO model_version_tags (name, version, key, value) VALUES (@name, @version, @key, @value)
            ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value
            """);
        command.Parameters.AddWithValue("@name", name);
        command.Parameters.AddWithValue("@version", version);
        command.Parameters.AddWithValue("@key", tag.Key);
        command.Parameters.AddWithValue("@value", tag.Value);
        command.ExecuteNonQuery();
    }

    private static string CanonicalStage(string stage) =>
        s_stages.FirstOrDefault(s => s.Equals(stage, StringComparison.OrdinalIgnoreCase))
        ?? throw CapstanException.Invalid($"Invalid Model Version stage: {stage}. Value must be one of {string.Join(", ", s_stages)}.");

    private static string ModelOrderColumn(OrderClause clause) => clause.Kind == EntityKind.Attribute
        ? clause.Key.ToLowerInvariant() switch
        {
            "name" => "m.name",
            "last_updated_timestamp" or "timestamp" => "m.last_updated_time",
            "creation_timestamp" => "m.creation_time",
            _ => throw CapstanException.Invalid($"Invalid order_by key '{clause.Key}' for registered models: use name, creation_timestamp or last_updated_timestamp."),
        }
        : throw CapstanException.Invalid($"Invalid order_by clause for registered models: '{SqlFilter.DisplayName(clause.Kind, clause.Key)}'.");

    private static string VersionOrderColumn(OrderClause clause) => clause.Kind == EntityKind.Attribute
        ? clause.Key.ToLowerInvariant() switch
        {
            "name" => "v.name",
            "version_number" or "version" => "v.version",
            "creation_timestamp" => "v.creation_time",
            "last_updated_timestamp" or "timestamp" => "v.last_updated_time",
            _ => throw CapstanException.Invalid($"Invalid order_by key '{clause.Key}' for model versions: use name, version_number, creation_timestamp or last_updated_timestamp."),
        }
        : throw CapstanException.Invalid($"Invalid order_by clause for model versions: '{SqlFilter.DisplayName(clause.Kind, clause.Key)}'.");

    private static ModelVersionStatus ParseVersionStatus(string text) => text switch
    {
        "PENDING_REGISTRATION" => ModelVersionStatus.PendingRegistration,
        "FAILED_REGISTRATION" => ModelVersionStatus.FailedRegistration,
        _ => ModelVersionStatus.Ready,
    };

    private static CapstanException ModelNotFound(string name) => CapstanException.NotFound($"Registered Model with name={name} not found");

    private static CapstanException VersionNotFound(string name, long version) =>
        CapstanException.NotFound($"Model Version (name={name}, version={version}) not found");

    private static CapstanException AliasNotFound(string name, string alias) =>
        CapstanException.NotFound($"Registered model alias {alias} not found for model {name}.");
}
