using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Models;

/// <summary>
/// Volcano's PodGroup (<c>scheduling.volcano.sh/v1beta1</c>): the scheduler binds none of the group's pods until
/// <see cref="V1Beta1PodGroupSpec.MinMember"/> of them fit at once. The fields Capstan sets, as Volcano's API defines them.
/// </summary>
[KubernetesEntity(Group = KubeGroup, Kind = KubeKind, ApiVersion = KubeApiVersion, PluralName = KubePluralName)]
public sealed class V1Beta1PodGroup : IKubernetesObject<V1ObjectMeta>, ISpec<V1Beta1PodGroupSpec>
{
    public const string KubeGroup = "scheduling.volcano.sh";
    public const string KubeKind = "PodGroup";
    public const string KubeApiVersion = "v1beta1";
    public const string KubePluralName = "podgroups";

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = KubeGroup + "/" + KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public V1Beta1PodGroupSpec Spec { get; set; } = new();
}

public sealed class V1Beta1PodGroupSpec
{
    /// <summary>Pods that must be schedulable together before any is bound.</summary>
    [JsonPropertyName("minMember")]
    public int? MinMember { get; set; }

    /// <summary>Resources the whole gang needs, so Volcano can reject a group that can never fit before binding any pod.</summary>
    [JsonPropertyName("minResources")]
    public IDictionary<string, ResourceQuantity>? MinResources { get; set; }

    [JsonPropertyName("queue")]
    public string? Queue { get; set; }

    [JsonPropertyName("priorityClassName")]
    public string? PriorityClassName { get; set; }
}
