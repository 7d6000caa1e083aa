using Capstan.Core.Resources;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Rendering;

/// <summary>The metadata of an object a custom resource owns: its namespace, labels and controller owner reference.</summary>
internal static class OwnedMetadata
{
    public static string NamespaceOf(Resource owner, RenderOptions options) =>
        options.Namespace ?? owner.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;

    /// <summary>The label a controller selects the owner's objects with: <c>capstan.dev/trainjob: NAME</c>.</summary>
    public static KeyValuePair<string, string> OwnerLabel(Resource owner) => owner.Kind switch
    {
        TrainJob.KindName => new(CapstanLabels.TrainJob, owner.Metadata.Name!),
        InferenceService.KindName => new(CapstanLabels.InferenceService, owner.Metadata.Name!),
        _ => throw new ArgumentException($"kind '{owner.Kind}' owns no rendered objects", nameof(owner)),
    };

    /// <summary>The resource's own labels, then the recommended <c>app.kubernetes.io/*</c> set and the <c>capstan.dev/*</c> set.</summary>
    public static Dictionary<string, string> Labels(Resource owner, string component)
    {
        var labels = new Dictionary<string, string>(owner.Metadata.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        labels[CapstanLabels.Name] = owner.Kind.ToLowerInvariant();
        labels[CapstanLabels.Instance] = owner.Metadata.Name!;
        labels[CapstanLabels.Component] = component;
        labels.TryAdd(CapstanLabels.PartOf, CapstanLabels.Product);
        labels[CapstanLabels.ManagedBy] = CapstanLabels.Manager;
        labels[CapstanLabels.Kind] = owner.Kind;
        var (key, value) = OwnerLabel(owner);
        labels[key] = value;
        labels[CapstanLabels.Role] = component;
        return labels;
    }

    public static V1ObjectMeta For(Resource owner, string name, IDictionary<string, string> labels, RenderOptions options)
    {
        var annotations = owner.Metadata.Generation is { } generation
            ? new Dictionary<string, string>(StringComparer.Ordinal) { [CapstanLabels.Generation] = generation.ToString(System.Globalization.CultureInfo.InvariantCulture) }
            : null;
        return new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = NamespaceOf(owner, options),
            Labels = new Dictionary<string, string>(labels, StringComparer.Ordinal),
            Annotations = annotations,
            OwnerReferences = OwnerReferences(owner),
        };
    }

    /// <summary>
    /// The custom resource as the controlling owner, so deleting it garbage-collects what it owns (foreground deletion
    /// waits for them). Only a stored resource has a uid: a file rendered with <c>capstan render</c> gets none, and
    /// the objects applied from it belong to no one.
    /// </summary>
    public static IList<V1OwnerReference>? OwnerReferences(Resource owner) =>
        string.IsNullOrEmpty(owner.Metadata.Uid)
            ? null
            : [
                new V1OwnerReference
                {
                    ApiVersion = owner.ApiVersion,
                    Kind = owner.Kind,
                    Name = owner.Metadata.Name!,
                    Uid = owner.Metadata.Uid,
                    Controller = true,
                    BlockOwnerDeletion = true,
                },
            ];
}
