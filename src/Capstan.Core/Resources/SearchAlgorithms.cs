namespace Capstan.Core.Resources;

/// <summary>The search algorithms an experiment may name, by Katib's names, and the Katib ones Capstan does not run.</summary>
public static class SearchAlgorithms
{
    private static readonly string[] s_supported =
    [
        "random", "grid", "sobol", "tpe", "multivariate-tpe", "bayesianoptimization", "cmaes", "hyperband", "asha",
    ];

    private static readonly Dictionary<string, string> s_unsupported = new(StringComparer.Ordinal)
    {
        ["enas"] = "neural architecture search (ENAS) is not supported",
        ["darts"] = "neural architecture search (DARTS) is not supported",
        ["pbt"] = "population based training is not supported",
    };

    public static IReadOnlyList<string> Supported => s_supported;

    /// <summary>Why <paramref name="name"/> cannot be used, or null when it can.</summary>
    public static string? Problem(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (s_supported.Contains(name, StringComparer.Ordinal))
        {
            return null;
        }

        if (s_unsupported.TryGetValue(name, out var why))
        {
            return $"algorithm '{name}': {why} (supported: {string.Join(", ", s_supported)})";
        }

        var suggestion = SpellingSuggestion.Closest(name, s_supported);
        var hint = suggestion is null ? $"supported: {string.Join(", ", s_supported)}" : $"did you mean '{suggestion}'?";
        return $"unknown algorithm '{name}' ({hint})";
    }
}
