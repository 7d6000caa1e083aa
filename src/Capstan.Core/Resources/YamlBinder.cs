using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using k8s.Models;
using YamlDotNet.RepresentationModel;

namespace Capstan.Core.Resources;

/// <summary>
/// Binds YAML nodes onto typed objects — Capstan's own and the Kubernetes client's models alike —
/// by their JSON field names, reporting every unknown field and wrong type at its line and column
/// instead of stopping at the first.
/// </summary>
internal sealed class YamlBinder(ResourceValidation validation)
{
    private static readonly ConcurrentDictionary<Type, IReadOnlyDictionary<string, PropertyInfo>> s_fields = new();
    private static readonly ConcurrentDictionary<Type, IReadOnlyDictionary<string, object>> s_enumNames = new();

    public object? Bind(YamlNode node, Type type, string path)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (node is YamlScalarNode scalar && YamlScalars.IsNull(scalar))
        {
            return null;
        }

        if (DictionaryValueType(target) is { } valueType)
        {
            return BindMap(node, valueType, path);
        }

        if (ListItemType(target) is { } itemType)
        {
            return BindList(node, itemType, path);
        }

        if (IsScalarType(target))
        {
            return node is YamlScalarNode text
                ? BindScalar(text, target, path)
                : Fail(node, path, $"expected {Describe(target)}, got {Describe(node)}");
        }

