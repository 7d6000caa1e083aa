using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Models;

/// <summary>
/// The Gateway API's HTTPRoute (<c>gateway.networking.k8s.io/v1</c>): traffic from a Gateway split by weight over
/// backend Services. The fields Capstan sets, as the Gateway API defines them.
/// </summary>
[KubernetesEntity(Group = KubeGroup, Kind = KubeKind, ApiVersion = KubeApiVersion, PluralName = KubePluralName)]
public sealed class V1HttpRoute : IKubernetesObject<V1ObjectMeta>, ISpec<V1HttpRouteSpec>
{
    public const string KubeGroup = "gateway.networking.k8s.io";
    public const string KubeKind = "HTTPRoute";
    public const string KubeApiVersion = "v1";
    public const string KubePluralName = "httproutes";

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = KubeGroup + "/" + KubeApiVersion;

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KubeKind;

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public V1HttpRouteSpec Spec { get; set; } = new();
}

public sealed class V1HttpRouteSpec
{
    [JsonPropertyName("parentRefs")]
    public IList<V1HttpRouteParentRef>? ParentRefs { get; set; }

    [JsonPropertyName("hostnames")]
    public IList<string>? Hostnames { get; set; }

    [JsonPropertyName("rules")]
    public IList<V1HttpRouteRule>? Rules { get; set; }
}

/// <summary>The Gateway (or other parent) a route attaches to.</summary>
public sealed class V1HttpRouteParentRef
{
    [JsonPropertyName("group")]
    public string? Group { get; set; }

    [JsonPropertyName("kind")]
    public string? Kind { get; set; }

    [JsonPropertyName("name")]
    public string Name { get; set; } = "";

    [JsonPropertyName("namespace")]
    public string? NamespaceProperty { get; set; }

    [JsonPropertyName("sectionName")]
    public string? SectionName { get; set; }
}

public sealed class V1HttpRouteRule
{
    [JsonPropertyName("matches")]
    public IList<V1HttpRouteMatch>? Matches { get; set; }

    [JsonPropertyName("backendRefs")]
    public IList<V1HttpBackendRef>? BackendRefs { get; set; }
}

public sealed class V1HttpRouteMatch
{
    [JsonPropertyName("path")]
    public V1HttpPathMatch? Path { get; set; }
}

public sealed class V1HttpPathMatch
{
    /// <summary><c>Exact</c>, <c>PathPrefix</c> or <c>RegularExpression</c>.</summary>
    [JsonPropertyName("type")]
    public string? Type { get; set; }

    [JsonPropertyName("value")]
    public string? Value { get; set; }
}

/// <summary>A Service behind the route and its share: a request goes to a backend with probability weight / Σ weights.</summary>
public sealed class V1HttpBackendRef
{
    [JsonPropertyName("group")]
    public string? Group { get; set; }

    [JsonPropertyName("kind")]
    public string? Kind { get; set; }

    [JsonPropertyName("name")]
    public string Name { get; set; } = "";

    [JsonPropertyName("namespace")]
    public string? NamespaceProperty { get; set; }

    [JsonPropertyName("port")]
    public int? Port { get; set; }

    [JsonPropertyName("weight")]
    public int? Weight { get; set; }
}
