using System.Globalization;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Capstan.Runtime.Kubernetes.Tests.FakeApiServer;

/// <summary>
/// The state behind the fake API server, kept as etcd and the API server keep it: every write takes the next number of
/// one revision counter as its object's <c>resourceVersion</c> and is kept in a history that watches replay from a
/// version; creation sets uid, creationTimestamp and generation 1; generation moves only when the spec (anything but
/// metadata and, where a status subresource exists, status) changes; deletion of an object with finalizers only sets
/// its <c>deletionTimestamp</c>, and the object goes when the last finalizer is removed; dependents whose owners are all
/// gone are garbage-collected. Objects are JSON trees, so any resource type works alike.
/// </summary>
public sealed class FakeObjectStore
{
    private const string NameCharacters = "bcdfghjklmnpqrstvwxz2456789";

    private readonly Lock _gate = new();
    private readonly Dictionary<ObjectKey, JsonObject> _objects = [];
    private readonly Dictionary<string, ObjectKey> _byUid = new(StringComparer.Ordinal);
    private readonly List<Change> _history = [];
    private readonly List<WatchSubscription> _watches = [];
    private readonly Dictionary<(string Namespace, string Pod), List<(DateTimeOffset Time, string Line)>> _podLogs = [];
    private readonly List<Interposed> _interposed = [];
    private readonly TimeProvider _time;
    private long _revision = 1000;
    private long _compactedRevision = 1000;

    public FakeObjectStore(TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
    }

    /// <summary>How many changes watches can resume over before the oldest are compacted away (then: 410 Gone).</summary>
    public int HistoryLimit { get; set; } = 10_000;

    /// <summary>The latest revision, as a list's <c>metadata.resourceVersion</c> shows it.</summary>
    public long Revision
    {
        get
        {
            lock (_gate)
            {
                return _revision;
            }
        }
    }

    /// <summary>Forgets the change history, as etcd compaction does: a watch from any earlier version now gets 410 Gone.</summary>
    public void Compact()
    {
        lock (_gate)
        {
            _history.Clear();
            _compactedRevision = _revision;
        }
    }

    /// <summary>Ends every open watch, as an API server restart or a watch timeout does; clients must resume from their last version.</summary>
    public void CloseWatches()
    {
        lock (_gate)
        {
            foreach (var watch in _watches)
            {
                watch.Lines.Writer.TryComplete();
            }

            _watches.Clear();
        }
    }

    /// <summary>The number of watches open now.</summary>
    public int OpenWatches
    {
        get
        {
            lock (_gate)
            {
                return _watches.Count;
            }
        }
    }

    /// <summary>
    /// Before each of the next <paramref name="count"/> updates of <paramref name="type"/>, another writer changes the
    /// stored object first with <paramref name="change"/> (a real write: new resourceVersion, a MODIFIED event), so a
    /// request carrying the version it read meets a genuine 409 Conflict.
    /// </summary>
    public void InterposeWriter(ApiResourceType type, int count, Action<JsonObject> change)
    {
        lock (_gate)
        {
            _interposed.Add(new Interposed(type, count, change));
        }
    }

    /// <summary>
    /// The text the pod's log endpoint serves, as the kubelet would. Lines the log already had keep the time they were
    /// written; new lines (the text continues the old) are written now, which is what <c>timestamps</c> and
    /// <c>sinceSeconds</c> see.
    /// </summary>
    public void SetPodLog(string @namespace, string pod, string text)
    {
        lock (_gate)
        {
            var lines = text.Split('\n');
            var count = text.EndsWith('\n') ? lines.Length - 1 : lines.Length;
            var old = _podLogs.GetValueOrDefault((@namespace, pod)) ?? [];
            var log = new List<(DateTimeOffset Time, string Line)>(count);
            var now = DateTimeOffset.UtcNow;
            for (var i = 0; i < count; i++)
            {
                log.Add(i < old.Count && old[i].Line == lines[i] ? old[i] : (now, lines[i]));
            }

            _podLogs[(@namespace, pod)] = log;
        }
    }

