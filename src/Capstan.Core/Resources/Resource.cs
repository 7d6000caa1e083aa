using System.Text.Json.Serialization;

namespace Capstan.Core.Resources;

/// <summary>
/// A declarative Capstan object, shaped like a Kubernetes one: <c>apiVersion</c>, <c>kind</c>,
/// <c>metadata</c>, <c>spec</c> and <c>status</c>. Each kind is a sealed subclass listed in
/// <see cref="ResourceKinds"/>; the same object is read from YAML, stored, served as JSON and
/// (later) written to the cluster as a custom resource.
/// </summary>
public abstract class Resource
{
    public const string V1Alpha1 = "capstan.dev/v1alpha1";

    [JsonPropertyOrder(-3)]
    public string ApiVersion { get; set; } = V1Alpha1;

    [JsonPropertyOrder(-2)]
    public string Kind { get; set; } = "";

    [JsonPropertyOrder(-1)]
    public ResourceMetadata Metadata { get; set; } = new();

    /// <summary>The status without its kind-specific fields, for code that handles every kind alike.</summary>
    [JsonIgnore]
    public abstract ResourceStatus? CommonStatus { get; }

    /// <summary>Fills every optional field a user left out, so what runs is what <c>get -o yaml</c> shows.</summary>
    public virtual void ApplyDefaults()
    {
        Metadata.Namespace ??= ResourceMetadata.DefaultNamespace;
    }

    /// <summary>Checks what a field's type alone cannot: names, ranges, cross-field rules.</summary>
    public virtual void Validate(ResourceValidation validation)
    {
        ArgumentNullException.ThrowIfNull(validation);
        if (string.IsNullOrEmpty(Metadata.Name))
        {
            validation.Error("metadata.name", "missing required field 'name'");
        }
        else if (ResourceNames.Check(Metadata.Name) is { } problem)
        {
            validation.Error("metadata.name", problem);
        }

        if (Metadata.Namespace is { } ns && ResourceNames.Check(ns) is { } nsProblem)
        {
            validation.Error("metadata.namespace", nsProblem);
        }
    }
}

/// <summary>A resource with a typed spec and status.</summary>
public abstract class Resource<TSpec, TStatus> : Resource
    where TSpec : new()
    where TStatus : ResourceStatus
{
    public TSpec Spec { get; set; } = new();

    public TStatus? Status { get; set; }

    [JsonIgnore]
    public override ResourceStatus? CommonStatus => Status;
}

/// <summary>Kubernetes' object metadata, the part Capstan uses. The namespace is the project.</summary>
public sealed class ResourceMetadata
{
    public const string DefaultNamespace = "default";

    public string? Name { get; set; }

    public string? Namespace { get; set; }

    public IDictionary<string, string>? Labels { get; set; }

    public IDictionary<string, string>? Annotations { get; set; }

    public long? Generation { get; set; }

    public string? ResourceVersion { get; set; }

    public string? Uid { get; set; }

    public DateTimeOffset? CreationTimestamp { get; set; }
}
