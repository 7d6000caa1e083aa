using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Capstan.Tuning;

namespace Capstan.Bench;

/// <summary>
/// The search engine: Capstan's TPE (multivariate by default, independent alongside) against Optuna's default TPE (Debian's python3-optuna, run as a child process when
/// present) and against random search on standard functions; ASHA's time-to-target against full-budget random search
/// on synthetic learning curves; TPE's suggestion latency with a long history.
/// </summary>
public static class TuningBenchmark
{
    private const string DebianPython = "/usr/bin/python3";

    public static async Task RunAsync(Report report, bool quick)
    {
        // 60 seeds: seed-to-seed spread is wide (Rosenbrock's median best moves by a third between 60-seed blocks),
        // so fewer seeds make each row a coin toss between two samplers of similar strength.
        var seeds = quick ? 10 : 60;
        const int Trials = 100;
        // Optuna runs in its own processes while Capstan's sweeps run here.
        var skipOptuna = Environment.GetCommandLineArgs().Contains("--no-optuna");
        var optunaRun = skipOptuna ? Task.FromResult<OptunaRun?>(null) : RunOptunaAsync(seeds, Trials);
        var sweeps = TuningFunctions().Select(f => (Function: f, Tpe: Sweep(f, "tpe", seeds, Trials), Random: Sweep(f, "random", seeds, Trials), Independent: Sweep(f, "tpe", seeds, Trials, [new AlgorithmSetting("multivariate", "false")]))).ToList();
        MultiFidelity(report, quick);
        var optuna = await optunaRun;

        Console.WriteLine();
        Console.WriteLine($"Median best value over {seeds} seeds (lower is better) [bootstrap 95% CI of the median]; 'beats' is the share of seeds");
        Console.WriteLine("where Capstan's TPE ends below Optuna's on the same seed (ties count half); the target is judged on the medians.");
        Console.WriteLine($"{"function",-13} {"trials",6} {"Capstan TPE",28} {"Optuna TPE",28} {"random",12} {"independent",12} {"beats",6}  target");
        foreach (var (f, tpe, random, independent) in sweeps)
        {
            var opt = optuna?.Results.TryGetValue(f.Name, out var rows) == true ? rows : null;
            var met = new List<bool>();
            for (var c = 0; c < 2; c++)
            {
                var mine = Column(tpe, c);
                var theirs = opt is null ? null : Column(opt, c);
                var beats = theirs is null ? "" : $"{mine.Zip(theirs).Average(p => p.First < p.Second ? 1.0 : p.First == p.Second ? 0.5 : 0):0.00}";
                var ok = theirs is null ? Median(mine) <= Median(Column(random, c)) : Median(mine) <= Median(theirs);
                met.Add(ok);
                var verdict = theirs is null ? (ok ? "≤ random" : "> random") : ok ? "met" : "missed";
                Console.WriteLine($"{f.Name,-13} {(c == 0 ? 50 : 100),6} {WithCi(mine),28} {(theirs is null ? "not run" : WithCi(theirs)),28} {Num(Median(Column(random, c))),12} {Num(Median(Column(independent, c))),12} {beats,6}  {verdict}");
            }

            report.Add(
                $"tuning: TPE median best on {f.Name}, 50/100 trials, {seeds} seeds",
                Pair(tpe),
                opt is null ? $"random {Pair(random)}; Optuna not run" : $"Optuna {Pair(opt)}, random {Pair(random)}",
                opt is null ? "≤ random" : "≤ Optuna",
                met.All(m => m));
        }

        if (optuna is null && skipOptuna)
        {
            Console.WriteLine("Optuna was not run: --no-optuna.");
        }
        else if (optuna is null)
        {
            Console.WriteLine($"Optuna was not run: {DebianPython} cannot import optuna (apt-get install -y python3-optuna).");
        }
        else
        {
            Console.WriteLine($"Optuna {optuna.Version}: {optuna.Seconds:0.0} s wall for {seeds} seeds × {Trials} trials × 4 functions (two processes).");
        }

        Latency(report, quick);
    }

    private static double[] Column(double[][] rows, int column) => rows.Select(r => r[column]).ToArray();

    /// <summary>The median with a percentile-bootstrap 95% interval (2,000 resamples, fixed seed).</summary>
    private static string WithCi(double[] values)
    {
        var rng = new Random(1);
        var medians = new double[2000];
        var resample = new double[values.Length];
        for (var b = 0; b < medians.Length; b++)
        {
            for (var i = 0; i < resample.Length; i++)
            {
                resample[i] = values[rng.Next(values.Length)];
            }

            medians[b] = Median(resample);
        }

        Array.Sort(medians);
        return $"{Num(Median(values))} [{Num(medians[49])}, {Num(medians[1949])}]";
    }

    private static IEnumerable<TuningFunction> TuningFunctions() => TuningFunction.All;

