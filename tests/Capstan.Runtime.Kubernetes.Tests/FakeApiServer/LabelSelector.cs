using System.Text.Json.Nodes;

namespace Capstan.Runtime.Kubernetes.Tests.FakeApiServer;

/// <summary>
/// A <c>labelSelector</c> query as the API server reads it: comma-separated requirements, each <c>key</c>, <c>!key</c>,
/// <c>key=value</c> (or <c>==</c>), <c>key!=value</c>, <c>key in (a,b)</c> or <c>key notin (a,b)</c>; all must hold.
/// <c>!=</c> and <c>notin</c> also match objects without the label, as in Kubernetes.
/// </summary>
public sealed class LabelSelector
{
    private readonly List<Requirement> _requirements;

    private LabelSelector(List<Requirement> requirements)
    {
        _requirements = requirements;
    }

    public static LabelSelector Everything { get; } = new([]);

    /// <summary>The selector, or a 400 BadRequest naming what could not be read.</summary>
    public static LabelSelector Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return Everything;
        }

        var requirements = new List<Requirement>();
        foreach (var part in SplitTopLevel(text))
        {
            requirements.Add(ParseRequirement(part.Trim(), text));
        }

        return new LabelSelector(requirements);
    }

    public bool Matches(JsonObject obj)
    {
        var labels = obj["metadata"]?["labels"] as JsonObject;
        return _requirements.All(r => r.Matches(labels?[r.Key]?.GetValue<string>()));
    }

    private static IEnumerable<string> SplitTopLevel(string text)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '(':
                    depth++;
                    break;
                case ')':
                    depth--;
                    break;
                case ',' when depth == 0:
                    yield return text[start..i];
                    start = i + 1;
                    break;
            }
        }

        yield return text[start..];
    }

    private static Requirement ParseRequirement(string part, string whole)
    {
        ApiException Bad() => ApiException.BadRequest($"unable to parse requirement: found '{part}' in label selector \"{whole}\"");
        if (part.Length == 0)
        {
            throw Bad();
        }

        if (part.StartsWith('!'))
        {
            return new Requirement(CheckKey(part[1..].Trim(), Bad), Operator.DoesNotExist, []);
        }

        foreach (var (token, op) in new[] { ("!=", Operator.NotEquals), ("==", Operator.Equals), ("=", Operator.Equals) })
        {
            var at = part.IndexOf(token, StringComparison.Ordinal);
            if (at > 0)
            {
                return new Requirement(CheckKey(part[..at].Trim(), Bad), op, [part[(at + token.Length)..].Trim()]);
            }
        }

        var words = part.Split(' ', 2, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length == 1)
        {
            return new Requirement(CheckKey(words[0], Bad), Operator.Exists, []);
        }

        var rest = words[1];
        var (setOp, setText) = rest.StartsWith("notin", StringComparison.Ordinal) ? (Operator.NotIn, rest[5..])
            : rest.StartsWith("in", StringComparison.Ordinal) ? (Operator.In, rest[2..])
            : throw Bad();
        setText = setText.Trim();
        if (!setText.StartsWith('(') || !setText.EndsWith(')'))
        {
            throw Bad();
        }

        var values = setText[1..^1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return new Requirement(CheckKey(words[0], Bad), setOp, values);
    }

    private static string CheckKey(string key, Func<ApiException> bad) =>
        key.Length == 0 || key.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/')) ? throw bad() : key;

    private enum Operator
    {
        Equals,
        NotEquals,
        In,
        NotIn,
        Exists,
        DoesNotExist,
    }

    private sealed record Requirement(string Key, Operator Op, string[] Values)
    {
        public bool Matches(string? value) => Op switch
        {
            Operator.Equals or Operator.In => value is not null && Values.Contains(value),
            Operator.NotEquals or Operator.NotIn => value is null || !Values.Contains(value),
            Operator.Exists => value is not null,
            _ => value is null,
        };
    }
}
