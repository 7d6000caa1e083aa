using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Capstan.Core.Resources;

/// <summary>
/// Writes resources as Kubernetes does: camelCase field names, nulls omitted, enums and
/// quantities as strings. YAML is the same tree as JSON, so both show the same fields and defaults.
/// </summary>
public static class ResourceSerializer
{
    public static JsonSerializerOptions JsonOptions { get; } = CreateOptions();

    public static string ToJson(Resource resource) => ToJsonNode(resource).ToJsonString(JsonOptions);

    public static JsonObject ToJsonNode(Resource resource)
    {
        ArgumentNullException.ThrowIfNull(resource);
        return JsonSerializer.SerializeToNode(resource, resource.GetType(), JsonOptions)!.AsObject();
    }

    /// <summary>A resource from the JSON this class writes (the store's and the API's format); its kind picks the class.</summary>
    public static Resource FromJson(string json)
    {
        var kind = JsonNode.Parse(json)?["kind"]?.GetValue<string>() ?? throw CapstanException.Invalid("missing required field 'kind'");
        var type = ResourceKinds.TypeOf(kind) ?? throw CapstanException.Invalid($"unknown kind '{kind}'");
        return (Resource)JsonSerializer.Deserialize(json, type, JsonOptions)!;
    }

    public static string ToYaml(Resource resource) => ToYaml([resource]);

    /// <summary>Several resources as one multi-document YAML text.</summary>
    public static string ToYaml(IEnumerable<Resource> resources)
    {
        ArgumentNullException.ThrowIfNull(resources);
        var documents = resources.Select(resource => WriteDocument(ToYamlNode(ToJsonNode(resource))));
        return string.Join("---\n", documents);
    }

    private static string WriteDocument(YamlNode root)
    {
        using var writer = new StringWriter { NewLine = "\n" };
        var emitter = new Emitter(writer, EmitterSettings.Default.WithBestWidth(int.MaxValue).WithNewLine("\n"));
        new YamlStream(new YamlDocument(root)).Save(emitter, assignAnchors: false);
        var text = writer.ToString();
        return text.EndsWith("...\n", StringComparison.Ordinal) ? text[..^4] : text;
    }

    private static YamlNode ToYamlNode(JsonNode? node) => node switch
    {
        JsonObject obj => new YamlMappingNode(obj.Select(p => new KeyValuePair<YamlNode, YamlNode>(new YamlScalarNode(p.Key), ToYamlNode(p.Value)))),
        JsonArray array => new YamlSequenceNode(array.Select(ToYamlNode)),
        JsonValue value when value.GetValueKind() == JsonValueKind.String => String(value.GetValue<string>()),
        null => new YamlScalarNode("null") { Style = ScalarStyle.Plain },
        _ => new YamlScalarNode(node.ToJsonString()) { Style = ScalarStyle.Plain },
    };

    private static YamlScalarNode String(string text) =>
        new(text) { Style = YamlScalars.NeedsQuotes(text) ? ScalarStyle.DoubleQuoted : ScalarStyle.Any };

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        };
        options.Converters.Add(new JsonStringEnumConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