    /// <summary>Best value after 50 and after 100 trials, per seed.</summary>
    internal static double[][] Sweep(TuningFunction f, string algorithm, int seeds, int trials, IReadOnlyList<AlgorithmSetting>? settings = null)
    {
        var rows = new double[seeds][];
        for (var seed = 0; seed < seeds; seed++)
        {
            var search = SearchAlgorithms.Create(algorithm, f.Space, [Objective.Minimize("y")], settings, seed);
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

    private static double Median(double[][] rows, int column) => Median(Column(rows, column));

    private static double Median(double[] values)
    {
        var v = values.Order().ToArray();
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

        using var probe = Process.Start(new ProcessStartInfo(DebianPython, ["-c", "import optuna"]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        await probe.WaitForExitAsync();
        if (probe.ExitCode != 0)
        {
            return null;
        }

        Console.Error.WriteLine($"  running Optuna's TPE: {seeds} seeds × {trials} trials × 4 functions, two processes ...");
        var started = Stopwatch.GetTimestamp();
        var halves = await Task.WhenAll(RunScriptAsync(script, seeds, trials, "branin,rosenbrock10"), RunScriptAsync(script, seeds, trials, "hartmann6,surrogate"));
        var results = halves.SelectMany(h => h.Results).ToDictionary(kv => kv.Key, kv => kv.Value);
        return new OptunaRun(halves[0].Version, Stopwatch.GetElapsedTime(started).TotalSeconds, results);
    }

    private static async Task<OptunaRun> RunScriptAsync(string script, int seeds, int trials, string functions)
    {
        var start = new ProcessStartInfo(DebianPython, [script, seeds.ToString(CultureInfo.InvariantCulture), trials.ToString(CultureInfo.InvariantCulture), functions])
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

    /// <summary>
    /// Synthetic learning curves: a configuration (learning rate, dropout, weight decay) has a final loss f(x) and
    /// learns at a rate that depends on its learning rate, loss(x, r) = f(x) + a(x)/√r after r epochs; a trial costs
    /// one time unit per epoch and starts from scratch. Four workers run trials in parallel, each asking for the next
    /// trial when it frees up. Time to target: the simulated time until a trial trained for the full 81 epochs reaches
    /// a loss that only 2% (and 1%) of random configurations reach.
    /// </summary>
    private static void MultiFidelity(Report report, bool quick)
    {
        const int MaxEpochs = 81;
        const int Workers = 4;
        var seeds = quick ? 7 : 21;
        var space = SearchSpace.Create(
            ParameterSpec.Double("lr", 1e-4, 1, distribution: Distribution.LogUniform),
            ParameterSpec.Double("dropout", 0, 0.6),
            ParameterSpec.Double("weight_decay", 1e-6, 1e-2, distribution: Distribution.LogUniform),
            ParameterSpec.Int("epochs", 1, MaxEpochs));
        static double Final(ParameterAssignment a)
        {
            var lr = Math.Log10(a["lr"].Number!.Value);
            var wd = Math.Log10(a["weight_decay"].Number!.Value);
            return 0.1 + (0.08 * Math.Pow(lr + 2.5, 2)) + (0.5 * Math.Pow(a["dropout"].Number!.Value - 0.25, 2)) + (0.02 * Math.Pow(wd + 4, 2));
        }

        static double Curve(ParameterAssignment a, double epochs)
        {
            // Small learning rates learn slowly: a larger early gap that closes as 1/√epochs.
            var slowness = 0.3 + (0.15 * Math.Max(0, -2.5 - Math.Log10(a["lr"].Number!.Value)));
            return Final(a) + (slowness / Math.Sqrt(epochs));
        }

        var sampler = SearchAlgorithms.Create("random", space, [Objective.Minimize("loss")], seed: 12345);
        var reference = sampler.Suggest([], 20000).Suggestions.Select(s => Curve(s.Parameters, MaxEpochs)).Order().ToArray();
        var settings = new[] { new AlgorithmSetting("resource_name", "epochs"), new AlgorithmSetting("eta", "3") };
        foreach (var quantile in new[] { 0.02, 0.01 })
        {
            var target = reference[(int)(reference.Length * quantile)];
            var asha = new double[seeds];
            var random = new double[seeds];
            for (var seed = 0; seed < seeds; seed++)
            {
                asha[seed] = TimeToTarget(SearchAlgorithms.Create("asha", space, [Objective.Minimize("loss")], settings, seed), fullBudget: false, target);
                random[seed] = TimeToTarget(SearchAlgorithms.Create("random", space, [Objective.Minimize("loss")], seed: seed), fullBudget: true, target);
            }

            var ashaMedian = Median([.. asha.Select(v => new[] { v })], 0);
            var randomMedian = Median([.. random.Select(v => new[] { v })], 0);
            var speedup = randomMedian / ashaMedian;
            report.Add(
                $"tuning: ASHA time to the best {quantile:P0} loss, {Workers} workers, median of {seeds}",
                $"{ashaMedian:0} epochs",
                $"full-budget random {randomMedian:0} epochs: {speedup:0.0}× faster",
                "≥ 3×",
                speedup >= 3);
        }

        double TimeToTarget(ISearchAlgorithm search, bool fullBudget, double target)
        {
            var history = new List<Trial>();
            var running = new List<(int Number, double Ends)>();
            var clock = 0.0;
            while (clock < 400 * MaxEpochs)
            {
                while (running.Count < Workers)
                {
                    var a = search.Suggest(history, 1).Suggestions[0].Parameters;
                    if (fullBudget)
                    {
                        a = space.Parse(new Dictionary<string, string>(a.ToStrings()) { ["epochs"] = $"{MaxEpochs}" });
                    }

                    history.Add(new Trial(history.Count, a, TrialState.Running));
                    running.Add((history.Count - 1, clock + a["epochs"].Number!.Value));
                }

                var next = running.MinBy(r => r.Ends);
                running.Remove(next);
                clock = next.Ends;
                var t = history[next.Number];
                var loss = Curve(t.Parameters, t.Parameters["epochs"].Number!.Value);
                history[next.Number] = t with { State = TrialState.Completed, Values = [loss] };
                if (t.Parameters["epochs"].Number == MaxEpochs && loss <= target)
                {
                    return clock;
                }
            }

            return clock;
        }
    }

    /// <summary>TPE's suggestion latency with 1,000 completed trials over 10 parameters of every kind; random search alongside.</summary>
    private static void Latency(Report report, bool quick)
    {
        var space = SearchSpace.Create(
            ParameterSpec.Double("lr", 1e-5, 1, distribution: Distribution.LogUniform),
            ParameterSpec.Double("dropout", 0, 0.8),
            ParameterSpec.Double("momentum", 0.5, 0.99),
            ParameterSpec.Double("weight_decay", 1e-6, 1e-1, distribution: Distribution.LogUniform),
            ParameterSpec.Double("warmup", 0, 0.3, step: 0.01),
            ParameterSpec.Int("layers", 1, 12),
            ParameterSpec.Int("width", 16, 1024, distribution: Distribution.LogUniform),
            ParameterSpec.Discrete("batch", 16, 32, 64, 128, 256),
            ParameterSpec.Categorical("optimizer", "sgd", "adam", "adamw", "rmsprop"),
            ParameterSpec.Categorical("activation", "relu", "gelu", "tanh"));
        var history = SearchAlgorithms.Create("random", space, [Objective.Minimize("loss")], seed: 1).Suggest([], 1000).Suggestions
            .Select((s, i) => new Trial(i, s.Parameters, TrialState.Completed, [Math.Log10(s.Parameters["lr"].Number!.Value) + 3 + s.Parameters["dropout"].Number!.Value]))
            .ToList();
        var samples = quick ? 30 : 100;
        var tpe = Measure("tpe");
        var independent = Measure("tpe", [new AlgorithmSetting("multivariate", "false")]);
        var random = Measure("random");
        // Wall-clock latency includes waiting for a core on a loaded machine; the process's CPU time per suggestion
        // is the work itself, and is what the target is checked on.
        report.Add(
            "tuning: TPE suggestion, 1,000 trials × 10 parameters, CPU per suggestion",
            Report.Ms(tpe.CpuMs),
            $"wall p50 {Report.Ms(tpe.Wall.Percentile(50))}, p95 {Report.Ms(tpe.Wall.Percentile(95))}; random {Report.Ms(random.CpuMs)} CPU",
            "≤ 10 ms",
            tpe.CpuMs <= 10);
        report.Add(
            "tuning: independent TPE (multivariate: false) suggestion, same history, CPU per suggestion",
            Report.Ms(independent.CpuMs),
            $"wall p50 {Report.Ms(independent.Wall.Percentile(50))}, p95 {Report.Ms(independent.Wall.Percentile(95))}",
            "≤ 10 ms",
            independent.CpuMs <= 10);

        (Samples Wall, double CpuMs) Measure(string name, IReadOnlyList<AlgorithmSetting>? settings = null)
        {
            var search = SearchAlgorithms.Create(name, space, [Objective.Minimize("loss")], settings, seed: 3);
            // Past the JIT's first tier, as a control plane that has been suggesting for a while is.
            for (var i = 0; i < 40; i++)
            {
                search.Suggest(history, 1);
            }

            var measured = new Samples(samples);
            var process = Process.GetCurrentProcess();
            var cpuBefore = process.TotalProcessorTime;
            for (var i = 0; i < samples; i++)
            {
                var started = Stopwatch.GetTimestamp();
                search.Suggest(history[..(1000 - (i % 2))], 1);
                measured.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }

            process.Refresh();
            return (measured, (process.TotalProcessorTime - cpuBefore).TotalMilliseconds / samples);
        }
    }
}
