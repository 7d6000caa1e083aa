using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Tests.Validation;

/// <summary>
/// A custom resource checked against a CRD's structural schema as the API server checks it: type (with int-or-string
/// and int32/int64 ranges), enum, pattern, required, properties (an unknown field is an error, as kubectl's strict field
/// validation makes it), items and additionalProperties. The schema is read back from the CRD's own JSON, as the API
/// server would get it.
/// </summary>
internal static class StructuralSchemaValidator
{
    public static IReadOnlyList<string> Validate(JsonNode? value, V1JSONSchemaProps schema)
    {
        var errors = new List<string>();
        Check(value, Reparse(schema), "", errors);
        return errors;
    }

    /// <summary>The schema as the CRD's YAML carries it (nested schemas in object-typed properties become plain JSON otherwise).</summary>
    private static JsonObject Reparse(V1JSONSchemaProps schema) => JsonNode.Parse(KubernetesJson.Serialize(schema))!.AsObject();

    private static void Check(JsonNode? value, JsonObject schema, string path, List<string> errors)
    {
        var at = path.Length == 0 ? "." : path;
        if (value is null)
        {
            // A null is pruned as absent unless the schema says nullable; absent is what `required` checks.
            if (schema["nullable"]?.GetValue<bool>() != true)
            {
                errors.Add($"{at}: must not be null");
            }

            return;
        }

        if (schema["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true && schema["type"] is null)
        {
            return;
        }

        if (schema["x-kubernetes-int-or-string"]?.GetValue<bool>() == true)
        {
            var kind = value.GetValueKind();
            if (kind is not (JsonValueKind.String or JsonValueKind.Number) || (kind == JsonValueKind.Number && !IsInteger(value)))
            {
                errors.Add($"{at}: must be an integer or a string, got {Describe(value)}");
                return;
            }

            if (kind == JsonValueKind.String && schema["pattern"]?.GetValue<string>() is { } quantityPattern && !Regex.IsMatch(value.GetValue<string>(), quantityPattern))
            {
                errors.Add($"{at}: '{value.GetValue<string>()}' does not match {quantityPattern}");
            }

            return;
        }

        var type = schema["type"]?.GetValue<string>();
        switch (type)
        {
            case "object":
                if (value is not JsonObject obj)
                {
                    errors.Add($"{at}: must be an object, got {Describe(value)}");
                    return;
                }

                CheckObject(obj, schema, path, errors);
                return;
            case "array":
                if (value is not JsonArray array)
                {
                    errors.Add($"{at}: must be an array, got {Describe(value)}");
                    return;
                }

                for (var i = 0; i < array.Count; i++)
                {
                    Check(array[i], schema["items"]!.AsObject(), $"{path}[{i}]", errors);
                }

                return;
            case "string":
                if (value.GetValueKind() != JsonValueKind.String)
                {
                    errors.Add($"{at}: must be a string, got {Describe(value)}");
                    return;
                }

                CheckString(value.GetValue<string>(), schema, at, errors);
                return;
            case "integer":
                if (value.GetValueKind() != JsonValueKind.Number || !IsInteger(value))
                {
                    errors.Add($"{at}: must be an integer, got {Describe(value)}");
                }
                else if (schema["format"]?.GetValue<string>() == "int32" && (Number(value) > int.MaxValue || Number(value) < int.MinValue))
                {
                    errors.Add($"{at}: {value} does not fit in int32");
                }

                return;
            case "number":
                if (value.GetValueKind() != JsonValueKind.Number)
                {
                    errors.Add($"{at}: must be a number, got {Describe(value)}");
                }

                return;
            case "boolean":
                if (value.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
                {
                    errors.Add($"{at}: must be a boolean, got {Describe(value)}");
                }

                return;
            default:
                errors.Add($"{at}: the schema has no type (not structural)");
                return;
        }
    }

    private static void CheckObject(JsonObject obj, JsonObject schema, string path, List<string> errors)
    {
        foreach (var required in schema["required"]?.AsArray().Select(r => r!.GetValue<string>()) ?? [])
        {
            if (!obj.ContainsKey(required))
            {
                errors.Add($"{(path.Length == 0 ? "." : path)}: missing required field '{required}'");
            }
        }

        var properties = schema["properties"]?.AsObject();
        var additional = schema["additionalProperties"] as JsonObject;
        var preserve = schema["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true;
        foreach (var (name, child) in obj)
        {
            var childPath = $"{path}.{name}";
            if (path.Length == 0 && name == "metadata")
            {
                // The API server validates a custom resource's ObjectMeta itself, as for any object.
                if (child is not JsonObject)
                {
                    errors.Add(".metadata: must be an object");
                }
            }
            else if (properties?[name] is JsonObject propertySchema)
            {
                Check(child, propertySchema, childPath, errors);
            }
            else if (additional is not null)
            {
                Check(child, additional, childPath, errors);
            }
            else if (!preserve)
            {
                errors.Add($"{childPath}: unknown field '{name}'");
            }
        }
    }

    private static void CheckString(string text, JsonObject schema, string at, List<string> errors)
    {
        if (schema["enum"] is JsonArray allowed && !allowed.Any(a => a?.GetValue<string>() == text))
        {
            errors.Add($"{at}: '{text}' is not one of {string.Join(", ", allowed.Select(a => a!.GetValue<string>()))}");
        }

        if (schema["pattern"]?.GetValue<string>() is { } pattern && !Regex.IsMatch(text, pattern))
        {
            errors.Add($"{at}: '{text}' does not match {pattern}");
        }

        if (schema["format"]?.GetValue<string>() == "date-time"
            && !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out _))
        {
            errors.Add($"{at}: '{text}' is not an RFC 3339 date-time");
        }
    }

    private static bool IsInteger(JsonNode value) => value.GetValueKind() == JsonValueKind.Number && Math.Floor(Number(value)) == Number(value);

    private static double Number(JsonNode value) =>
        value.AsValue().TryGetValue<long>(out var integer) ? integer
        : value.AsValue().TryGetValue<int>(out var small) ? small
        : value.GetValue<double>();

    private static string Describe(JsonNode value) => value.GetValueKind() switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => $"the string \"{value.GetValue<string>()}\"",
        _ => value.ToJsonString(),
    };
}
