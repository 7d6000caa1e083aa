using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Capstan.Runtime.Kubernetes.Tests.Validation;

/// <summary>
/// YAML documents as kubectl sends them to the API server: sigs.k8s.io/yaml converts YAML to JSON with go-yaml's YAML
/// 1.1 rules, so a plain <c>0.01</c> is a number, <c>yes</c> a boolean and <c>~</c> null; quoted scalars stay strings.
/// </summary>
internal static partial class KubernetesYamlReader
{
    public static IReadOnlyList<JsonObject> ReadAll(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return [.. stream.Documents.Where(d => d.RootNode is YamlMappingNode).Select(d => ToJson(d.RootNode)!.AsObject())];
    }

    public static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode mapping => new JsonObject(mapping.Children.Select(c => KeyValuePair.Create(((YamlScalarNode)c.Key).Value!, ToJson(c.Value)))),
        YamlSequenceNode sequence => new JsonArray([.. sequence.Children.Select(ToJson)]),
        YamlScalarNode scalar => Scalar(scalar),
        _ => throw new InvalidOperationException($"unsupported YAML node at {node.Start}"),
    };

    private static JsonNode? Scalar(YamlScalarNode scalar)
    {
        var text = scalar.Value ?? "";
        if (scalar.Style is not (ScalarStyle.Plain or ScalarStyle.Any))
        {
            return JsonValue.Create(text);
        }

        if (text is "" or "~" or "null" or "Null" or "NULL")
        {
            return null;
        }

        if (Bool().IsMatch(text))
        {
            return JsonValue.Create(text.ToLowerInvariant() is "true" or "yes" or "on" or "y");
        }

        if (Integer().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
        {
            return JsonValue.Create(integer);
        }

        if (Float().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            return JsonValue.Create(number);
        }

        return JsonValue.Create(text);
    }

    [GeneratedRegex("^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")]
    private static partial Regex Bool();

    [GeneratedRegex("^[-+]?(0|[1-9][0-9_]*)$")]
    private static partial Regex Integer();

    [GeneratedRegex(@"^[-+]?([0-9][0-9_]*)?\.[0-9.]*([eE][-+][0-9]+)?$|^[-+]?[0-9][0-9_]*([eE][-+]?[0-9]+)$")]
    private static partial Regex Float();
}
