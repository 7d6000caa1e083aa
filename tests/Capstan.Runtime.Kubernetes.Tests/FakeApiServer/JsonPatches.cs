using System.Text.Json.Nodes;

namespace Capstan.Runtime.Kubernetes.Tests.FakeApiServer;

/// <summary>The patch formats the fake accepts: JSON merge patch (RFC 7386) and JSON patch (RFC 6902: add, remove, replace, test).</summary>
public static class JsonPatches
{
    public const string MergePatch = "application/merge-patch+json";
    public const string JsonPatch = "application/json-patch+json";
    public const string StrategicMergePatch = "application/strategic-merge-patch+json";
    public const string ApplyPatch = "application/apply-patch+yaml";

    /// <summary>RFC 7386: objects merge key by key, null removes a key, anything else (arrays included) replaces.</summary>
    public static JsonNode? Merge(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        var result = target is JsonObject targetObject ? (JsonObject)targetObject.DeepClone() : [];
        foreach (var (key, value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(key);
            }
            else
            {
                result[key] = Merge(result[key], value);
            }
        }

        return result;
    }

    /// <summary>RFC 6902 operations add, remove, replace and test; a failed test or a missing path is a 422 as on the real server.</summary>
    public static JsonNode Apply(JsonNode target, JsonArray operations, Func<string, ApiException> invalid)
    {
        var document = target.DeepClone();
        foreach (var operation in operations)
        {
            var op = operation?["op"]?.GetValue<string>() ?? throw invalid("patch operation without 'op'");
            var path = operation["path"]?.GetValue<string>() ?? throw invalid($"'{op}' without 'path'");
            var tokens = path.Split('/').Skip(1).Select(t => t.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)).ToArray();
            if (tokens.Length == 0)
            {
                throw invalid($"'{op}' on the whole document is not supported");
            }

            var parent = Resolve(document, tokens[..^1]) ?? throw invalid($"path '{path}' does not exist");
            var last = tokens[^1];
            var value = operation["value"]?.DeepClone();
            switch (op)
            {
                case "add":
                    if (parent is JsonArray addArray)
                    {
                        addArray.Insert(last == "-" ? addArray.Count : Index(addArray, last, path, invalid, allowEnd: true), value);
                    }
                    else
                    {
                        parent.AsObject()[last] = value;
                    }

                    break;
                case "replace":
                case "remove":
                    if (parent is JsonArray array)
                    {
                        var index = Index(array, last, path, invalid, allowEnd: false);
                        array.RemoveAt(index);
                        if (op == "replace")
                        {
                            array.Insert(index, value);
                        }
                    }
                    else if (!parent.AsObject().ContainsKey(last))
                    {
                        throw invalid($"unable to {op} nonexistent key: {last}");
                    }
                    else if (op == "replace")
                    {
                        parent.AsObject()[last] = value;
                    }
                    else
                    {
                        parent.AsObject().Remove(last);
                    }

                    break;
                case "test":
                    if (!JsonNode.DeepEquals(Resolve(document, tokens), value))
                    {
                        throw invalid($"testing value {path} failed");
                    }

                    break;
                default:
                    throw invalid($"unsupported patch operation '{op}'");
            }
        }

        return document;
    }

    private static JsonNode? Resolve(JsonNode? node, IEnumerable<string> tokens)
    {
        foreach (var token in tokens)
        {
            node = node switch
            {
                JsonObject obj => obj[token],
                JsonArray array when int.TryParse(token, out var i) && i >= 0 && i < array.Count => array[i],
                _ => null,
            };
        }

        return node;
    }

    private static int Index(JsonArray array, string token, string path, Func<string, ApiException> invalid, bool allowEnd) =>
        int.TryParse(token, out var i) && i >= 0 && (i < array.Count || (allowEnd && i == array.Count))
            ? i
            : throw invalid($"array index out of range in path '{path}'");
}
