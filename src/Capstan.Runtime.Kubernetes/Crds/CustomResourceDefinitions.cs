using System.Reflection;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Rendering;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Crds;

/// <summary>
/// The <c>apiextensions.k8s.io/v1</c> CustomResourceDefinitions of <c>capstan.dev</c>, generated from the resource
/// classes of <see cref="ResourceKinds"/>: one per kind that has a class, namespaced, version v1alpha1 served and stored,
/// a structural schema (<see cref="CrdSchema"/>), the status subresource (the operator writes status, users the spec),
/// printer columns, the short names of <see cref="KindNames"/> and the category <c>capstan</c>
/// (<c>kubectl get capstan</c> lists them all).
/// </summary>
public static class CustomResourceDefinitions
{
    public const string Group = "capstan.dev";
    public const string Version = "v1alpha1";
    public const string Category = "capstan";

    /// <summary>The kind-specific columns <c>kubectl get</c> shows between the name and the phase; each JSON path must exist in the kind's class.</summary>
    private static readonly Dictionary<string, V1CustomResourceColumnDefinition[]> s_columns = new(StringComparer.Ordinal)
    {
        [TrainJob.KindName] =
        [
            Column("Replicas", "integer", ".spec.replicas"),
            Column("Attempts", "integer", ".status.attempts"),
            Column("Run", "string", ".status.runId", priority: 1),
            Column("Image", "string", ".spec.image", priority: 1),
        ],
        [InferenceService.KindName] =
        [
            Column("Model", "string", ".spec.model"),
            Column("URL", "string", ".status.url"),
            Column("Canary", "string", ".spec.canary.model", priority: 1),
            Column("Canary%", "integer", ".spec.canary.trafficPercent", priority: 1),
        ],
        ["Experiment"] =
        [
            Column("Trials", "integer", ".status.trials"),
            Column("Succeeded", "integer", ".status.trialsSucceeded"),
            Column("Failed", "integer", ".status.trialsFailed", priority: 1),
        ],
    };

    /// <summary>Every kind with a class, in the order of <see cref="ResourceKinds.Names"/>.</summary>
    public static IReadOnlyList<V1CustomResourceDefinition> All() =>
        [.. ResourceKinds.Names.Where(k => ResourceKinds.TypeOf(k) is not null).Select(k => For(k, ResourceKinds.TypeOf(k)!))];

    /// <summary><c>trainjobs.capstan.dev</c>: the object name, and the file name under deploy/kubernetes/crds/ with <c>.yaml</c>.</summary>
    public static string NameOf(string kind) => $"{KindNames.Plural(kind)}.{Group}";

    public static V1CustomResourceDefinition For(string kind, Type resourceType)
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(resourceType);
        if (!typeof(Resource).IsAssignableFrom(resourceType))
        {
            throw new ArgumentException($"{resourceType} is not a Capstan resource", nameof(resourceType));
        }

        var schema = new V1JSONSchemaProps
        {
            Type = "object",
            Description = $"{kind} of {Resource.V1Alpha1}: the same document `capstan run -f` runs on a laptop.",
            Properties = new Dictionary<string, V1JSONSchemaProps>(StringComparer.Ordinal)
            {
                ["apiVersion"] = new() { Type = "string" },
                ["kind"] = new() { Type = "string" },
                // As every CRD: the API server validates ObjectMeta itself.
                ["metadata"] = new() { Type = "object" },
                ["spec"] = CrdSchema.For(resourceType.GetProperty("Spec")!.PropertyType),
                ["status"] = CrdSchema.For(resourceType.GetProperty("Status")!.PropertyType),
            },
        };

        var shortName = KindNames.ShortName(kind);
        return new V1CustomResourceDefinition
        {
            ApiVersion = "apiextensions.k8s.io/v1",
            Kind = "CustomResourceDefinition",
            Metadata = new V1ObjectMeta
            {
                Name = NameOf(kind),
                Labels = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    [CapstanLabels.PartOf] = CapstanLabels.Product,
                    [CapstanLabels.Component] = "crd",
                },
            },
            Spec = new V1CustomResourceDefinitionSpec
            {
                Group = Group,
                Scope = "Namespaced",
                Names = new V1CustomResourceDefinitionNames
                {
                    Kind = kind,
                    ListKind = kind + "List",
                    Plural = KindNames.Plural(kind),
                    Singular = kind.ToLowerInvariant(),
                    ShortNames = shortName is null ? null : [shortName],
                    Categories = [Category],
                },
                Versions =
                [
                    new V1CustomResourceDefinitionVersion
                    {
                        Name = Version,
                        Served = true,
                        Storage = true,
                        Schema = new V1CustomResourceValidation { OpenAPIV3Schema = schema },
                        Subresources = new V1CustomResourceSubresources { Status = new object() },
                        AdditionalPrinterColumns = Columns(kind, resourceType),
                    },
                ],
            },
        };
    }

    private static List<V1CustomResourceColumnDefinition> Columns(string kind, Type resourceType)
    {
        var columns = new List<V1CustomResourceColumnDefinition>();
        columns.AddRange(s_columns.GetValueOrDefault(kind) ?? []);
        if (ResolvePath(resourceType, ".status.phase") is not null)
        {
            columns.Insert(0, Column("Phase", "string", ".status.phase"));
        }

        columns.Add(Column("Age", "date", ".metadata.creationTimestamp"));
        foreach (var column in columns.Where(c => !c.JsonPath.StartsWith(".metadata.", StringComparison.Ordinal)))
        {
            _ = ResolvePath(resourceType, column.JsonPath)
                ?? throw new InvalidOperationException($"printer column {column.Name} of {kind}: {resourceType.Name} has no field {column.JsonPath}");
        }

        return columns;
    }

    /// <summary>The property a <c>.a.b.c</c> path names in the class's JSON, or null.</summary>
    private static PropertyInfo? ResolvePath(Type type, string jsonPath)
    {
        PropertyInfo? property = null;
        foreach (var segment in jsonPath.TrimStart('.').Split('.'))
        {
            var current = property is null ? type : Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            property = CrdSchema.Fields(current).FirstOrDefault(f => f.Name == segment).Property;
            if (property is null)
            {
                return null;
            }
        }

        return property;
    }

    private static V1CustomResourceColumnDefinition Column(string name, string type, string jsonPath, int? priority = null) =>
        new() { Name = name, Type = type, JsonPath = jsonPath, Priority = priority };
}
