namespace Capstan.Core.Resources;

/// <summary>Field paths as Kubernetes prints them: <c>spec.tolerations[0].key</c>, <c>limits[nvidia.com/gpu]</c>.</summary>
public static class FieldPath
{
    public static string Field(string parent, string name) => parent.Length == 0 ? name : $"{parent}.{name}";

    /// <summary>A map key: dotted like a field unless the key itself holds a dot or slash.</summary>
    public static string Key(string parent, string key) =>
        key.AsSpan().IndexOfAny("./[]") >= 0 ? $"{parent}[{key}]" : Field(parent, key);

    public static string Index(string parent, int index) => $"{parent}[{index}]";

    public static string Parent(string path)
    {
        if (path.EndsWith(']'))
        {
            var open = path.LastIndexOf('[');
            return open < 0 ? "" : path[..open];
        }

        var dot = path.LastIndexOf('.');
        return dot < 0 ? "" : path[..dot];
    }
}
