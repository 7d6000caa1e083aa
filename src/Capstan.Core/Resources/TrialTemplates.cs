using System.Text.Json;
using System.Text.Json.Nodes;

namespace Capstan.Core.Resources;

/// <summary>
/// The <c>${trialParameters.name}</c> placeholders of an experiment's trial spec: found in every text field (command,
/// args, env values, params, image, working folder, ...), and expanded with one trial's values by the same rule as
/// <see cref="ParamSubstitution"/>. Katib's <c>${trialSpec.Name}</c> and <c>${trialSpec.Namespace}</c> name the trial.
/// </summary>
public static class TrialTemplates
{
    public const string TrialSpecPrefix = "trialSpec";

    /// <summary>Every placeholder with the field path of the text it is in, relative to <paramref name="root"/>.</summary>
    public static IReadOnlyList<(string Path, string Name)> Placeholders(TrainJobSpec spec, string root)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var found = new List<(string, string)>();
        Walk(ToNode(spec), root, (path, text) =>
        {
            foreach (var name in ParamSubstitution.Names(text, ParamSubstitution.TrialParameters))
            {
                found.Add((path, name));
            }

            return text;
        });
        return found;
    }

    /// <summary>Katib's trial meta placeholders used in the spec (<c>${trialSpec.Name}</c>), with their paths.</summary>
    public static IReadOnlyList<(string Path, string Name)> MetaPlaceholders(TrainJobSpec spec, string root)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var found = new List<(string, string)>();
        Walk(ToNode(spec), root, (path, text) =>
        {
            foreach (var name in ParamSubstitution.Names(text, TrialSpecPrefix))
            {
                found.Add((path, name));
            }

            return text;
        });
        return found;
    }

    /// <summary>A copy of <paramref name="spec"/> with every placeholder replaced; throws when one names no value.</summary>
    public static TrainJobSpec Expand(TrainJobSpec spec, IReadOnlyDictionary<string, string> values, IReadOnlyDictionary<string, string> meta)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(meta);
        var node = Walk(ToNode(spec), "", (_, text) =>
        {
            var expanded = ParamSubstitution.Expand(text, ParamSubstitution.TrialParameters, values);
            return ParamSubstitution.Names(expanded, TrialSpecPrefix).Count > 0
                ? ParamSubstitution.Expand(expanded, TrialSpecPrefix, meta)
                : expanded;
        });
        return node.Deserialize<TrainJobSpec>(ResourceSerializer.JsonOptions)!;
    }

    private static JsonNode ToNode(TrainJobSpec spec) => JsonSerializer.SerializeToNode(spec, ResourceSerializer.JsonOptions)!;

    private static JsonNode Walk(JsonNode node, string path, Func<string, string, string> text)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, child) in obj.ToList())
                {
                    if (child is not null)
                    {
                        // Map keys (params, nodeSelector, resource names) stay as they are; only values are texts.
                        var childPath = path.EndsWith("params", StringComparison.Ordinal) || path.EndsWith("nodeSelector", StringComparison.Ordinal)
                            ? FieldPath.Key(path, key)
                            : FieldPath.Field(path, key);
                        obj[key] = Walk(child.DeepClone(), childPath, text);
                    }
                }

                return obj;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    if (array[i] is { } child)
                    {
                        array[i] = Walk(child.DeepClone(), FieldPath.Index(path, i), text);
                    }
                }

                return array;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                return JsonValue.Create(text(path, value.GetValue<string>()));
            default:
                return node;
        }
    }
}
