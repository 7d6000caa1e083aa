using Capstan.Core.Resources;

namespace Capstan.Core.ControlPlane;

/// <summary>
/// The declarative objects (TrainJobs, ...) with Kubernetes API semantics: <c>metadata.uid</c>,
/// <c>generation</c> bumped only by spec changes, optimistic concurrency on <c>resourceVersion</c>
/// (one number increasing across every object, like etcd's revision), a status subresource, watches
/// and events. Implemented by the embedded SQLite store and, over <c>/api/v1</c>, by the HTTP client,
/// so reconcilers and the CLI behave the same against either.
/// Failures a caller can act on are <see cref="CapstanException"/>s: <see cref="ErrorCode.ResourceDoesNotExist"/>,
/// <see cref="ErrorCode.ResourceAlreadyExists"/>, <see cref="ErrorCode.Conflict"/>.
/// Methods return copies: changing a returned object changes nothing until it is written back.
/// </summary>
public interface IResourceStore
{
    /// <summary>
    /// Stores a new object with defaults applied: sets uid, generation 1, resourceVersion and
    /// creationTimestamp (whatever the caller put there is ignored). AlreadyExists when the kind,
    /// namespace and name are taken.
    /// </summary>
    Task<Resource> CreateAsync(Resource resource, CancellationToken cancellationToken = default);

    /// <summary>The object, or <see cref="ErrorCode.ResourceDoesNotExist"/>.</summary>
    Task<Resource> GetAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default);

    /// <summary>The objects of <paramref name="kind"/>, in every namespace when <paramref name="namespace"/> is null,
    /// having every label of <paramref name="labelSelector"/> (equality), ordered by namespace then name.</summary>
    Task<IReadOnlyList<Resource>> ListAsync(string kind, string? @namespace = null, IReadOnlyDictionary<string, string>? labelSelector = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces spec, labels and annotations; status is kept (use <see cref="UpdateStatusAsync"/>).
    /// Generation is bumped only when the spec changed; an update that changes nothing keeps the resourceVersion.
    /// When <c>metadata.resourceVersion</c> is set and is not the stored one: <see cref="ErrorCode.Conflict"/>.
    /// </summary>
    Task<Resource> UpdateAsync(Resource resource, CancellationToken cancellationToken = default);

    /// <summary>The status subresource: replaces only the status, checked on resourceVersion as
    /// <see cref="UpdateAsync"/> is; spec and generation are never touched.</summary>
    Task<Resource> UpdateStatusAsync(Resource resource, CancellationToken cancellationToken = default);

    /// <summary>Creates or updates (<c>capstan apply</c>): the stored status is kept, resourceVersion is not checked.</summary>
    Task<ApplyResult> ApplyAsync(Resource resource, CancellationToken cancellationToken = default);

    /// <summary>Deletes the object and its events; returns it as it was last stored, or <see cref="ErrorCode.ResourceDoesNotExist"/>.</summary>
    Task<Resource> DeleteAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default);

    /// <summary>
    /// Changes as they are committed, in resourceVersion order. Without <paramref name="fromResourceVersion"/>
    /// it starts, as Kubernetes does, with an <see cref="WatchEventType.Added"/> for every existing object;
    /// with it, it replays every change after that version first (resuming a watch). Runs until cancelled
    /// or the store is closed.
    /// </summary>
    IAsyncEnumerable<WatchEvent> WatchAsync(string? kind = null, string? @namespace = null, long? fromResourceVersion = null, CancellationToken cancellationToken = default);

    /// <summary>Records a Kubernetes-style event about <paramref name="involved"/>; the same type, reason and
    /// message again bumps the count and last timestamp of the existing one instead of adding another.</summary>
    Task<ResourceEvent> RecordEventAsync(Resource involved, ResourceEventType type, string reason, string message, CancellationToken cancellationToken = default);

    /// <summary>The events of one object, oldest first (by first timestamp).</summary>
    Task<IReadOnlyList<ResourceEvent>> ListEventsAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default);

    /// <summary>
    /// How many objects of <paramref name="kind"/> are in each status phase, <see cref="ResourcePhases.Pending"/> for one whose
    /// status has none yet (what <c>capstan_resources</c> exports). This default lists them; a store that can count where
    /// the objects are kept does so instead.
    /// </summary>
    async Task<IReadOnlyDictionary<string, int>> CountByPhaseAsync(string kind, CancellationToken cancellationToken = default)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var resource in await ListAsync(kind, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var phase = ResourcePhases.Of(resource);
            counts[phase] = counts.GetValueOrDefault(phase) + 1;
        }

        return counts;
    }
}

/// <summary>The status phase of any kind as one string, for counting.</summary>
public static class ResourcePhases
{
    /// <summary>The phase of an object whose status has none yet (the control plane has not written one).</summary>
    public const string Pending = "Pending";

    public static string Of(Resource resource) => resource switch
    {
        TrainJob job => job.Status?.Phase?.ToString(),
        TuningExperiment experiment => experiment.Status?.Phase?.ToString(),
        InferenceService service => service.Status?.Phase?.ToString(),
        _ => null,
    } ?? Pending;
}

/// <summary>What <see cref="IResourceStore.ApplyAsync"/> did, in <c>kubectl apply</c>'s words.</summary>
public enum ApplyOutcome
{
    Created,
    Configured,
    Unchanged,
}

public sealed record ApplyResult(Resource Object, ApplyOutcome Outcome);

public enum WatchEventType
{
    Added,
    Modified,
    Deleted,
}

/// <summary>One change. <see cref="Object"/> carries the new resourceVersion (for Deleted: the deletion's).</summary>
public sealed record WatchEvent(WatchEventType Type, Resource Object)
{
    public long ResourceVersion => ResourceVersions.Parse(Object.Metadata.ResourceVersion);
}

/// <summary>Kubernetes' event types.</summary>
public enum ResourceEventType
{
    Normal,
    Warning,
}

/// <summary>A Kubernetes Event: something that happened to an object, for <c>capstan describe</c>.</summary>
public sealed record ResourceEvent(
    string Kind,
    string Namespace,
    string Name,
    string? Uid,
    ResourceEventType Type,
    string Reason,
    string Message,
    int Count,
    DateTimeOffset FirstTimestamp,
    DateTimeOffset LastTimestamp);

/// <summary>resourceVersion is a string on the wire (as in Kubernetes) holding one increasing number.</summary>
public static class ResourceVersions
{
    public static long Parse(string? text) =>
        long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? value
            : throw CapstanException.Invalid($"Invalid resourceVersion '{text}': expected a number.");

    public static string Format(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
