using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Capstan.Runtime.Kubernetes.Models;
using k8s;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Tests.Validation;

/// <summary>
/// Check (a): an object deserialises into its KubernetesClient model with unknown fields and wrong types failing, and
/// serialises back to the same JSON, so nothing the API server would reject or drop is in it.
/// </summary>
internal static class StrictModels
{
    private static readonly Dictionary<(string ApiVersion, string Kind), Type> s_types = Types();
    private static readonly JsonSerializerOptions s_strict = StrictOptions();

    public static Type? TypeOf(string apiVersion, string kind) => s_types.GetValueOrDefault((apiVersion, kind));

    /// <summary>What is wrong with <paramref name="json"/> as its kind; empty when it is a valid instance.</summary>
    public static IReadOnlyList<string> Check(JsonObject json)
    {
        var apiVersion = json["apiVersion"]?.GetValue<string>() ?? "";
        var kind = json["kind"]?.GetValue<string>() ?? "";
        var type = TypeOf(apiVersion, kind);
        if (type is null)
        {
            return [$"{apiVersion} {kind}: no KubernetesClient model"];
        }

        object? model;
        try
        {
            model = JsonSerializer.Deserialize(json.ToJsonString(), type, s_strict);
        }
        catch (JsonException e)
        {
            return [$"{apiVersion} {kind}: {e.Message}"];
        }

        var back = JsonNode.Parse(KubernetesJson.Serialize(model!))!;
        return JsonNode.DeepEquals(Normalize(json), Normalize(back))
            ? []
            : [$"{apiVersion} {kind}: does not survive a round trip through {type.Name}:\n{json.ToJsonString()}\n{back.ToJsonString()}"];
    }

    /// <summary>Quantities and timestamps come back in their canonical form; compare those as strings of the same value.</summary>
    private static JsonNode? Normalize(JsonNode? node) => node switch
    {
        JsonObject obj => new JsonObject(obj.Select(p => KeyValuePair.Create(p.Key, Normalize(p.Value)))),
        JsonArray array => new JsonArray([.. array.Select(Normalize)]),
        JsonValue value when value.GetValueKind() == JsonValueKind.String && ResourceQuantityText(value.GetValue<string>()) is { } canonical => JsonValue.Create(canonical),
        null => null,
        _ => node.DeepClone(),
    };

    private static string? ResourceQuantityText(string text)
    {
        if (text.Length == 0 || !(char.IsAsciiDigit(text[0]) || text[0] is '.' or '+' or '-'))
        {
            return null;
        }

        try
        {
            return new ResourceQuantity(text).CanonicalizeString();
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            return null;
        }
    }

    /// <summary>A copy of the client's own JSON options (its converters for quantities, int-or-string, dates), with unmapped members disallowed.</summary>
    private static JsonSerializerOptions StrictOptions()
    {
        JsonSerializerOptions? copy = null;
        KubernetesJson.AddJsonOptions(options => copy = new JsonSerializerOptions(options));
        copy!.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        copy.MakeReadOnly(populateMissingResolver: true);
        return copy;
    }

    private static Dictionary<(string, string), Type> Types()
    {
        var types = new Dictionary<(string, string), Type>();
        foreach (var type in typeof(V1Pod).Assembly.GetTypes().Concat(typeof(V1HttpRoute).Assembly.GetTypes()))
        {
            if (type.GetCustomAttribute<KubernetesEntityAttribute>() is { Kind: { Length: > 0 } kind } entity)
            {
                var apiVersion = string.IsNullOrEmpty(entity.Group) ? entity.ApiVersion : $"{entity.Group}/{entity.ApiVersion}";
                types.TryAdd((apiVersion, kind), type);
            }
        }

        return types;
    }
}
