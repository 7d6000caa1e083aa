using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Capstan.Runtime.Kubernetes.Rendering;

/// <summary>
/// Kubernetes objects as the API server reads them: JSON through the KubernetesClient's own serializer (quantities,
/// int-or-string, timestamps in its formats), and YAML as the same tree, one document per object.
/// </summary>
public static class KubernetesManifests
{
    public static JsonObject ToJsonNode(object kubernetesObject) =>
        JsonNode.Parse(KubernetesJson.Serialize(kubernetesObject))!.AsObject();

    public static string ToJson(object kubernetesObject) => KubernetesJson.Serialize(kubernetesObject);

    /// <summary>Multi-document YAML, documents separated by <c>---</c>, as <c>kubectl apply -f</c> and GitOps tools read it.</summary>
    public static string ToYaml(IEnumerable<object> objects)
    {
        ArgumentNullException.ThrowIfNull(objects);
        return string.Join("---\n", objects.Select(o => ToYaml(ToJsonNode(o))));
    }

    /// <summary>One JSON tree as a YAML document.</summary>
    public static string ToYaml(JsonNode root)
    {
        ArgumentNullException.ThrowIfNull(root);
        using var writer = new StringWriter { NewLine = "\n" };
        var emitter = new Emitter(writer, EmitterSettings.Default.WithBestWidth(int.MaxValue).WithNewLine("\n"));
        new YamlStream(new YamlDocument(ToYamlNode(root))).Save(emitter, assignAnchors: false);
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

    /// <summary>A string scalar, quoted when a YAML 1.1 or 1.2 reader (kubectl's among them) would take it for something else.</summary>
    private static YamlScalarNode String(string text) =>
        new(text) { Style = NeedsQuotes(text) ? ScalarStyle.DoubleQuoted : text.Contains('\n', StringComparison.Ordinal) ? ScalarStyle.Literal : ScalarStyle.Any };

    private static bool NeedsQuotes(string text) =>
        text.Length == 0
        || text is "~" or "null" or "Null" or "NULL" or "true" or "True" or "TRUE" or "false" or "False" or "FALSE"
            or "yes" or "Yes" or "YES" or "no" or "No" or "NO" or "on" or "On" or "ON" or "off" or "Off" or "OFF" or "y" or "Y" or "n" or "N"
        || double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _)
        || text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) || text.StartsWith("0o", StringComparison.OrdinalIgnoreCase)
        || text is ".inf" or "-.inf" or ".nan" or ".Inf" or ".NaN" or "-.Inf"
        || (text.Contains(':', StringComparison.Ordinal) && text.Split(':').All(part => part.Length > 0 && part.All(char.IsAsciiDigit)));
}
