using System.Text.Json.Nodes;
using Capstan.Runtime.Kubernetes.Cluster;
using Capstan.Runtime.Kubernetes.Models;
using Capstan.Runtime.Kubernetes.Rendering;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>
/// Create-or-update of the objects a custom resource owns, idempotently: a missing object is created; an existing one
/// is replaced only when the rendered fields differ from what is stored (fields the API server defaulted and the
/// renderer does not set are left alone, so a pass over an unchanged resource writes nothing); an object of the same
/// name that the resource does not own is left untouched and reported.
/// </summary>
internal sealed class OwnedObjects(IKubernetes client)
{
    public enum Outcome
    {
        Created,
        Updated,
        Unchanged,
        NotOwned,
    }

    public Task<(Outcome Outcome, IKubernetesObject<V1ObjectMeta> Stored)> ApplyAsync(IKubernetesObject<V1ObjectMeta> desired, string ownerUid, CancellationToken ct)
    {
        var ns = desired.Metadata.NamespaceProperty;
        var name = desired.Metadata.Name;
        return desired switch
        {
            V1Deployment d => ApplyAsync(d, ownerUid,
                () => client.AppsV1.ReadNamespacedDeploymentAsync(name, ns, cancellationToken: ct),
                o => client.AppsV1.CreateNamespacedDeploymentAsync(o, ns, cancellationToken: ct),
                o => client.AppsV1.ReplaceNamespacedDeploymentAsync(o, name, ns, cancellationToken: ct)),
            V1Service s => ApplyAsync(s, ownerUid,
                () => client.CoreV1.ReadNamespacedServiceAsync(name, ns, cancellationToken: ct),
                o => client.CoreV1.CreateNamespacedServiceAsync(o, ns, cancellationToken: ct),
                o => client.CoreV1.ReplaceNamespacedServiceAsync(o, name, ns, cancellationToken: ct)),
            V2HorizontalPodAutoscaler h => ApplyAsync(h, ownerUid,
                () => client.AutoscalingV2.ReadNamespacedHorizontalPodAutoscalerAsync(name, ns, cancellationToken: ct),
                o => client.AutoscalingV2.CreateNamespacedHorizontalPodAutoscalerAsync(o, ns, cancellationToken: ct),
                o => client.AutoscalingV2.ReplaceNamespacedHorizontalPodAutoscalerAsync(o, name, ns, cancellationToken: ct)),
            V1PodDisruptionBudget p => ApplyAsync(p, ownerUid,
                () => client.PolicyV1.ReadNamespacedPodDisruptionBudgetAsync(name, ns, cancellationToken: ct),
                o => client.PolicyV1.CreateNamespacedPodDisruptionBudgetAsync(o, ns, cancellationToken: ct),
                o => client.PolicyV1.ReplaceNamespacedPodDisruptionBudgetAsync(o, name, ns, cancellationToken: ct)),
            V1HttpRoute r => ApplyAsync(r, ownerUid,
                async () => Convert<V1HttpRoute>(await client.CustomObjects.GetNamespacedCustomObjectAsync("gateway.networking.k8s.io", "v1", ns, "httproutes", name, ct).ConfigureAwait(false)),
                async o => Convert<V1HttpRoute>(await client.CustomObjects.CreateNamespacedCustomObjectAsync(o, "gateway.networking.k8s.io", "v1", ns, "httproutes", cancellationToken: ct).ConfigureAwait(false)),
                async o => Convert<V1HttpRoute>(await client.CustomObjects.ReplaceNamespacedCustomObjectAsync(o, "gateway.networking.k8s.io", "v1", ns, "httproutes", name, cancellationToken: ct).ConfigureAwait(false))),
            _ => throw new ArgumentException($"the operator does not apply {desired.Kind} objects", nameof(desired)),
        };
    }

    private static async Task<(Outcome, IKubernetesObject<V1ObjectMeta>)> ApplyAsync<T>(T desired, string ownerUid, Func<Task<T>> read, Func<T, Task<T>> create, Func<T, Task<T>> replace)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        T stored;
        try
        {
            stored = await read().ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (CustomResources.IsNotFound(e))
        {
            return (Outcome.Created, await create(desired).ConfigureAwait(false));
        }

        if (stored.Metadata.OwnerReferences?.Any(o => o.Uid == ownerUid && o.Controller == true) != true)
        {
            return (Outcome.NotOwned, stored);
        }

        var wanted = KubernetesManifests.ToJsonNode(desired);
        var current = KubernetesManifests.ToJsonNode(stored);
        wanted.Remove("status");
        if (Contains(current, wanted))
        {
            return (Outcome.Unchanged, stored);
        }

        // The stored object with the rendered fields laid over it (what the server defaulted stays), at its version.
        var merged = (JsonObject)JsonPatchMerge(current, wanted);
        merged["metadata"]!["resourceVersion"] = stored.Metadata.ResourceVersion;
        return (Outcome.Updated, await replace(KubernetesJson.Deserialize<T>(merged.ToJsonString())).ConfigureAwait(false));
    }

    /// <summary>Whether every field of <paramref name="wanted"/> is in <paramref name="current"/> with the same value (arrays compared whole, element-wise).</summary>
    internal static bool Contains(JsonNode? current, JsonNode? wanted) => (current, wanted) switch
    {
        (_, null) => true,
        (JsonObject c, JsonObject w) => w.All(p => Contains(c[p.Key], p.Value)),
        (JsonArray c, JsonArray w) => c.Count == w.Count && c.Zip(w).All(pair => Contains(pair.First, pair.Second)),
        _ => JsonNode.DeepEquals(current, wanted),
    };

    private static JsonNode JsonPatchMerge(JsonNode current, JsonNode wanted)
    {
        if (current is not JsonObject c || wanted is not JsonObject w)
        {
            return wanted.DeepClone();
        }

        var result = (JsonObject)c.DeepClone();
        foreach (var (key, value) in w)
        {
            result[key] = value is null ? null : result[key] is { } existing ? JsonPatchMerge(existing, value) : value.DeepClone();
        }

        return result;
    }

    private static T Convert<T>(object customObject) => KubernetesJson.Deserialize<T>(CustomResources.ToNode(customObject).ToJsonString());
}
