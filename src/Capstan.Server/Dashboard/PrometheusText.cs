using System.Globalization;
using System.Text;

namespace Capstan.Server.Dashboard;

/// <summary>One sample of the Prometheus text exposition format: <c>name{label="value",…} value [timestamp]</c>.</summary>
public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public string Label(string name) => Labels.TryGetValue(name, out var value) ? value : "";
}

/// <summary>
/// Reads samples from the Prometheus text format (version 0.0.4): comment and blank lines are skipped, label values are
/// unescaped (<c>\\</c>, <c>\"</c>, <c>\n</c>), values may be <c>NaN</c> or <c>±Inf</c>, and a trailing timestamp is ignored.
/// A line that does not parse is skipped rather than failing the whole scrape, as Prometheus reports it per line.
/// </summary>
public static class PrometheusText
{
    public static IEnumerable<PrometheusSample> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r').Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            if (TryParseLine(line, out var sample))
            {
                yield return sample;
            }
        }
    }

    private static bool TryParseLine(string line, out PrometheusSample sample)
    {
        sample = null!;
        var i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ' && line[i] != '\t')
        {
            i++;
        }

        var name = line[..i];
        if (name.Length == 0)
        {
            return false;
        }

        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                while (i < line.Length && (line[i] == ' ' || line[i] == ','))
                {
                    i++;
                }

                if (i >= line.Length)
                {
                    return false;
                }

                if (line[i] == '}')
                {
                    i++;
                    break;
                }

                var eq = line.IndexOf('=', i);
                if (eq < 0 || eq + 1 >= line.Length || line[eq + 1] != '"')
                {
                    return false;
                }

                var label = line[i..eq].Trim();
                var value = new StringBuilder();
                i = eq + 2;
                while (i < line.Length && line[i] != '"')
                {
                    if (line[i] == '\\' && i + 1 < line.Length)
                    {
                        i++;
                        value.Append(line[i] == 'n' ? '\n' : line[i]);
                    }
                    else
                    {
                        value.Append(line[i]);
                    }

                    i++;
                }

                if (i >= line.Length)
                {
                    return false;
                }

                i++;
                labels[label] = value.ToString();
            }
        }

        var rest = line[i..].Trim().Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (rest.Length == 0 || !TryParseValue(rest[0], out var number))
        {
            return false;
        }

        sample = new PrometheusSample(name, labels, number);
        return true;
    }

    private static bool TryParseValue(string text, out double value)
    {
        switch (text)
        {
            case "+Inf" or "Inf":
                value = double.PositiveInfinity;
                return true;
            case "-Inf":
                value = double.NegativeInfinity;
                return true;
            case "NaN":
                value = double.NaN;
                return true;
            default:
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
        }
    }
}
