using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Cluster;

/// <summary>
/// Kubernetes Events (<c>core/v1</c>) about an object, as client-go's recorder writes them: one Event per object, type,
/// reason and message, named after the object, whose <c>count</c> and <c>lastTimestamp</c> move when it happens again,
/// so <c>kubectl describe</c> and <c>kubectl get events</c> show it as they show any controller's.
/// </summary>
public sealed class ClusterEvents(IKubernetes client, string component, string? instance = null, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

    public async Task<Corev1Event> RecordAsync(V1ObjectReference involved, string type, string reason, string message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(involved);
        var now = _time.GetUtcNow().UtcDateTime;
        var name = $"{involved.Name}.{Fingerprint(involved.Uid, type, reason, message)}";
        var @event = new Corev1Event
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = involved.NamespaceProperty },
            InvolvedObject = involved,
            Type = type,
            Reason = reason,
            Message = message,
            Count = 1,
            FirstTimestamp = now,
            LastTimestamp = now,
            Source = new V1EventSource { Component = component },
            ReportingComponent = component,
            ReportingInstance = instance,
        };
        try
        {
            var created = await client.CoreV1.CreateNamespacedEventAsync(@event, involved.NamespaceProperty, cancellationToken: cancellationToken).ConfigureAwait(false);
            lock (_counts)
            {
                _counts[name] = 1;
            }

            return created;
        }
        catch (HttpOperationException e) when (CustomResources.IsConflict(e))
        {
            // Seen before: count it again on the existing Event with a patch (what the operator's RBAC allows, as
            // client-go's recorder does), from the count this process last wrote.
            int count;
            lock (_counts)
            {
                count = _counts[name] = _counts.GetValueOrDefault(name, 1) + 1;
            }

            var patch = new JsonObject { ["count"] = count, ["lastTimestamp"] = now.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) };
            return await client.CoreV1.PatchNamespacedEventAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), name, involved.NamespaceProperty, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The Events about one object, oldest first.</summary>
    public async Task<IReadOnlyList<Corev1Event>> ListAsync(string @namespace, string? uid, string kind, string name, CancellationToken cancellationToken)
    {
        var list = await client.CoreV1.ListNamespacedEventAsync(@namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        return [.. list.Items
            .Where(e => e.InvolvedObject?.Kind == kind && e.InvolvedObject.Name == name && (uid is null || e.InvolvedObject.Uid is null || e.InvolvedObject.Uid == uid))
            .OrderBy(e => e.FirstTimestamp ?? e.EventTime ?? DateTime.MinValue)];
    }

    private static string Fingerprint(string? uid, string type, string reason, string message)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{uid}\n{type}\n{reason}\n{message}"));
        return Convert.ToHexStringLower(hash.AsSpan(0, 8));
    }
}
