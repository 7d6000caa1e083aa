using System.Text.Json.Nodes;
using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Cluster;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>Kubernetes Events about the Capstan resources the operator's controllers reconcile.</summary>
internal static class ResourceEvents
{
    /// <summary>
    /// Records an Event whose involved object is the resource <paramref name="raw"/> (as the API server returned it).
    /// An Event is a record for people: failing to write one is logged and never fails the reconcile.
    /// </summary>
    public static async Task RecordAsync(ClusterEvents events, ILogger logger, JsonObject raw, string kind, string type, string reason, string message, CancellationToken cancellationToken)
    {
        var metadata = raw["metadata"]!;
        var involved = new V1ObjectReference
        {
            ApiVersion = Resource.V1Alpha1,
            Kind = kind,
            Name = metadata["name"]!.GetValue<string>(),
            NamespaceProperty = metadata["namespace"]!.GetValue<string>(),
            Uid = metadata["uid"]?.GetValue<string>(),
            ResourceVersion = metadata["resourceVersion"]?.GetValue<string>(),
        };
        try
        {
            await events.RecordAsync(involved, type, reason, message, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e)
        {
            Log.EventNotRecorded(logger, reason, involved.Name, e);
        }
    }
}
