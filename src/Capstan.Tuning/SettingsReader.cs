using System.Globalization;

namespace Capstan.Tuning;

/// <summary>
/// Reads Katib's name/value settings, recording an error for a value of the wrong form and, at the end, for any
/// setting the algorithm does not know, with the list of those it accepts.
/// </summary>
internal sealed class SettingsReader(string owner, IReadOnlyList<AlgorithmSetting> settings, List<TuningError> errors)
{
    private readonly List<string> _known = [];

    public List<TuningError> Errors => errors;

    public string Owner => owner;

    public string? String(string name)
    {
        _known.Add(name);
        return settings.LastOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase))?.Value;
    }

    public long Long(string name, long fallback, long min = long.MinValue, long max = long.MaxValue)
    {
        var text = String(name);
        if (text is null)
        {
            return fallback;
        }

        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
        {
            Fail(name, $"'{text}' is not an integer");
            return fallback;
        }

        if (v < min || v > max)
        {
            Fail(name, max == long.MaxValue ? $"{v} must be at least {min}" : $"{v} must be between {min} and {max}");
            return fallback;
        }

        return v;
    }

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue) => (int)Long(name, fallback, min, max);

    public double Double(string name, double fallback, Func<double, bool> valid, string requirement)
    {
        var text = String(name);
        if (text is null)
        {
            return fallback;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
        {
            Fail(name, $"'{text}' is not a number");
            return fallback;
        }

        if (!valid(v))
        {
            Fail(name, $"{text} must be {requirement}");
            return fallback;
        }

        return v;
    }

    public bool Bool(string name, bool fallback)
    {
        var text = String(name);
        if (text is null)
        {
            return fallback;
        }

        if (bool.TryParse(text, out var v))
        {
            return v;
        }

        Fail(name, $"'{text}' is not true or false");
        return fallback;
    }

    public string Choice(string name, string fallback, params string[] accepted)
    {
        var text = String(name);
        if (text is null)
        {
            return fallback;
        }

        var match = accepted.FirstOrDefault(a => string.Equals(a, text.Trim(), StringComparison.OrdinalIgnoreCase));
        if (match is null)
        {
            Fail(name, $"'{text}' is not accepted; accepted: {string.Join(", ", accepted)}");
            return fallback;
        }

        return match;
    }

    public void Fail(string name, string message) => errors.Add(new TuningError(owner, name, message));

    public void RejectUnknown()
    {
        foreach (var s in settings)
        {
            if (!_known.Contains(s.Name, StringComparer.OrdinalIgnoreCase))
            {
                Fail(s.Name, $"unknown setting for {owner}; accepted: {string.Join(", ", _known.Distinct())}");
            }
        }
    }
}
