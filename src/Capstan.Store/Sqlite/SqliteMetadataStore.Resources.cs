using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Microsoft.Data.Sqlite;

namespace Capstan.Store.Sqlite;

/// <summary>
/// The control plane's objects, in the same file and through the same single writer as tracking.
/// Every write takes the next <c>resource_version</c> and appends to <c>resource_changes</c>, which is
/// what watches read: a committed write only wakes them, so a slow watcher never loses a change and a
/// restarted process resumes from the file.
/// </summary>
public sealed partial class SqliteMetadataStore : IResourceStore
{
    private const int WatchPageSize = 500;

    private readonly ConcurrentDictionary<Channel<bool>, byte> _watches = new();

    public async Task<Resource> CreateAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        var incoming = Normalize(resource);
        var result = await WriteAsync(transaction => InsertResource(transaction, incoming), cancellationToken).ConfigureAwait(false);
        WakeWatches();
        return result;
    }

    public Task<Resource> GetAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default) =>
        ReadAsync(connection =>
        {
            using var command = Command(connection, "SELECT body FROM resources WHERE kind = @kind AND namespace = @namespace AND name = @name");
            BindKey(command, kind, @namespace, name);
            return command.ExecuteScalar() is string body ? ResourceSerializer.FromJson(body) : throw NotFound(kind, name);
        }, cancellationToken);

    public Task<IReadOnlyList<Resource>> ListAsync(string kind, string? @namespace = null, IReadOnlyDictionary<string, string>? labelSelector = null, CancellationToken cancellationToken = default) =>
        ReadAsync<IReadOnlyList<Resource>>(connection =>
        {
            ArgumentNullException.ThrowIfNull(kind);
            using var command = Command(connection, @namespace is null
                ? "SELECT body FROM resources WHERE kind = @kind ORDER BY namespace, name"
                : "SELECT body FROM resources WHERE kind = @kind AND namespace = @namespace ORDER BY name");
            command.Parameters.AddWithValue("@kind", kind);
            if (@namespace is not null)
            {
                command.Parameters.AddWithValue("@namespace", @namespace);
            }

            var items = new List<Resource>();
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var item = ResourceSerializer.FromJson(reader.GetString(0));
                if (Matches(item, labelSelector))
                {
                    items.Add(item);
                }
            }

            return items;
        }, cancellationToken);

    /// <summary>Counted in SQLite from each body's <c>status.phase</c>: no object is read out or deserialized.</summary>
    public Task<IReadOnlyDictionary<string, int>> CountByPhaseAsync(string kind, CancellationToken cancellationToken = default) =>
        ReadAsync<IReadOnlyDictionary<string, int>>(connection =>
        {
            ArgumentNullException.ThrowIfNull(kind);
            using var command = Command(connection, """
                SELECT COALESCE(json_extract(body, '$.status.phase'), @pending), COUNT(*) FROM resources WHERE kind = @kind
                GROUP BY 1
                """);
            command.Parameters.AddWithValue("@kind", kind);
            command.Parameters.AddWithValue("@pending", ResourcePhases.Pending);
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                counts[reader.GetString(0)] = reader.GetInt32(1);
            }

            return counts;
        }, cancellationToken);

    public async Task<Resource> UpdateAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        var incoming = Normalize(resource);
        var result = await WriteAsync(transaction =>
        {
            var existing = LoadForWrite(transaction, incoming) ?? throw NotFound(incoming.Kind, incoming.Metadata.Name!);
            CheckVersion(incoming, existing.Node);
            return ReplaceSpec(transaction, incoming, existing);
        }, cancellationToken).ConfigureAwait(false);
        WakeWatches();
        return result;
    }

    public async Task<Resource> UpdateStatusAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        var incoming = Normalize(resource);
        var result = await WriteAsync(transaction =>
        {
            var existing = LoadForWrite(transaction, incoming) ?? throw NotFound(incoming.Kind, incoming.Metadata.Name!);
            CheckVersion(incoming, existing.Node);
            var next = existing.Node.DeepClone().AsObject();
            SetOrRemove(next, "status", ResourceSerializer.ToJsonNode(incoming)["status"]);
            return JsonNode.DeepEquals(next, existing.Node)
                ? existing.Resource
                : WriteNewVersion(transaction, next, existing.Generation, WatchEventType.Modified);
        }, cancellationToken).ConfigureAwait(false);
        WakeWatches();
        return result;
    }

    public async Task<ApplyResult> ApplyAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        var incoming = Normalize(resource);
        incoming.Metadata.ResourceVersion = null;
        var result = await WriteAsync(transaction =>
        {
            if (LoadForWrite(transaction, incoming) is not { } existing)
            {
                return new ApplyResult(InsertResource(transaction, incoming), ApplyOutcome.Created);
            }

            var updated = ReplaceSpec(transaction, incoming, existing);
            return new ApplyResult(updated, updated.Metadata.ResourceVersion == existing.Resource.Metadata.ResourceVersion ? ApplyOutcome.Unchanged : ApplyOutcome.Configured);
        }, cancellationToken).ConfigureAwait(false);
        WakeWatches();
        return result;
    }

    public async Task<Resource> DeleteAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default)
    {
        var result = await WriteAsync(transaction =>
        {
            string body;
            using (var select = WriteCommand(transaction, "SELECT body FROM resources WHERE kind = @kind AND namespace = @namespace AND name = @name"))
            {
                BindKey(select, kind, @namespace, name);
                body = select.ExecuteScalar() as string ?? throw NotFound(kind, name);
            }

            var deleted = ResourceSerializer.FromJson(body);
            deleted.Metadata.ResourceVersion = ResourceVersions.Format(NextValue(transaction, "resource_version"));
            foreach (var sql in new[] { "DELETE FROM resources", "DELETE FROM resource_events" })
            {
                using var delete = WriteCommand(transaction, sql + " WHERE kind = @kind AND namespace = @namespace AND name = @name");
                BindKey(delete, kind, @namespace, name);
                delete.ExecuteNonQuery();
            }

            AppendChange(transaction, WatchEventType.Deleted, deleted, ResourceSerializer.ToJson(deleted));
            return deleted;
        }, cancellationToken).ConfigureAwait(false);
        WakeWatches();
        return result;
    }

    public async IAsyncEnumerable<WatchEvent> WatchAsync(string? kind = null, string? @namespace = null, long? fromResourceVersion = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);

        // Registered before the first read, so a change committed after that read always wakes this loop.
        var wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        _watches.TryAdd(wake, 0);
        try
        {
            long last;
            if (fromResourceVersion is { } from)
            {
                last = from;
            }
            else
            {
                var (existing, version) = await ReadAsync(connection => ReadSnapshot(connection, kind, @namespace), cancellationToken).ConfigureAwait(false);
                foreach (var resource in existing)
                {
                    yield return new WatchEvent(WatchEventType.Added, resource);
                }

                last = version;
            }

            while (_disposed == 0)
            {
                var after = last;
                var changes = await ReadAsync(connection => ReadChanges(connection, kind, @namespace, after), cancellationToken).ConfigureAwait(false);
                foreach (var change in changes)
                {
                    last = change.ResourceVersion;
                    yield return change;
                }

                if (changes.Count == WatchPageSize)
                {
                    continue;
                }

                if (!await wake.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    yield break;
                }

                wake.Reader.TryRead(out _);
            }
        }
        finally
        {
            _watches.TryRemove(wake, out _);
        }
    }

    public Task<ResourceEvent> RecordEventAsync(Resource involved, ResourceEventType type, string reason, string message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(involved);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        ArgumentNullException.ThrowIfNull(message);
        var kind = involved.Kind;
        var ns = involved.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;
        var name = involved.Metadata.Name ?? throw CapstanException.Invalid("The event's object has no metadata.name.");
        var uid = involved.Metadata.Uid;
        return WriteAsync(transaction =>
        {
            var id = NextValue(transaction, "event");
            var now = Now();
            using var upsert = WriteCommand(transaction, """
                INSERT INTO resource_events (event_id, kind, namespace, name, uid, event_type, reason, message, count, first_time, last_time)
                VALUES (@id, @kind, @namespace, @name, @uid, @type, @reason, @message, 1, @now, @now)
                ON CONFLICT (kind, namespace, name, event_type, reason, message) DO UPDATE SET
                    count = resource_events.count + 1, last_time = excluded.last_time, uid = excluded.uid
                RETURNING count, first_time, last_time
                """);
            upsert.Parameters.AddWithValue("@id", id);
            BindKey(upsert, kind, ns, name);
            upsert.Parameters.AddWithValue("@uid", (object?)uid ?? DBNull.Value);
            upsert.Parameters.AddWithValue("@type", type.ToString());
            upsert.Parameters.AddWithValue("@reason", reason);
            upsert.Parameters.AddWithValue("@message", message);
            upsert.Parameters.AddWithValue("@now", now);
            using var reader = upsert.ExecuteReader();
            reader.Read();
            return new ResourceEvent(kind, ns, name, uid, type, reason, message, reader.GetInt32(0),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)));
        }, cancellationToken);
    }

    public Task<IReadOnlyList<ResourceEvent>> ListEventsAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default) =>
        ReadAsync<IReadOnlyList<ResourceEvent>>(connection =>
        {
            using var command = Command(connection, """
                SELECT uid, event_type, reason, message, count, first_time, last_time FROM resource_events
                WHERE kind = @kind AND namespace = @namespace AND name = @name
                ORDER BY first_time, event_id
                """);
            BindKey(command, kind, @namespace, name);
            var events = new List<ResourceEvent>();
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                events.Add(new ResourceEvent(
                    kind, @namespace, name,
                    reader.IsDBNull(0) ? null : reader.GetString(0),
                    Enum.Parse<ResourceEventType>(reader.GetString(1)),
                    reader.GetString(2),
                    reader.GetString(3),
                    reader.GetInt32(4),
                    DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5)),
                    DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6))));
            }

            return events;
        }, cancellationToken);

    private void WakeWatches()
    {
        foreach (var wake in _watches.Keys)
        {
            wake.Writer.TryWrite(true);
        }
    }

    private void EndWatches()
    {
        foreach (var wake in _watches.Keys)
        {
            wake.Writer.TryComplete();
        }
    }

    /// <summary>A private, defaulted copy of what the caller passed, so nothing the caller holds is changed.</summary>
    private static Resource Normalize(Resource resource)
    {
        ArgumentNullException.ThrowIfNull(resource);
        if (ResourceKinds.TypeOf(resource.Kind) is null)
        {
            throw CapstanException.Invalid($"unknown or unsupported kind '{resource.Kind}'");
        }

        var copy = ResourceSerializer.FromJson(ResourceSerializer.ToJson(resource));
        copy.ApplyDefaults();
        var name = copy.Metadata.Name;
        if (string.IsNullOrEmpty(name))
        {
            throw CapstanException.Invalid("metadata.name: missing required field 'name'");
        }

        if (ResourceNames.Check(name) is { } problem)
        {
            throw CapstanException.Invalid($"metadata.name: {problem}");
        }

        if (ResourceNames.Check(copy.Metadata.Namespace!) is { } nsProblem)
        {
            throw CapstanException.Invalid($"metadata.namespace: {nsProblem}");
        }

        return copy;
    }

    private sealed record StoredResource(Resource Resource, JsonObject Node, long Generation);

    private StoredResource? LoadForWrite(SqliteTransaction transaction, Resource key)
    {
        using var select = WriteCommand(transaction, "SELECT body, generation FROM resources WHERE kind = @kind AND namespace = @namespace AND name = @name");
        BindKey(select, key.Kind, key.Metadata.Namespace!, key.Metadata.Name!);
        using var reader = select.ExecuteReader();
        if (!reader.Read())
        {
            return null;
        }

        var body = reader.GetString(0);
        return new StoredResource(ResourceSerializer.FromJson(body), JsonNode.Parse(body)!.AsObject(), reader.GetInt64(1));
    }

    private Resource InsertResource(SqliteTransaction transaction, Resource resource)
    {
        var incoming = resource;
        using (var exists = WriteCommand(transaction, "SELECT 1 FROM resources WHERE kind = @kind AND namespace = @namespace AND name = @name"))
        {
            BindKey(exists, incoming.Kind, incoming.Metadata.Namespace!, incoming.Metadata.Name!);
            if (exists.ExecuteScalar() is not null)
            {
                throw CapstanException.AlreadyExists($"{KindNames.Plural(incoming.Kind)} \"{incoming.Metadata.Name}\" already exists in namespace \"{incoming.Metadata.Namespace}\"");
            }
        }

        // As with Kubernetes' status subresource, a new object starts without status: only controllers write it.
        incoming = WithoutStatus(incoming);
        var version = NextValue(transaction, "resource_version");
        var metadata = incoming.Metadata;
        metadata.Uid = Guid.NewGuid().ToString();
        metadata.Generation = 1;
        metadata.ResourceVersion = ResourceVersions.Format(version);
        metadata.CreationTimestamp = DateTimeOffset.FromUnixTimeMilliseconds(Now());
        var body = ResourceSerializer.ToJson(incoming);
        using (var insert = WriteCommand(transaction, """
            INSERT INTO resources (kind, namespace, name, uid, generation, resource_version, creation_time, body)
            VALUES (@kind, @namespace, @name, @uid, 1, @version, @created, @body)
            """))
        {
            BindKey(insert, incoming.Kind, metadata.Namespace!, metadata.Name!);
            insert.Parameters.AddWithValue("@uid", metadata.Uid);
            insert.Parameters.AddWithValue("@version", version);
            insert.Parameters.AddWithValue("@created", metadata.CreationTimestamp.Value.ToUnixTimeMilliseconds());
            insert.Parameters.AddWithValue("@body", body);
            insert.ExecuteNonQuery();
        }

        AppendChange(transaction, WatchEventType.Added, incoming, body);
        return incoming;
    }

    /// <summary>Spec, labels and annotations from <paramref name="incoming"/>; identity and status from what is stored.</summary>
    private Resource ReplaceSpec(SqliteTransaction transaction, Resource incoming, StoredResource existing)
    {
        var next = ResourceSerializer.ToJsonNode(incoming);
        SetOrRemove(next, "status", existing.Node["status"]);
        var metadata = next["metadata"]!.AsObject();
        var stored = existing.Node["metadata"]!.AsObject();
        foreach (var field in new[] { "uid", "creationTimestamp", "generation", "resourceVersion" })
        {
            SetOrRemove(metadata, field, stored[field]);
        }

        if (JsonNode.DeepEquals(next, existing.Node))
        {
            return existing.Resource;
        }

        var specChanged = !JsonNode.DeepEquals(next["spec"], existing.Node["spec"]);
        return WriteNewVersion(transaction, next, existing.Generation + (specChanged ? 1 : 0), WatchEventType.Modified);
    }

    private Resource WriteNewVersion(SqliteTransaction transaction, JsonObject node, long generation, WatchEventType type)
    {
        var resource = (Resource)System.Text.Json.JsonSerializer.Deserialize(node, ResourceKinds.TypeOf(node["kind"]!.GetValue<string>())!, ResourceSerializer.JsonOptions)!;
        var version = NextValue(transaction, "resource_version");
        resource.Metadata.Generation = generation;
        resource.Metadata.ResourceVersion = ResourceVersions.Format(version);
        var body = ResourceSerializer.ToJson(resource);
        using (var update = WriteCommand(transaction, """
            UPDATE resources SET generation = @generation, resource_version = @version, body = @body
            WHERE kind = @kind AND namespace = @namespace AND name = @name
            """))
        {
            BindKey(update, resource.Kind, resource.Metadata.Namespace!, resource.Metadata.Name!);
            update.Parameters.AddWithValue("@generation", generation);
            update.Parameters.AddWithValue("@version", version);
            update.Parameters.AddWithValue("@body", body);
            update.ExecuteNonQuery();
        }

        AppendChange(transaction, type, resource, body);
        return resource;
    }

    private void AppendChange(SqliteTransaction transaction, WatchEventType type, Resource resource, string body)
    {
        using var insert = WriteCommand(transaction, """
            INSERT INTO resource_changes (resource_version, change_type, kind, namespace, name, body)
            VALUES (@version, @type, @kind, @namespace, @name, @body)
            """);
        insert.Parameters.AddWithValue("@version", ResourceVersions.Parse(resource.Metadata.ResourceVersion));
        insert.Parameters.AddWithValue("@type", type.ToString());
        BindKey(insert, resource.Kind, resource.Metadata.Namespace!, resource.Metadata.Name!);
        insert.Parameters.AddWithValue("@body", body);
        insert.ExecuteNonQuery();
    }

    private long NextValue(SqliteTransaction transaction, string sequence)
    {
        using var next = WriteCommand(transaction, "UPDATE resource_sequences SET value = value + 1 WHERE name = @name RETURNING value");
        next.Parameters.AddWithValue("@name", sequence);
        return Convert.ToInt64(next.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The current objects and the revision they are consistent with, read in one snapshot.</summary>
    private static (List<Resource> Items, long Version) ReadSnapshot(SqliteConnection connection, string? kind, string? @namespace)
    {
        using var transaction = connection.BeginTransaction(deferred: true);
        long version;
        using (var sequence = Command(connection, "SELECT value FROM resource_sequences WHERE name = 'resource_version'", transaction))
        {
            version = Convert.ToInt64(sequence.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }

        var items = new List<Resource>();
        using (var select = Command(connection, """
            SELECT body FROM resources
            WHERE (@kind IS NULL OR kind = @kind) AND (@namespace IS NULL OR namespace = @namespace)
            ORDER BY resource_version
            """, transaction))
        {
            select.Parameters.AddWithValue("@kind", (object?)kind ?? DBNull.Value);
            select.Parameters.AddWithValue("@namespace", (object?)@namespace ?? DBNull.Value);
            using var reader = select.ExecuteReader();
            while (reader.Read())
            {
                items.Add(ResourceSerializer.FromJson(reader.GetString(0)));
            }
        }

        transaction.Commit();
        return (items, version);
    }

    private static List<WatchEvent> ReadChanges(SqliteConnection connection, string? kind, string? @namespace, long after)
    {
        using var select = Command(connection, $"""
            SELECT change_type, body FROM resource_changes
            WHERE resource_version > @after AND (@kind IS NULL OR kind = @kind) AND (@namespace IS NULL OR namespace = @namespace)
            ORDER BY resource_version
            LIMIT {WatchPageSize}
            """);
        select.Parameters.AddWithValue("@after", after);
        select.Parameters.AddWithValue("@kind", (object?)kind ?? DBNull.Value);
        select.Parameters.AddWithValue("@namespace", (object?)@namespace ?? DBNull.Value);
        var changes = new List<WatchEvent>();
        using var reader = select.ExecuteReader();
        while (reader.Read())
        {
            changes.Add(new WatchEvent(Enum.Parse<WatchEventType>(reader.GetString(0)), ResourceSerializer.FromJson(reader.GetString(1))));
        }

        return changes;
    }

    private static void CheckVersion(Resource incoming, JsonObject stored)
    {
        var expected = incoming.Metadata.ResourceVersion;
        if (!string.IsNullOrEmpty(expected) && expected != stored["metadata"]?["resourceVersion"]?.GetValue<string>())
        {
            throw CapstanException.Conflict($"{KindNames.Plural(incoming.Kind)} \"{incoming.Metadata.Name}\"");
        }
    }

    private static Resource WithoutStatus(Resource resource)
    {
        if (resource.CommonStatus is null)
        {
            return resource;
        }

        var node = ResourceSerializer.ToJsonNode(resource);
        node.Remove("status");
        return (Resource)System.Text.Json.JsonSerializer.Deserialize(node, resource.GetType(), ResourceSerializer.JsonOptions)!;
    }

    private static bool Matches(Resource resource, IReadOnlyDictionary<string, string>? selector) =>
        selector is null || selector.All(s => resource.Metadata.Labels is { } labels && labels.TryGetValue(s.Key, out var value) && value == s.Value);

    private static void SetOrRemove(JsonObject target, string field, JsonNode? value)
    {
        if (value is null)
        {
            target.Remove(field);
        }
        else
        {
            target[field] = value.DeepClone();
        }
    }

    private static void BindKey(SqliteCommand command, string kind, string @namespace, string name)
    {
        command.Parameters.AddWithValue("@kind", kind);
        command.Parameters.AddWithValue("@namespace", @namespace);
        command.Parameters.AddWithValue("@name", name);
    }

    private static CapstanException NotFound(string kind, string name) =>
        CapstanException.NotFound($"{KindNames.Plural(kind)} \"{name}\" not found");
}
