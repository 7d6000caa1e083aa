using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Crds;

/// <summary>
/// A structural OpenAPI v3 schema for a C# type, read the way the resource's JSON is written: the wire names
/// (<c>JsonPropertyName</c> or camelCase), enums as their names, <see cref="ResourceQuantity"/> and
/// <see cref="IntOrString"/> as Kubernetes' int-or-string, maps as <c>additionalProperties</c>, lists as <c>items</c>.
/// The KubernetesClient types a resource embeds (affinity, tolerations, env, resources) get their full schema too, so
/// the API server checks them as it checks a Pod; their required fields come from <see cref="s_kubernetesRequired"/>,
/// the Kubernetes OpenAPI's lists, as the client's models do not mark them.
/// </summary>
internal static class CrdSchema
{
    /// <summary>controller-gen's pattern for <c>resource.Quantity</c>.</summary>
    public const string QuantityPattern = @"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

    /// <summary>
    /// Required fields of the embedded Kubernetes types, as the Kubernetes OpenAPI (v1.33) lists them. A test checks
    /// these against the schemas of the kubernetes-models validators, so a new field the client adds cannot drift silently.
    /// </summary>
    internal static readonly IReadOnlyDictionary<Type, string[]> s_kubernetesRequired = new Dictionary<Type, string[]>
    {
        [typeof(V1EnvVar)] = ["name"],
        [typeof(V1ConfigMapKeySelector)] = ["key"],
        [typeof(V1SecretKeySelector)] = ["key"],
        [typeof(V1ObjectFieldSelector)] = ["fieldPath"],
        [typeof(V1ResourceFieldSelector)] = ["resource"],
        [typeof(V1FileKeySelector)] = ["key", "path", "volumeName"],
        [typeof(Corev1ResourceClaim)] = ["name"],
        [typeof(V1NodeSelector)] = ["nodeSelectorTerms"],
        [typeof(V1NodeSelectorRequirement)] = ["key", "operator"],
        [typeof(V1PreferredSchedulingTerm)] = ["preference", "weight"],
        [typeof(V1PodAffinityTerm)] = ["topologyKey"],
        [typeof(V1WeightedPodAffinityTerm)] = ["podAffinityTerm", "weight"],
        [typeof(V1LabelSelectorRequirement)] = ["key", "operator"],
    };

    private static readonly NullabilityInfoContext s_nullability = new();
    private static readonly ConcurrentDictionary<Type, IReadOnlyList<(string Name, PropertyInfo Property)>> s_fields = new();

    public static V1JSONSchemaProps For(Type type) => For(type, []);