    /// <summary>
    /// The pod's log as <c>GET pods/{name}/log</c> answers: with <paramref name="timestamps"/> every line starts with its
    /// RFC 3339 time (nanoseconds, trailing zeros trimmed) and a space; <paramref name="sinceSeconds"/> keeps the lines
    /// written that many seconds before now or later.
    /// </summary>
    public string GetPodLog(ApiResourceType pods, string @namespace, string pod, bool timestamps = false, int? sinceSeconds = null)
    {
        lock (_gate)
        {
            _ = Find(pods, @namespace, pod) ?? throw ApiException.NotFound(pods, pod);
            var since = sinceSeconds is { } seconds ? DateTimeOffset.UtcNow.AddSeconds(-seconds) : DateTimeOffset.MinValue;
            var text = new System.Text.StringBuilder();
            foreach (var (time, line) in _podLogs.GetValueOrDefault((@namespace, pod)) ?? [])
            {
                if (time < since)
                {
                    continue;
                }

                if (timestamps)
                {
                    text.Append(time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture)).Append(' ');
                }

                text.Append(line).Append('\n');
            }

            return text.ToString();
        }
    }

    public JsonObject Create(ApiResourceType type, string? @namespace, JsonObject body)
    {
        lock (_gate)
        {
            var obj = (JsonObject)body.DeepClone();
            CheckKind(type, obj);
            var metadata = Metadata(obj);
            var name = metadata["name"]?.GetValue<string>();
            if (string.IsNullOrEmpty(name) && metadata["generateName"]?.GetValue<string>() is { Length: > 0 } prefix)
            {
                do
                {
                    name = prefix + string.Concat(Enumerable.Range(0, 5).Select(_ => NameCharacters[Random.Shared.Next(NameCharacters.Length)]));
                }
                while (_objects.ContainsKey(new ObjectKey(type, @namespace ?? "", name)));
            }

            if (string.IsNullOrEmpty(name))
            {
                throw ApiException.Invalid(type, "", "metadata.name: Required value: name or generateName is required");
            }

            if (CheckName(name) is { } problem)
            {
                throw ApiException.Invalid(type, name, $"metadata.name: Invalid value: \"{name}\": {problem}");
            }

            metadata["name"] = name;
            SetNamespace(type, @namespace, metadata);
            var key = new ObjectKey(type, @namespace ?? "", name);
            if (_objects.ContainsKey(key))
            {
                throw ApiException.AlreadyExists(type, name);
            }

            var uid = Guid.NewGuid().ToString();
            metadata["uid"] = uid;
            metadata["creationTimestamp"] = Timestamp();
            metadata["generation"] = 1L;
            metadata.Remove("deletionTimestamp");
            metadata.Remove("deletionGracePeriodSeconds");
            if (type.StatusSubresource)
            {
                obj.Remove("status");
            }

            metadata["resourceVersion"] = NextRevision();
            _objects[key] = obj;
            _byUid[uid] = key;
            Commit(new Change(_revision, key, null, obj, Deleted: false));
            var created = (JsonObject)obj.DeepClone();

            // An owner that does not exist makes the object a dangling dependent: the garbage collector removes it.
            if (OwnerUids(obj) is { Count: > 0 } owners && owners.All(o => !_byUid.ContainsKey(o)))
            {
                DeleteLocked(key, Propagation.Background, preconditions: null);
            }

            return created;
        }
    }

    public JsonObject Get(ApiResourceType type, string? @namespace, string name)
    {
        lock (_gate)
        {
            return (JsonObject)(Find(type, @namespace, name) ?? throw ApiException.NotFound(type, name)).DeepClone();
        }
    }

    /// <summary>The matching objects by namespace then name, and the revision the list is as of.</summary>
    public (IReadOnlyList<JsonObject> Items, long ResourceVersion) List(ApiResourceType type, string? @namespace, Func<JsonObject, bool> filter)
    {
        lock (_gate)
        {
            var items = _objects
                .Where(o => o.Key.Type == type && (@namespace is null || o.Key.Namespace == @namespace) && filter(o.Value))
                .OrderBy(o => o.Key.Namespace, StringComparer.Ordinal).ThenBy(o => o.Key.Name, StringComparer.Ordinal)
                .Select(o => (JsonObject)o.Value.DeepClone())
                .ToList();
            return (items, _revision);
        }
    }

    /// <summary>PUT: the whole object (main resource) or its status (<paramref name="statusOnly"/>), checked on resourceVersion.</summary>
    public JsonObject Replace(ApiResourceType type, string? @namespace, string name, JsonObject body, bool statusOnly)
    {
        lock (_gate)
        {
            var existing = FindForUpdate(type, @namespace, name);
            var bodyName = body["metadata"]?["name"]?.GetValue<string>();
            if (bodyName is not null && bodyName != name)
            {
                throw ApiException.BadRequest($"the name of the object ({bodyName}) does not match the name on the URL ({name})");
            }

            CheckPreconditions(type, existing, body);
            var updated = statusOnly ? WithStatus(existing, body["status"]) : WithMain(type, existing, body);
            return UpdateLocked(new ObjectKey(type, @namespace ?? "", name), existing, updated);
        }
    }

    /// <summary>PATCH with a JSON merge patch or a JSON patch, on the main resource or its status.</summary>
    public JsonObject Patch(ApiResourceType type, string? @namespace, string name, string contentType, JsonNode patch, bool statusOnly)
    {
        lock (_gate)
        {
            var existing = FindForUpdate(type, @namespace, name);
            var patched = contentType switch
            {
                JsonPatches.MergePatch => JsonPatches.Merge(existing, patch) as JsonObject,
                JsonPatches.JsonPatch when patch is JsonArray operations =>
                    JsonPatches.Apply(existing, operations, message => ApiException.Invalid(type, name, message)) as JsonObject,
                JsonPatches.JsonPatch => throw ApiException.BadRequest("a JSON patch must be an array of operations"),
                _ => throw new ApiException(415, "UnsupportedMediaType",
                    $"the body of the request was in an unknown format - accepted media types include: {JsonPatches.JsonPatch}, {JsonPatches.MergePatch} (this fake implements neither strategic merge patch nor server-side apply)"),
            } ?? throw ApiException.BadRequest("the patch must leave an object");
            CheckPreconditions(type, existing, patched);
            var updated = statusOnly ? WithStatus(existing, patched["status"]) : WithMain(type, existing, patched);
            return UpdateLocked(new ObjectKey(type, @namespace ?? "", name), existing, updated);
        }
    }

    /// <summary>
    /// DELETE: with finalizers the object only gets its deletionTimestamp; without, it goes, and its dependents follow
    /// by <paramref name="propagation"/> (default Background, but Orphan for batch/v1 Jobs, as the API server defaults it).
    /// </summary>
    public JsonObject Delete(ApiResourceType type, string? @namespace, string name, Propagation? propagation, JsonObject? preconditions)
    {
        lock (_gate)
        {
            var key = new ObjectKey(type, @namespace ?? "", name);
            if (!_objects.ContainsKey(key))
            {
                throw ApiException.NotFound(type, name);
            }

            var policy = propagation ?? (type is { Group: "batch", Plural: "jobs" } ? Propagation.Orphan : Propagation.Background);
            return DeleteLocked(key, policy, preconditions);
        }
    }

    /// <summary>A watch: first the objects as they are (no version, or "0") or every change after <paramref name="resourceVersion"/>, then changes as they commit.</summary>
    public WatchSubscription Watch(ApiResourceType type, string? @namespace, Func<JsonObject, bool> filter, string? resourceVersion)
    {
        lock (_gate)
        {
            var watch = new WatchSubscription(this, type, @namespace, filter);
            if (string.IsNullOrEmpty(resourceVersion) || resourceVersion == "0")
            {
                foreach (var (key, obj) in _objects.OrderBy(o => o.Key.Namespace, StringComparer.Ordinal).ThenBy(o => o.Key.Name, StringComparer.Ordinal))
                {
                    if (key.Type == type && (@namespace is null || key.Namespace == @namespace) && filter(obj))
                    {
                        watch.Lines.Writer.TryWrite(WatchLine("ADDED", obj));
                    }
                }
            }
            else
            {
                if (!long.TryParse(resourceVersion, NumberStyles.None, CultureInfo.InvariantCulture, out var from))
                {
                    throw ApiException.BadRequest($"invalid resource version \"{resourceVersion}\"");
                }

                if (from < _compactedRevision)
                {
                    var status = ApiStatus.Failure(new ApiException(410, "Expired", $"too old resource version: {from} ({_compactedRevision})"));
                    watch.Lines.Writer.TryWrite(new JsonObject { ["type"] = "ERROR", ["object"] = status }.ToJsonString());
                    watch.Lines.Writer.TryComplete();
                    return watch;
                }

                foreach (var change in _history.Where(c => c.Revision > from))
                {
                    watch.Offer(change);
                }
            }

            _watches.Add(watch);
            return watch;
        }
    }

    internal void Unsubscribe(WatchSubscription watch)
    {
        lock (_gate)
        {
            _watches.Remove(watch);
        }
    }

    internal static string WatchLine(string type, JsonObject obj) =>
        new JsonObject { ["type"] = type, ["object"] = obj.DeepClone() }.ToJsonString();

    private JsonObject FindForUpdate(ApiResourceType type, string? @namespace, string name)
    {
        var key = new ObjectKey(type, @namespace ?? "", name);
        var index = _interposed.FindIndex(i => i.Type == type && i.Remaining > 0);
        if (index >= 0 && _objects.TryGetValue(key, out var current))
        {
            var interposed = _interposed[index];
            _interposed[index] = interposed with { Remaining = interposed.Remaining - 1 };
            var changed = (JsonObject)current.DeepClone();
            interposed.Change(changed);
            UpdateLocked(key, current, changed);
        }

        return Find(type, @namespace, name) ?? throw ApiException.NotFound(type, name);
    }

    private JsonObject? Find(ApiResourceType type, string? @namespace, string name) =>
        _objects.GetValueOrDefault(new ObjectKey(type, @namespace ?? "", name));

    private static void CheckPreconditions(ApiResourceType type, JsonObject existing, JsonObject body)
    {
        var name = existing["metadata"]!["name"]!.GetValue<string>();
        var version = body["metadata"]?["resourceVersion"]?.GetValue<string>();
        if (!string.IsNullOrEmpty(version) && version != existing["metadata"]!["resourceVersion"]!.GetValue<string>())
        {
            throw ApiException.Conflict(type, name, "the object has been modified; please apply your changes to the latest version and try again");
        }

        var uid = body["metadata"]?["uid"]?.GetValue<string>();
        var storedUid = existing["metadata"]!["uid"]!.GetValue<string>();
        if (!string.IsNullOrEmpty(uid) && uid != storedUid)
        {
            throw ApiException.Conflict(type, name, $"Precondition failed: UID in precondition: {uid}, UID in object meta: {storedUid}");
        }
    }

    /// <summary>The body as the new object, with what only the server sets kept from the stored one, and the stored status where status is a subresource.</summary>
    private static JsonObject WithMain(ApiResourceType type, JsonObject existing, JsonObject body)
    {
        var updated = (JsonObject)body.DeepClone();
        CheckKind(type, updated);
        var metadata = Metadata(updated);
        var stored = existing["metadata"]!.AsObject();
        foreach (var field in new[] { "name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "resourceVersion" })
        {
            metadata.Remove(field);
            if (stored[field] is { } value)
            {
                metadata[field] = value.DeepClone();
            }
        }

        if (type.StatusSubresource)
        {
            updated.Remove("status");
            if (existing["status"] is { } status)
            {
                updated["status"] = status.DeepClone();
            }
        }

        return updated;
    }

    private static JsonObject WithStatus(JsonObject existing, JsonNode? status)
    {
        var updated = (JsonObject)existing.DeepClone();
        updated.Remove("status");
        if (status is not null)
        {
            updated["status"] = status.DeepClone();
        }

        return updated;
    }

    private JsonObject UpdateLocked(ObjectKey key, JsonObject existing, JsonObject updated)
    {
        var metadata = updated["metadata"]!.AsObject();
        var generation = existing["metadata"]!["generation"]?.GetValue<long>() ?? 1;
        metadata["generation"] = SpecChanged(key.Type, existing, updated) ? generation + 1 : generation;
        metadata["resourceVersion"] = existing["metadata"]!["resourceVersion"]!.GetValue<string>();
        if (JsonNode.DeepEquals(existing, updated))
        {
            // A write that changes nothing is no write: same resourceVersion, no watch event.
            return (JsonObject)existing.DeepClone();
        }

        var deleting = existing["metadata"]!["deletionTimestamp"] is not null;
        var finalizers = Finalizers(updated);
        if (deleting && finalizers.Except(Finalizers(existing)).Any())
        {
            throw ApiException.Invalid(key.Type, key.Name, "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted");
        }

        metadata["resourceVersion"] = NextRevision();
        _objects[key] = updated;
        Commit(new Change(_revision, key, existing, updated, Deleted: false));
        if (deleting && finalizers.Count == 0)
        {
            RemoveLocked(key, updated);
        }

        return (JsonObject)updated.DeepClone();
    }

    private JsonObject DeleteLocked(ObjectKey key, Propagation propagation, JsonObject? preconditions)
    {
        var existing = _objects[key];
        var metadata = existing["metadata"]!.AsObject();
        var uid = metadata["uid"]!.GetValue<string>();
        if (preconditions?["uid"]?.GetValue<string>() is { } wantUid && wantUid != uid)
        {
            throw ApiException.Conflict(key.Type, key.Name, $"Precondition failed: UID in precondition: {wantUid}, UID in object meta: {uid}");
        }

        if (preconditions?["resourceVersion"]?.GetValue<string>() is { } wantVersion && wantVersion != metadata["resourceVersion"]!.GetValue<string>())
        {
            throw ApiException.Conflict(key.Type, key.Name, $"Precondition failed: ResourceVersion in precondition: {wantVersion}, ResourceVersion in object meta: {metadata["resourceVersion"]}");
        }

        if (metadata["deletionTimestamp"] is not null)
        {
            return (JsonObject)existing.DeepClone();
        }

        switch (propagation)
        {
            case Propagation.Orphan:
                foreach (var (dependentKey, dependent) in Dependents(uid))
                {
                    var freed = (JsonObject)dependent.DeepClone();
                    var references = freed["metadata"]!["ownerReferences"]!.AsArray();
                    foreach (var reference in references.Where(r => r?["uid"]?.GetValue<string>() == uid).ToList())
                    {
                        references.Remove(reference);
                    }

                    UpdateLocked(dependentKey, dependent, freed);
                }

                break;
            case Propagation.Foreground:
                // The owner waits for its dependents: they go first (here at once), then the owner.
                foreach (var (dependentKey, _) in Dependents(uid))
                {
                    if (_objects.ContainsKey(dependentKey))
                    {
                        DeleteLocked(dependentKey, Propagation.Foreground, preconditions: null);
                    }
                }

                break;
        }

        if (Finalizers(existing).Count > 0)
        {
            var marked = (JsonObject)existing.DeepClone();
            marked["metadata"]!["deletionTimestamp"] = Timestamp();
            marked["metadata"]!["deletionGracePeriodSeconds"] = 0;
            return UpdateLocked(key, existing, marked);
        }

        return RemoveLocked(key, existing);
    }

    private JsonObject RemoveLocked(ObjectKey key, JsonObject last)
    {
        var final = (JsonObject)last.DeepClone();
        final["metadata"]!["resourceVersion"] = NextRevision();
        _objects.Remove(key);
        var uid = final["metadata"]!["uid"]!.GetValue<string>();
        _byUid.Remove(uid);
        Commit(new Change(_revision, key, last, final, Deleted: true));

        // Background garbage collection: a dependent none of whose owners still exists is deleted in turn.
        foreach (var (dependentKey, dependent) in Dependents(uid))
        {
            if (_objects.ContainsKey(dependentKey) && OwnerUids(dependent).All(o => !_byUid.ContainsKey(o)))
            {
                DeleteLocked(dependentKey, Propagation.Background, preconditions: null);
            }
        }

        return final;
    }

    private List<(ObjectKey Key, JsonObject Object)> Dependents(string ownerUid) =>
        [.. _objects.Where(o => OwnerUids(o.Value).Contains(ownerUid)).Select(o => (o.Key, o.Value))];

    private static List<string> OwnerUids(JsonObject obj) =>
        obj["metadata"]?["ownerReferences"] is JsonArray references
            ? [.. references.Select(r => r?["uid"]?.GetValue<string>()).OfType<string>()]
            : [];

    private static List<string> Finalizers(JsonObject obj) =>
        obj["metadata"]?["finalizers"] is JsonArray finalizers ? [.. finalizers.Select(f => f!.GetValue<string>())] : [];

    private static bool SpecChanged(ApiResourceType type, JsonObject before, JsonObject after)
    {
        static JsonObject WithoutMetadata(ApiResourceType type, JsonObject obj)
        {
            var copy = (JsonObject)obj.DeepClone();
            copy.Remove("metadata");
            if (type.StatusSubresource)
            {
                copy.Remove("status");
            }

            return copy;
        }

        return !JsonNode.DeepEquals(WithoutMetadata(type, before), WithoutMetadata(type, after));
    }

    private void Commit(Change change)
    {
        _history.Add(change);
        if (_history.Count > HistoryLimit)
        {
            var drop = _history.Count - (HistoryLimit / 2);
            _compactedRevision = _history[drop - 1].Revision;
            _history.RemoveRange(0, drop);
        }

        foreach (var watch in _watches)
        {
            watch.Offer(change);
        }
    }

    private string NextRevision() => (++_revision).ToString(CultureInfo.InvariantCulture);

    private string Timestamp() => _time.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static JsonObject Metadata(JsonObject obj)
    {
        if (obj["metadata"] is not JsonObject metadata)
        {
            obj["metadata"] = metadata = [];
        }

        return metadata;
    }

    private static void CheckKind(ApiResourceType type, JsonObject obj)
    {
        var kind = obj["kind"]?.GetValue<string>();
        var apiVersion = obj["apiVersion"]?.GetValue<string>();
        if ((kind is not null && kind != type.Kind) || (apiVersion is not null && apiVersion != type.ApiVersion))
        {
            throw ApiException.BadRequest($"the API version in the data ({apiVersion}) and kind ({kind}) do not match the resource {type.ApiVersion} {type.Kind} of the URL");
        }

        obj["kind"] = type.Kind;
        obj["apiVersion"] = type.ApiVersion;
    }

    private static void SetNamespace(ApiResourceType type, string? @namespace, JsonObject metadata)
    {
        if (!type.Namespaced)
        {
            metadata.Remove("namespace");
            return;
        }

        var given = metadata["namespace"]?.GetValue<string>();
        if (!string.IsNullOrEmpty(given) && given != @namespace)
        {
            throw ApiException.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
        }

        metadata["namespace"] = @namespace;
    }

    /// <summary>A DNS-1123 subdomain, as most kinds require of their names.</summary>
    private static string? CheckName(string name) =>
        name.Length > 253 ? "must be no more than 253 characters"
        : name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.')
            && char.IsAsciiLetterOrDigit(name[0]) && char.IsAsciiLetterOrDigit(name[^1])
            ? null
            : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

    internal sealed record ObjectKey(ApiResourceType Type, string Namespace, string Name);

    internal sealed record Change(long Revision, ObjectKey Key, JsonObject? Before, JsonObject After, bool Deleted);

    private sealed record Interposed(ApiResourceType Type, int Remaining, Action<JsonObject> Change);
}

/// <summary>Kubernetes' <c>propagationPolicy</c>.</summary>
public enum Propagation
{
    Orphan,
    Background,
    Foreground,
}

/// <summary>One open watch: its lines (<c>{"type":..,"object":..}</c>) as they commit. Dispose to close it.</summary>
public sealed class WatchSubscription : IDisposable
{
    private readonly FakeObjectStore _store;
    private readonly ApiResourceType _type;
    private readonly string? _namespace;
    private readonly Func<JsonObject, bool> _filter;

    internal WatchSubscription(FakeObjectStore store, ApiResourceType type, string? @namespace, Func<JsonObject, bool> filter)
    {
        _store = store;
        _type = type;
        _namespace = @namespace;
        _filter = filter;
    }

    internal Channel<string> Lines { get; } = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });

    public ChannelReader<string> Reader => Lines.Reader;

    /// <summary>The change as this watch sees it through its selector: an object that starts or stops matching is ADDED or DELETED.</summary>
    internal void Offer(FakeObjectStore.Change change)
    {
        if (change.Key.Type != _type || (_namespace is not null && change.Key.Namespace != _namespace))
        {
            return;
        }

        var before = change.Before is not null && _filter(change.Before);
        var after = _filter(change.After);
        var type = change.Deleted ? (before || after ? "DELETED" : null)
            : change.Before is null ? (after ? "ADDED" : null)
            : (before, after) switch
            {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                _ => null,
            };
        if (type is not null)
        {
            Lines.Writer.TryWrite(FakeObjectStore.WatchLine(type, change.After));
        }
    }

    public void Dispose()
    {
        Lines.Writer.TryComplete();
        _store.Unsubscribe(this);
    }
}
