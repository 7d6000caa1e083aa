using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Operator;
using k8s;
using k8s.Autorest;
using k8s.Models;
using CoreWatchEventType = Capstan.Core.ControlPlane.WatchEventType;

namespace Capstan.Runtime.Kubernetes.Cluster;

/// <summary>
/// <see cref="IResourceStore"/> over a cluster's Capstan custom resources, so <c>capstan apply/get/describe/delete/logs
/// --context NAME</c> work there as they do against the embedded store or a server: the API server keeps uid,
/// generation and resourceVersion, the status subresource and the watches; the operator reconciles. Updates read the
/// stored object and replace only what the caller owns (spec, labels, annotations), so fields the resource model has no
/// place for (finalizers, owner references) survive. Events are core/v1 Events.
/// </summary>
public sealed class KubernetesResourceStore(IKubernetes client, string location) : IResourceStore, IDisposable
{
    private readonly ClusterEvents _events = new(client, "capstan-cli");

    /// <summary>The cluster's server URL and context, for messages.</summary>
    public string Location { get; } = location;

    public void Dispose() => client.Dispose();

    public async Task<Resource> CreateAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(resource);
        resource.ApplyDefaults();
        var ns = Namespace(resource);
        var created = await CallAsync(Describe(resource.Kind, Name(resource)), () => client.CustomObjects.CreateNamespacedCustomObjectAsync(
            CustomResources.ToCreateBody(resource), CustomResources.Group, CustomResources.Version, ns, CustomResources.Plural(resource.Kind), cancellationToken: cancellationToken)).ConfigureAwait(false);
        return CustomResources.ToResource(CustomResources.ToNode(created));
    }

    public async Task<Resource> GetAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default) =>
        CustomResources.ToResource(await GetNodeAsync(kind, @namespace, name, cancellationToken).ConfigureAwait(false));

    public async Task<IReadOnlyList<Resource>> ListAsync(string kind, string? @namespace = null, IReadOnlyDictionary<string, string>? labelSelector = null, CancellationToken cancellationToken = default)
    {
        var selector = labelSelector is { Count: > 0 } ? string.Join(',', labelSelector.Select(l => $"{l.Key}={l.Value}")) : null;
        var plural = CustomResources.Plural(kind);
        var list = await CallAsync(plural, () => @namespace is null
            ? client.CustomObjects.ListCustomObjectForAllNamespacesAsync(CustomResources.Group, CustomResources.Version, plural, labelSelector: selector, cancellationToken: cancellationToken)
            : client.CustomObjects.ListNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, @namespace, plural, labelSelector: selector, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return [.. (CustomResources.ToNode(list)["items"]?.AsArray() ?? [])
            .Select(i => CustomResources.ToResource(i!.AsObject()))
            .OrderBy(r => r.Metadata.Namespace, StringComparer.Ordinal)
            .ThenBy(r => r.Metadata.Name, StringComparer.Ordinal)];
    }

    public async Task<Resource> UpdateAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(resource);
        var stored = await GetNodeAsync(resource.Kind, Namespace(resource), Name(resource), cancellationToken).ConfigureAwait(false);
        var body = WithUserFields(stored, resource);
        if (resource.Metadata.ResourceVersion is { Length: > 0 } version)
        {
            body["metadata"]!["resourceVersion"] = version;
        }

        return await ReplaceAsync(resource, body, status: false, cancellationToken).ConfigureAwait(false);
    }

    public async Task<Resource> UpdateStatusAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(resource);
        var stored = await GetNodeAsync(resource.Kind, Namespace(resource), Name(resource), cancellationToken).ConfigureAwait(false);
        var body = (JsonObject)stored.DeepClone();
        body["status"] = ResourceSerializer.ToJsonNode(resource)["status"]?.DeepClone();
        if (resource.Metadata.ResourceVersion is { Length: > 0 } version)
        {
            body["metadata"]!["resourceVersion"] = version;
        }

        return await ReplaceAsync(resource, body, status: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Creates, or replaces spec, labels and annotations of the stored object; a concurrent write is retried on the fresh version.</summary>
    public async Task<ApplyResult> ApplyAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(resource);
        resource.ApplyDefaults();
        for (var attempt = 0; ; attempt++)
        {
            JsonObject stored;
            try
            {
                stored = await GetNodeAsync(resource.Kind, Namespace(resource), Name(resource), cancellationToken).ConfigureAwait(false);
            }
            catch (CapstanException e) when (e.Code == ErrorCode.ResourceDoesNotExist)
            {
                try
                {
                    return new ApplyResult(await CreateAsync(resource, cancellationToken).ConfigureAwait(false), ApplyOutcome.Created);
                }
                catch (CapstanException again) when (again.Code == ErrorCode.ResourceAlreadyExists && attempt < 3)
                {
                    continue;
                }
            }

            var body = WithUserFields(stored, resource);
            if (JsonNode.DeepEquals(body, stored))
            {
                return new ApplyResult(CustomResources.ToResource(stored), ApplyOutcome.Unchanged);
            }

            try
            {
                return new ApplyResult(await ReplaceAsync(resource, body, status: false, cancellationToken).ConfigureAwait(false), ApplyOutcome.Configured);
            }
            catch (CapstanException e) when (e.Code == ErrorCode.Conflict && attempt < 3)
            {
                // Someone (the operator writing status) got there first: apply over the fresh object.
            }
        }
    }

    /// <summary>Deletes with background propagation, as kubectl does: the operator's Jobs and Services go with it.</summary>
    public async Task<Resource> DeleteAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default)
    {
        var stored = await GetNodeAsync(kind, @namespace, name, cancellationToken).ConfigureAwait(false);
        await CallAsync(Describe(kind, name), () => client.CustomObjects.DeleteNamespacedCustomObjectAsync(
            CustomResources.Group, CustomResources.Version, @namespace, CustomResources.Plural(kind), name, propagationPolicy: "Background", cancellationToken: cancellationToken)).ConfigureAwait(false);
        return CustomResources.ToResource(stored);
    }

    /// <summary>A watch of one kind; an expired version (410) ends it with <see cref="ErrorCode.Conflict"/>, as the caller must list again.</summary>
    public async IAsyncEnumerable<WatchEvent> WatchAsync(string? kind = null, string? @namespace = null, long? fromResourceVersion = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (kind is null)
        {
            throw new ArgumentNullException(nameof(kind), "The Kubernetes API watches one resource type per request; pass the kind.");
        }

        var plural = CustomResources.Plural(kind);
        var version = fromResourceVersion is { } from ? ResourceVersions.Format(from) : null;
        Exception? failure = null;
        var events = @namespace is null
            ? client.CustomObjects.WatchListCustomObjectForAllNamespacesAsync(CustomResources.Group, CustomResources.Version, plural, resourceVersion: version, onError: e => failure = e, cancellationToken: cancellationToken)
            : client.CustomObjects.WatchListNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, @namespace, plural, resourceVersion: version, onError: e => failure = e, cancellationToken: cancellationToken);
        await foreach (var (type, obj) in events.ConfigureAwait(false))
        {
            CoreWatchEventType? mapped = type switch
            {
                k8s.WatchEventType.Added => CoreWatchEventType.Added,
                k8s.WatchEventType.Modified => CoreWatchEventType.Modified,
                k8s.WatchEventType.Deleted => CoreWatchEventType.Deleted,
                _ => null,
            };
            if (mapped is { } change)
            {
                yield return new WatchEvent(change, CustomResources.ToResource(CustomResources.ToNode(obj)));
            }
        }

        if (failure is KubernetesException { Status.Code: (int)HttpStatusCode.Gone } expired)
        {
            throw new CapstanException(ErrorCode.Conflict, $"watch of {plural}: {expired.Status.Message}; list again");
        }
    }

    public async Task<ResourceEvent> RecordEventAsync(Resource involved, ResourceEventType type, string reason, string message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(involved);
        var reference = new V1ObjectReference
        {
            ApiVersion = involved.ApiVersion,
            Kind = involved.Kind,
            Name = Name(involved),
            NamespaceProperty = Namespace(involved),
            Uid = involved.Metadata.Uid,
        };
        var recorded = await CallAsync("events", () => _events.RecordAsync(reference, type.ToString(), reason, message, cancellationToken)).ConfigureAwait(false);
        return ToResourceEvent(recorded);
    }

    public async Task<IReadOnlyList<ResourceEvent>> ListEventsAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default)
    {
        var events = await CallAsync("events", () => _events.ListAsync(@namespace, uid: null, kind, name, cancellationToken)).ConfigureAwait(false);
        return [.. events.Select(ToResourceEvent)];
    }

    /// <summary>
    /// A TrainJob's output: the logs of its Job's pods (the Job controller labels them <c>batch.kubernetes.io/job-name</c>),
    /// rank 0 first, each under a <c>--- pod NAME ---</c> line when there are several. With <paramref name="follow"/> the
    /// kubelet streams each pod's log until its container ends.
    /// </summary>
    public async IAsyncEnumerable<string> ReadLogsAsync(string @namespace, string name, bool follow, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await GetNodeAsync(TrainJob.KindName, @namespace, name, cancellationToken).ConfigureAwait(false);
        var pods = await CallAsync("pods", () => client.CoreV1.ListNamespacedPodAsync(@namespace, labelSelector: $"batch.kubernetes.io/job-name={name}", cancellationToken: cancellationToken)).ConfigureAwait(false);
        var ordered = pods.Items
            .OrderBy(p => p.Metadata.Annotations?.TryGetValue(Rendering.CapstanLabels.JobCompletionIndex, out var index) == true && int.TryParse(index, out var i) ? i : 0)
            .ThenBy(p => p.Metadata.CreationTimestamp)
            .ToList();
        foreach (var pod in ordered)
        {
            if (ordered.Count > 1)
            {
                yield return $"--- pod {pod.Metadata.Name} ---";
            }

            var stream = await CallAsync("pods", () => client.CoreV1.ReadNamespacedPodLogAsync(pod.Metadata.Name, @namespace, follow: follow, cancellationToken: cancellationToken)).ConfigureAwait(false);
            using var reader = new StreamReader(stream);
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                yield return line;
            }
        }
    }

    private async Task<JsonObject> GetNodeAsync(string kind, string @namespace, string name, CancellationToken cancellationToken) =>
        CustomResources.ToNode(await CallAsync(Describe(kind, name), () => client.CustomObjects.GetNamespacedCustomObjectAsync(
            CustomResources.Group, CustomResources.Version, @namespace, CustomResources.Plural(kind), name, cancellationToken)).ConfigureAwait(false));

    private async Task<Resource> ReplaceAsync(Resource resource, JsonObject body, bool status, CancellationToken cancellationToken)
    {
        var ns = Namespace(resource);
        var name = Name(resource);
        var plural = CustomResources.Plural(resource.Kind);
        var replaced = await CallAsync(Describe(resource.Kind, name), () => status
            ? client.CustomObjects.ReplaceNamespacedCustomObjectStatusAsync(body, CustomResources.Group, CustomResources.Version, ns, plural, name, cancellationToken: cancellationToken)
            : client.CustomObjects.ReplaceNamespacedCustomObjectAsync(body, CustomResources.Group, CustomResources.Version, ns, plural, name, cancellationToken: cancellationToken)).ConfigureAwait(false);
        return CustomResources.ToResource(CustomResources.ToNode(replaced));
    }

    /// <summary>The stored object with the caller's spec, labels and annotations in place of its own.</summary>
    private static JsonObject WithUserFields(JsonObject stored, Resource resource)
    {
        var given = ResourceSerializer.ToJsonNode(resource);
        var body = (JsonObject)stored.DeepClone();
        body["spec"] = given["spec"]?.DeepClone();
        var metadata = body["metadata"]!.AsObject();
        foreach (var field in new[] { "labels", "annotations" })
        {
            metadata.Remove(field);
            if (given["metadata"]?[field] is { } value)
            {
                metadata[field] = value.DeepClone();
            }
        }

        return body;
    }

    private async Task<T> CallAsync<T>(string what, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (HttpOperationException e)
        {
            throw CustomResources.Translate(e, what);
        }
        catch (HttpRequestException e)
        {
            throw new CapstanException(ErrorCode.Internal, $"Cannot reach the Kubernetes API at {Location}: {e.Message}");
        }
    }

    private static ResourceEvent ToResourceEvent(Corev1Event e) => new(
        e.InvolvedObject.Kind,
        e.InvolvedObject.NamespaceProperty ?? e.Metadata.NamespaceProperty,
        e.InvolvedObject.Name,
        e.InvolvedObject.Uid,
        e.Type == EventTypes.Warning ? ResourceEventType.Warning : ResourceEventType.Normal,
        e.Reason,
        e.Message,
        e.Count ?? 1,
        Offset(e.FirstTimestamp ?? e.EventTime),
        Offset(e.LastTimestamp ?? e.EventTime ?? e.FirstTimestamp));

    private static DateTimeOffset Offset(DateTime? time) =>
        time is { } t ? new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)) : DateTimeOffset.MinValue;

    private static string Describe(string kind, string name) => $"{CustomResources.Plural(kind)}.{CustomResources.Group} \"{name}\"";

    private static string Namespace(Resource resource) => resource.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;

    private static string Name(Resource resource) =>
        resource.Metadata.Name ?? throw CapstanException.Invalid("metadata.name: missing required field 'name'");
}
