using Capstan.Core.Resources;

namespace Capstan.Core.ControlPlane;

/// <summary>
/// How kinds are named in URLs and on the command line, as Kubernetes does: the lower-case plural
/// (<c>trainjobs</c>) in API paths, and singular, plural or a short name (<c>tj</c>) in <c>capstan get</c>.
/// </summary>
public static class KindNames
{
    private static readonly Dictionary<string, string> s_shortNames = new(StringComparer.Ordinal)
    {
        [TrainJob.KindName] = "tj",
        ["Experiment"] = "exp",
        ["Pipeline"] = "pl",
        ["InferenceService"] = "isvc",
        ["Monitor"] = "mon",
    };

    /// <summary><c>TrainJob</c> → <c>trainjobs</c>.</summary>
    public static string Plural(string kind)
    {
        ArgumentNullException.ThrowIfNull(kind);
        return kind.ToLowerInvariant() + "s";
    }

    public static string? ShortName(string kind) => s_shortNames.GetValueOrDefault(kind);

    /// <summary>The kind a user or URL means (<c>TrainJob</c>, <c>trainjob</c>, <c>trainjobs</c>, <c>tj</c>, any case), or null.</summary>
    public static string? Resolve(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var kind in ResourceKinds.Names)
        {
            if (string.Equals(text, kind, StringComparison.OrdinalIgnoreCase)
                || string.Equals(text, Plural(kind), StringComparison.OrdinalIgnoreCase)
                || string.Equals(text, ShortName(kind), StringComparison.OrdinalIgnoreCase))
            {
                return kind;
            }
        }

        return null;
    }

    /// <summary>As <see cref="Resolve"/>, or <see cref="ErrorCode.ResourceDoesNotExist"/> naming the known kinds.</summary>
    public static string Require(string text)
    {
        if (Resolve(text) is { } kind)
        {
            return kind;
        }

        var known = string.Join(", ", ResourceKinds.Names.Select(k => ShortName(k) is { } s ? $"{Plural(k)} ({s})" : Plural(k)));
        throw CapstanException.NotFound($"the server doesn't have a resource type \"{text}\" (known: {known})");
    }
}
