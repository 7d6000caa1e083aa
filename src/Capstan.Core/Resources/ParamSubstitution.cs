using System.Text;
using System.Text.RegularExpressions;

namespace Capstan.Core.Resources;

/// <summary>
/// Expands <c>${params.name}</c> in a job's command and args, and <c>${trialParameters.name}</c> in
/// an experiment's trial template, by one rule: a placeholder naming no value is an error, and
/// <c>$${</c> writes a literal <c>${</c>.
/// <para>
/// Parameters also reach the process as environment variables: each as <c>CAPSTAN_PARAM_</c>
/// followed by its name upper-cased with every character outside A–Z and 0–9 turned into '_'
/// (<c>lr</c> → <c>CAPSTAN_PARAM_LR</c>, <c>batch-size</c> → <c>CAPSTAN_PARAM_BATCH_SIZE</c>), and
/// under its own name as well when that is a valid variable name (<c>lr</c>). A variable the job
/// sets in <c>env</c> wins over both.
/// </para>
/// </summary>
public static partial class ParamSubstitution
{
    public const string Params = "params";
    public const string TrialParameters = "trialParameters";
    public const string EnvironmentPrefix = "CAPSTAN_PARAM_";

    /// <summary>The names the placeholders with <paramref name="prefix"/> in <paramref name="text"/> refer to, in order.</summary>
    public static IReadOnlyList<string> Names(string text, string prefix)
    {
        var names = new List<string>();
        Scan(text, prefix, name =>
        {
            names.Add(name);
            return "";
        });
        return names;
    }

    /// <summary>The text with every placeholder replaced; throws when one names no value.</summary>
    public static string Expand(string text, string prefix, IReadOnlyDictionary<string, string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return Scan(text, prefix, name => values.TryGetValue(name, out var value)
            ? value
            : throw CapstanException.Invalid(UnknownMessage(name, prefix, values.Keys)));
    }

    public static IReadOnlyList<string> Expand(IEnumerable<string> texts, string prefix, IReadOnlyDictionary<string, string> values) =>
        [.. texts.Select(text => Expand(text, prefix, values))];

    public static string UnknownMessage(string name, string prefix, IEnumerable<string> known)
    {
        var names = known.Order(StringComparer.Ordinal).ToList();
        var suggestion = SpellingSuggestion.Closest(name, names);
        var hint = suggestion is not null ? $" (did you mean '{suggestion}'?)"
            : names.Count > 0 ? $" (known: {string.Join(", ", names)})"
            : $" (the job has no {prefix})";
        return $"${{{prefix}.{name}}} names no parameter '{name}'{hint}";
    }

    public static string EnvironmentName(string name) => EnvironmentPrefix + NonIdentifier().Replace(name.ToUpperInvariant(), "_");

    /// <summary>The variables that carry <paramref name="parameters"/> into the process.</summary>
    public static IReadOnlyDictionary<string, string> Environment(IEnumerable<KeyValuePair<string, string>> parameters)
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in parameters)
        {
            variables[EnvironmentName(name)] = value;
            if (VariableName().IsMatch(name))
            {
                variables.TryAdd(name, value);
            }
        }

        return variables;
    }

    private static string Scan(string text, string prefix, Func<string, string> replace)
    {
        ArgumentNullException.ThrowIfNull(text);
        var opening = "${" + prefix + ".";
        var result = new StringBuilder(text.Length);
        var i = 0;
        while (i < text.Length)
        {
            if (string.CompareOrdinal(text, i, "$${", 0, 3) == 0)
            {
                result.Append("${");
                i += 3;
                continue;
            }

            var close = string.CompareOrdinal(text, i, opening, 0, opening.Length) == 0 ? text.IndexOf('}', i) : -1;
            if (close < 0)
            {
                result.Append(text[i]);
                i++;
                continue;
            }

            result.Append(replace(text[(i + opening.Length)..close]));
            i = close + 1;
        }

        return result.ToString();
    }

    [GeneratedRegex("[^A-Z0-9]")]
    private static partial Regex NonIdentifier();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex VariableName();
}
