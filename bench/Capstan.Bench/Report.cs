using System.Globalization;

namespace Capstan.Bench;

/// <summary>Collects measured figures with their baselines and targets, and prints them as one table.</summary>
public sealed class Report
{
    private readonly List<(string Name, string Figure, string Baseline, string Target, bool? Met)> _rows = [];

    public bool AllTargetsMet => _rows.TrueForAll(r => r.Met != false);

    public void Add(string name, string figure, string baseline, string target, bool met)
    {
        _rows.Add((name, figure, baseline, target, met));
        Console.Error.WriteLine($"  {name}: {figure}  [{baseline}]  target {target} {(met ? "PASS" : "MISS")}");
    }

    /// <summary>A figure printed for context, with no target of its own.</summary>
    public void Info(string name, string figure, string baseline)
    {
        _rows.Add((name, figure, baseline, "-", null));
        Console.Error.WriteLine($"  {name}: {figure}  [{baseline}]");
    }

    public void Print()
    {
        var widths = new[]
        {
            Math.Max(9, _rows.Max(r => r.Name.Length)),
            Math.Max(6, _rows.Max(r => r.Figure.Length)),
            Math.Max(23, _rows.Max(r => r.Baseline.Length)),
            Math.Max(6, _rows.Max(r => r.Target.Length)),
        };
        Console.WriteLine();
        Console.WriteLine(Row("benchmark", "figure", "baseline, same run", "target", "result"));
        Console.WriteLine(Row(new string('-', widths[0]), new string('-', widths[1]), new string('-', widths[2]), new string('-', widths[3]), "------"));
        foreach (var r in _rows)
        {
            Console.WriteLine(Row(r.Name, r.Figure, r.Baseline, r.Target, r.Met switch { true => "PASS", false => "MISS", null => "info" }));
        }

        string Row(string a, string b, string c, string d, string e) =>
            $"{a.PadRight(widths[0])}  {b.PadLeft(widths[1])}  {c.PadRight(widths[2])}  {d.PadRight(widths[3])}  {e}";
    }

    public static string Ms(double ms) => ms.ToString(ms < 10 ? "0.000" : "0.0", CultureInfo.InvariantCulture) + " ms";

    public static string Rate(double perSecond) => perSecond.ToString("N0", CultureInfo.InvariantCulture) + "/s";
}

/// <summary>Latency percentiles over a set of samples in milliseconds.</summary>
public sealed class Samples(int capacity)
{
    private readonly List<double> _ms = new(capacity);

    public void Add(double ms) => _ms.Add(ms);

    public double Percentile(double p)
    {
        var sorted = _ms.Order().ToArray();
        return sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];
    }
}
