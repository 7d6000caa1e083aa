using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Capstan.Core.Resources;

/// <summary>
/// What a plain (unquoted) YAML scalar means, the way Kubernetes' YAML reader resolves it: so a
/// value that the cluster would read as a number or boolean is not silently taken as a string here.
/// </summary>
internal static partial class YamlScalars
{
    public static bool IsPlain(YamlScalarNode node) => node.Style is ScalarStyle.Plain or ScalarStyle.Any;

    public static bool IsNull(YamlScalarNode node) =>
        IsPlain(node) && node.Value is null or "" or "~" or "null" or "Null" or "NULL";

    /// <summary>"number", "boolean" or null: the type a plain scalar with this text resolves to.</summary>
    public static string? NonStringType(string text)
    {
        if (IntegerPattern().IsMatch(text) || FloatPattern().IsMatch(text))
        {
            return "number";
        }

        return BooleanPattern().IsMatch(text) ? "boolean" : null;
    }

    /// <summary>True when writing <paramref name="text"/> unquoted would change its meaning.</summary>
    public static bool NeedsQuotes(string text) =>
        text.Length == 0 || NonStringType(text) is not null || text is "~" or "null" or "Null" or "NULL";

    [GeneratedRegex("^[-+]?([0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)$")]
    public static partial Regex IntegerPattern();

    [GeneratedRegex(@"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")]
    private static partial Regex FloatPattern();

    [GeneratedRegex("^(true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|y|Y|n|N)$")]
    private static partial Regex BooleanPattern();
}
