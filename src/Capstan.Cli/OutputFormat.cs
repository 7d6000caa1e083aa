using System.CommandLine;
using System.Text.Json;
using Capstan.Core;
using YamlDotNet.Serialization;

namespace Capstan.Cli;

public enum OutputFormat
{
    Table,
    Json,
    Yaml,
}

/// <summary>The <c>-o table|json|yaml</c> option, and the writers for its machine-readable forms.</summary>
public static class Output
{
    public static Option<OutputFormat> CreateOption() => new("--output", "-o")
    {
        Description = "Output format: table (for people), json or yaml (for scripts).",
        DefaultValueFactory = _ => OutputFormat.Table,
    };

    /// <summary>
    /// Writes <paramref name="value"/> as JSON or YAML to stdout and returns true, or returns false
    /// for the table format, which each command renders itself. Both forms use the native API's
    /// camelCase names, so a script sees the same document as from <c>/api/v1</c>.
    /// </summary>
    public static bool TryWriteData<T>(CliContext context, OutputFormat format, T value)
    {
        ArgumentNullException.ThrowIfNull(context);
        switch (format)
        {
            case OutputFormat.Json:
                context.RawOut.WriteLine(JsonSerializer.Serialize(value, s_indented));
                context.RawOut.Flush();
                return true;
            case OutputFormat.Yaml:
                var tree = ToPlain(JsonSerializer.SerializeToElement(value, CapstanJson.Options));
                context.RawOut.Write(s_yaml.Serialize(tree));
                context.RawOut.Flush();
                return true;
            default:
                return false;
        }
    }

    private static readonly JsonSerializerOptions s_indented = new(CapstanJson.Options) { WriteIndented = true };

    private static readonly ISerializer s_yaml = new SerializerBuilder().DisableAliases().Build();

    private static object? ToPlain(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => element.EnumerateObject().ToDictionary(p => p.Name, p => ToPlain(p.Value), StringComparer.Ordinal),
        JsonValueKind.Array => element.EnumerateArray().Select(ToPlain).ToList(),
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Number => element.TryGetInt64(out var whole) ? whole : element.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };
}
