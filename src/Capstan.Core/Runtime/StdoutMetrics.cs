using System.Globalization;
using System.Text.RegularExpressions;
using Capstan.Core.Tracking;

namespace Capstan.Core.Runtime;

/// <summary>
/// Metrics a process prints on stdout, in Katib's default StdOut collector format: <c>name=value</c>,
/// several pairs on one line separated by spaces or commas (<c>epoch=3 loss=0.25, accuracy=0.91</c>).
/// Names start with a letter or '_' and may hold letters, digits, '_', '-', '.', '/'; values are numbers
/// (also <c>nan</c>, <c>inf</c>). Pairs whose value is not a number (<c>url=http://x</c>) are ignored.
/// <para>
/// Steps: a <c>step=</c> on the line gives every metric of that line its step (and is not itself a metric);
/// otherwise an <c>epoch=</c> on the line does (epoch is still logged as a metric); otherwise each metric
/// counts its own steps from 0. One instance per output stream, since the counters are its state.
/// </para>
/// </summary>
public sealed partial class StdoutMetrics
{
    public const string StepName = "step";
    public const string EpochName = "epoch";

    private readonly Dictionary<string, long> _nextStep = new(StringComparer.Ordinal);

    /// <summary>The metrics on <paramref name="line"/>, none when it has no pair; <paramref name="timestamp"/> in Unix milliseconds.</summary>
    public IReadOnlyList<Metric> Parse(string line, long timestamp)
    {
        ArgumentNullException.ThrowIfNull(line);
        if (line.IndexOf('=', StringComparison.Ordinal) < 0)
        {
            return [];
        }

        List<(string Name, double Value)>? pairs = null;
        foreach (Match match in Pair().Matches(line))
        {
            if (TryParseValue(match.Groups[2].Value, out var value))
            {
                (pairs ??= []).Add((match.Groups[1].Value, value));
            }
        }

        if (pairs is null)
        {
            return [];
        }

        long? lineStep = null;
        foreach (var name in (ReadOnlySpan<string>)[StepName, EpochName])
        {
            var index = pairs.FindIndex(p => p.Name == name);
            if (index >= 0 && double.IsFinite(pairs[index].Value))
            {
                lineStep = (long)pairs[index].Value;
                break;
            }
        }

        var metrics = new List<Metric>(pairs.Count);
        foreach (var (name, value) in pairs)
        {
            if (name == StepName)
            {
                continue;
            }

            long step;
            if (lineStep is { } given)
            {
                step = given;
                _nextStep[name] = given + 1;
            }
            else
            {
                step = _nextStep.GetValueOrDefault(name);
                _nextStep[name] = step + 1;
            }

            metrics.Add(new Metric(name, value, timestamp, step));
        }

        return metrics;
    }

    private static bool TryParseValue(string text, out double value)
    {
        switch (text.ToLowerInvariant().TrimStart('+'))
        {
            case "nan" or "-nan":
                value = double.NaN;
                return true;
            case "inf" or "infinity":
                value = double.PositiveInfinity;
                return true;
            case "-inf" or "-infinity":
                value = double.NegativeInfinity;
                return true;
            default:
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
        }
    }

    [GeneratedRegex(@"(?<![\w.\-/])([A-Za-z_][\w.\-/]*)\s*=\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity))(?=$|[\s,;])", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Pair();
}