    /// <summary>The wire-named properties of <paramref name="type"/> that the JSON carries, ordered by name.</summary>
    public static IReadOnlyList<(string Name, PropertyInfo Property)> Fields(Type type) => s_fields.GetOrAdd(type, static t =>
        [.. t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanRead && p.GetIndexParameters().Length == 0 && p.GetCustomAttribute<JsonIgnoreAttribute>() is not { Condition: JsonIgnoreCondition.Always })
            .Select(p => (Name: WireName(p), Property: p))
            .OrderBy(f => f.Name, StringComparer.Ordinal)]);

    public static string WireName(PropertyInfo property) =>
        property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);

    private static V1JSONSchemaProps For(Type type, HashSet<Type> path)
    {
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        if (underlying == typeof(string))
        {
            return new V1JSONSchemaProps { Type = "string" };
        }

        if (underlying == typeof(bool))
        {
            return new V1JSONSchemaProps { Type = "boolean" };
        }

        if (underlying == typeof(int) || underlying == typeof(short) || underlying == typeof(byte))
        {
            return new V1JSONSchemaProps { Type = "integer", Format = "int32" };
        }

        if (underlying == typeof(long))
        {
            return new V1JSONSchemaProps { Type = "integer", Format = "int64" };
        }

        if (underlying == typeof(double) || underlying == typeof(float) || underlying == typeof(decimal))
        {
            return new V1JSONSchemaProps { Type = "number", Format = "double" };
        }

        if (underlying == typeof(DateTimeOffset) || underlying == typeof(DateTime))
        {
            return new V1JSONSchemaProps { Type = "string", Format = "date-time" };
        }

        if (underlying == typeof(byte[]))
        {
            return new V1JSONSchemaProps { Type = "string", Format = "byte" };
        }

        if (underlying.IsEnum)
        {
            // The names JSON writes: a member's JsonStringEnumMemberName (Katib's lower-case "minimize"), else its own.
            var names = underlying.GetFields(BindingFlags.Public | BindingFlags.Static)
                .Select(f => f.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? f.Name);
            return new V1JSONSchemaProps { Type = "string", EnumProperty = [.. names.Cast<object>()] };
        }

        if (underlying == typeof(ResourceQuantity))
        {
            return new V1JSONSchemaProps
            {
                AnyOf = [new V1JSONSchemaProps { Type = "integer" }, new V1JSONSchemaProps { Type = "string" }],
                Pattern = QuantityPattern,
                XKubernetesIntOrString = true,
            };
        }

        if (underlying == typeof(IntOrString))
        {
            return new V1JSONSchemaProps
            {
                AnyOf = [new V1JSONSchemaProps { Type = "integer" }, new V1JSONSchemaProps { Type = "string" }],
                XKubernetesIntOrString = true,
            };
        }

        if (underlying == typeof(JsonNode) || underlying == typeof(JsonObject) || underlying == typeof(JsonElement) || underlying == typeof(object))
        {
            // Free-form JSON, as Katib's trialSpec: kept as given, checked by the controller that reads it.
            return new V1JSONSchemaProps { Type = underlying == typeof(JsonObject) ? "object" : null, XKubernetesPreserveUnknownFields = true };
        }

        if (DictionaryValueType(underlying) is { } valueType)
        {
            return new V1JSONSchemaProps { Type = "object", AdditionalProperties = For(valueType, path) };
        }

        if (ListItemType(underlying) is { } itemType)
        {
            return new V1JSONSchemaProps { Type = "array", Items = For(itemType, path) };
        }

        if (!path.Add(underlying))
        {
            throw new InvalidOperationException($"{underlying.FullName} contains itself: a structural schema cannot be recursive");
        }

        try
        {
            var properties = new Dictionary<string, V1JSONSchemaProps>(StringComparer.Ordinal);
            var required = new List<string>();
            foreach (var (name, property) in Fields(underlying))
            {
                properties[name] = For(property.PropertyType, path);
                if (IsRequired(underlying, name, property))
                {
                    required.Add(name);
                }
            }

            return new V1JSONSchemaProps
            {
                Type = "object",
                Properties = properties,
                Required = required.Count > 0 ? required : null,
            };
        }
        finally
        {
            path.Remove(underlying);
        }
    }

    /// <summary>
    /// A Kubernetes type's field is required when its OpenAPI says so, or when the model has it as a plain value type
    /// (the client makes every optional scalar nullable); a Capstan field when its type is not nullable.
    /// </summary>
    private static bool IsRequired(Type owner, string name, PropertyInfo property)
    {
        if (owner.Namespace == typeof(V1Pod).Namespace)
        {
            return (s_kubernetesRequired.TryGetValue(owner, out var names) && names.Contains(name, StringComparer.Ordinal))
                || (property.PropertyType.IsValueType && Nullable.GetUnderlyingType(property.PropertyType) is null);
        }

        if (property.PropertyType.IsValueType)
        {
            return Nullable.GetUnderlyingType(property.PropertyType) is null;
        }

        return s_nullability.Create(property).ReadState == NullabilityState.NotNull;
    }

    internal static Type? DictionaryValueType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() is var definition
            && (definition == typeof(IDictionary<,>) || definition == typeof(Dictionary<,>) || definition == typeof(IReadOnlyDictionary<,>))
            ? type.GetGenericArguments()[1]
            : null;

    internal static Type? ListItemType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() is var definition
            && (definition == typeof(IList<>) || definition == typeof(List<>) || definition == typeof(IReadOnlyList<>) || definition == typeof(ICollection<>) || definition == typeof(IEnumerable<>))
            ? type.GetGenericArguments()[0]
            : null;
}