        return BindObject(node, target, path);
    }

    private object? BindObject(YamlNode node, Type type, string path)
    {
        if (node is not YamlMappingNode mapping)
        {
            return Fail(node, path, $"expected a map, got {Describe(node)}");
        }

        var instance = Activator.CreateInstance(type)!;
        var fields = FieldsOf(type);
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            if (KeyOf(keyNode, path) is not { } key)
            {
                continue;
            }

            var fieldPath = FieldPath.Field(path, key);
            if (!fields.TryGetValue(key, out var property))
            {
                var suggestion = SpellingSuggestion.Closest(key, fields.Keys);
                var hint = suggestion is null ? "" : $" (did you mean '{suggestion}'?)";
                validation.Error(keyNode, fieldPath, $"unknown field '{key}'{hint}");
                continue;
            }

            validation.Record(fieldPath, keyNode, valueNode);
            var value = property.IsDefined(typeof(ScalarTextAttribute), inherit: false)
                ? BindText(valueNode, property.PropertyType, fieldPath)
                : Bind(valueNode, property.PropertyType, fieldPath);
            if (value is not null)
            {
                property.SetValue(instance, value);
            }
        }

        return instance;
    }

    /// <summary>A <see cref="ScalarTextAttribute"/> field: any scalar as its text, a list of scalars as a list of texts.</summary>
    private object? BindText(YamlNode node, Type type, string path)
    {
        if (node is YamlScalarNode scalar && !YamlScalars.IsNull(scalar) && type == typeof(string))
        {
            return scalar.Value ?? "";
        }

        if (node is YamlSequenceNode sequence && ListItemType(type) == typeof(string))
        {
            var texts = new List<string>();
            for (var i = 0; i < sequence.Children.Count; i++)
            {
                var itemPath = FieldPath.Index(path, i);
                validation.Record(itemPath, null, sequence.Children[i]);
                if (sequence.Children[i] is YamlScalarNode { Value: var text })
                {
                    texts.Add(text ?? "");
                }
                else
                {
                    Fail(sequence.Children[i], itemPath, $"expected a value, got {Describe(sequence.Children[i])}");
                }
            }

            return texts;
        }

        return Bind(node, type, path);
    }

    private object? BindMap(YamlNode node, Type valueType, string path)
    {
        if (node is not YamlMappingNode mapping)
        {
            return Fail(node, path, $"expected a map, got {Describe(node)}");
        }

        var map = (System.Collections.IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(typeof(string), valueType))!;
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            if (KeyOf(keyNode, path) is not { } key)
            {
                continue;
            }

            var keyPath = FieldPath.Key(path, key);
            validation.Record(keyPath, keyNode, valueNode);
            var value = valueType == typeof(string) && valueNode is YamlScalarNode { } text && AcceptsAnyScalar(path)
                ? text.Value ?? ""
                : Bind(valueNode, valueType, keyPath);
            if (value is not null)
            {
                map[key] = value;
            }
        }

        return map;
    }

    private object? BindList(YamlNode node, Type itemType, string path)
    {
        if (node is not YamlSequenceNode sequence)
        {
            return Fail(node, path, $"expected a list, got {Describe(node)}");
        }

        var list = (System.Collections.IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(itemType))!;
        for (var i = 0; i < sequence.Children.Count; i++)
        {
            var itemPath = FieldPath.Index(path, i);
            validation.Record(itemPath, null, sequence.Children[i]);
            var item = Bind(sequence.Children[i], itemType, itemPath);
            if (item is not null)
            {
                list.Add(item);
            }
        }

        return list;
    }

    private object? BindScalar(YamlScalarNode node, Type type, string path)
    {
        var text = node.Value ?? "";
        var plain = YamlScalars.IsPlain(node);
        if (type == typeof(string))
        {
            return plain && YamlScalars.NonStringType(text) is { } other
                ? Fail(node, path, $"expected a string, got the {other} {text} (quote it: \"{text}\")")
                : text;
        }

        if (type == typeof(ResourceQuantity))
        {
            return ResourceQuantities.Parse(text) is { } quantity
                ? quantity
                : Fail(node, path, ResourceQuantities.Problem(text));
        }

        if (type.IsEnum)
        {
            var names = EnumNames(type);
            return names.TryGetValue(text, out var member)
                ? member
                : Fail(node, path, $"'{text}' is not a valid {LastSegment(path)} (allowed: {string.Join(", ", names.Keys)})");
        }

        // Timestamps are strings in JSON and in kubectl's YAML (creationTimestamp: "2024-01-01T00:00:00Z"),
        // so a quoted one is as good as a plain one.
        if (type == typeof(DateTimeOffset))
        {
            return ParsePlain(text, type) ?? Fail(node, path, $"expected {Describe(type)}, got '{text}'");
        }

        if (!plain)
        {
            return Fail(node, path, $"expected {Describe(type)}, got the string \"{text}\" (remove the quotes)");
        }

        var parsed = ParsePlain(text, type);
        return parsed ?? Fail(node, path, $"expected {Describe(type)}, got '{text}'");
    }

    private static object? ParsePlain(string text, Type type)
    {
        var culture = CultureInfo.InvariantCulture;
        if (type == typeof(int))
        {
            return int.TryParse(text, NumberStyles.AllowLeadingSign, culture, out var value) ? value : null;
        }

        if (type == typeof(long))
        {
            return long.TryParse(text, NumberStyles.AllowLeadingSign, culture, out var value) ? value : null;
        }

        if (type == typeof(double))
        {
            return double.TryParse(text, NumberStyles.Float, culture, out var value) ? value : null;
        }

        if (type == typeof(bool))
        {
            return text switch { "true" or "True" or "TRUE" => true, "false" or "False" or "FALSE" => false, _ => null };
        }

        if (type == typeof(DateTimeOffset))
        {
            return DateTimeOffset.TryParse(text, culture, DateTimeStyles.AssumeUniversal, out var value) ? value : null;
        }

        return null;
    }

    private string? KeyOf(YamlNode keyNode, string path) =>
        keyNode is YamlScalarNode { Value: { } key } ? key : (string?)Fail(keyNode, path, $"expected a field name, got {Describe(keyNode)}");

    private object? Fail(YamlNode node, string path, string message)
    {
        validation.Error(node, path, message);
        return null;
    }

    // Only the free-form parameter maps take numbers and booleans as their text: `lr: 0.01` is what users write.
    private static bool AcceptsAnyScalar(string path) => LastSegment(path) is "params";

    private static bool IsScalarType(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(ResourceQuantity) || type == typeof(DateTimeOffset);

    private static Type? DictionaryValueType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() is var definition
            && (definition == typeof(IDictionary<,>) || definition == typeof(Dictionary<,>) || definition == typeof(IReadOnlyDictionary<,>))
            ? type.GetGenericArguments()[1]
            : null;

    private static Type? ListItemType(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() is var definition
            && (definition == typeof(IList<>) || definition == typeof(List<>) || definition == typeof(IReadOnlyList<>))
            ? type.GetGenericArguments()[0]
            : null;

    private static IReadOnlyDictionary<string, PropertyInfo> FieldsOf(Type type) => s_fields.GetOrAdd(type, static t =>
        t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.GetCustomAttribute<JsonIgnoreAttribute>() is null)
            .ToDictionary(WireName, StringComparer.Ordinal));

    /// <summary>An enum's members by the names JSON writes them with (<see cref="JsonStringEnumMemberNameAttribute"/>, else the member's own).</summary>
    private static IReadOnlyDictionary<string, object> EnumNames(Type type) => s_enumNames.GetOrAdd(type, static t =>
        t.GetFields(BindingFlags.Public | BindingFlags.Static).ToDictionary(
            f => f.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? f.Name,
            f => f.GetValue(null)!,
            StringComparer.Ordinal));

    internal static string WireName(PropertyInfo property) =>
        property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);

    private static string LastSegment(string path) => path[(path.LastIndexOf('.') + 1)..];

    private static string Describe(Type type) => type switch
    {
        _ when type == typeof(string) => "a string",
        _ when type == typeof(int) || type == typeof(long) => "an integer",
        _ when type == typeof(double) => "a number",
        _ when type == typeof(bool) => "a boolean (true or false)",
        _ when type == typeof(DateTimeOffset) => "a timestamp (RFC 3339)",
        _ => "a " + type.Name,
    };

    private static string Describe(YamlNode node) => node switch
    {
        YamlMappingNode => "a map",
        YamlSequenceNode => "a list",
        YamlScalarNode scalar => $"'{scalar.Value}'",
        _ => "an alias",
    };
}
