namespace Capstan.Tuning;

/// <summary>
/// Tree-structured Parzen estimator (Bergstra et al.), after Optuna's TPESampler: start-up trials for the first
/// n_startup_trials, then the best ceil(gamma·n) trials (gamma 0.1, at most 25) against the rest, one Parzen
/// estimator each, n_ei_candidates drawn from the good one and the candidate with the largest l(x)/g(x) kept.
/// Multivariate TPE (the default) models the joint space with the settings of <see cref="TpeSettings.Multivariate"/>;
/// <c>multivariate: false</c> is independent TPE per parameter with Optuna's defaults throughout. Pruned trials rank
/// behind completed ones by how far they got, then by their last value. With several objectives it is MOTPE: trials
/// split by non-dominated rank, the good ones weighted by hypervolume contribution.
/// </summary>
internal sealed class TpeSearch(AlgorithmContext context, TpeSettings settings, bool multivariate) : Sampler(context)
{
    public static TpeSearch? Create(AlgorithmContext context, SettingsReader reader, bool multivariate)
    {
        multivariate = reader.Bool("multivariate", multivariate);
        var d = multivariate ? TpeSettings.Multivariate : new TpeSettings();
        var startup = reader.Int("n_startup_trials", d.StartupTrials, min: 0);
        var candidates = reader.Int("n_ei_candidates", d.EiCandidates, min: 1);
        var gamma = reader.Double("gamma", d.Gamma, g => g > 0 && g <= 1, "in (0, 1]");
        var prior = reader.Double("prior_weight", d.PriorWeight, w => w > 0, "greater than 0");
        var clip = reader.Bool("consider_magic_clip", d.ConsiderMagicClip);
        var endpoints = reader.Bool("consider_endpoints", d.ConsiderEndpoints);
        var normalized = reader.Bool("normalized_kernels", d.NormalizedKernels);
        var startupSampler = reader.Choice("startup_sampler", d.SobolStartup ? "sobol" : "random", "random", "sobol");
        var bandwidth = reader.Choice("bandwidth", d.Bandwidth == TpeBandwidth.Scott ? "scott" : "neighbour", "neighbour", "scott");
        var factor = reader.Double("bandwidth_factor", d.BandwidthFactor, f => f > 0, "greater than 0");
        var recombination = reader.Double("kernel_recombination", d.KernelRecombination, p => p >= 0 && p <= 1, "in [0, 1]");
        var settings = new TpeSettings(
            startup,
            candidates,
            gamma,
            prior,
            clip,
            endpoints,
            normalized,
            bandwidth == "scott" ? TpeBandwidth.Scott : TpeBandwidth.Neighbour,
            factor,
            recombination,
            startupSampler == "sobol" && context.Space.Count <= SobolSearch.MaxDimensions);
        return new TpeSearch(context, settings, multivariate);
    }

    protected override Suggestion? SuggestNext(IReadOnlyList<Trial> history)
    {
        var index = history.Count;
        var observed = Observations(history, out var weightsBelow, out var below, out var above);
        if (observed < settings.StartupTrials || below.Count == 0)
        {
            if (settings.SobolStartup && index < settings.StartupTrials)
            {
                // Scrambled Sobol points (a seeded digital shift) cover the space more evenly than uniform draws.
                var shift = Rng.For(Seed, 5, 0);
                var u = new double[Dimensions.Count];
                for (var d = 0; d < u.Length; d++)
                {
                    var mask = (uint)(shift.NextUInt64() >> 32);
                    u[d] = (SobolSearch.Point(index + 1, d) ^ mask) / 4294967296.0;
                }

                return new Suggestion(FromUnit(u));
            }

            return new Suggestion(RandomAssignment(Rng.For(Seed, 2, index)));
        }

        var rng = Rng.For(Seed, 3, index);
        var values = new ParameterValue[Dimensions.Count];
        if (multivariate)
        {
            var dims = Dimensions.ToArray();
            var best = Choose(dims, Enumerable.Range(0, dims.Length).ToArray(), below, above, weightsBelow, rng);
            for (var d = 0; d < dims.Length; d++)
            {
                values[d] = dims[d].FromModel(best[d]);
            }
        }
        else
        {
            for (var d = 0; d < Dimensions.Count; d++)
            {
                var best = Choose([Dimensions[d]], [d], below, above, weightsBelow, rng);
                values[d] = Dimensions[d].FromModel(best[0]);
            }
        }

        return new Suggestion(new ParameterAssignment(Space, values));
    }

    private double[] Choose(Dimension[] dims, int[] axes, List<Trial> below, List<Trial> above, double[]? weightsBelow, Rng rng)
    {
        if (dims.All(d => !d.IsCategorical && d.High <= d.Low))
        {
            return dims.Select(d => d.Low).ToArray();
        }

        var l = new ParzenEstimator(dims, Points(below, axes), weightsBelow, settings, multivariate);
        var g = new ParzenEstimator(dims, Points(above, axes), null, settings, multivariate);
        var candidates = l.Sample(rng, settings.EiCandidates);
        var bestScore = double.NegativeInfinity;
        var best = candidates[0];
        foreach (var c in candidates)
        {
            var score = l.LogPdf(c) - g.LogPdf(c);
            if (score > bestScore)
            {
                bestScore = score;
                best = c;
            }
        }

        return best;
    }

    private double[][] Points(List<Trial> trials, int[] axes) =>
        trials.Select(t => axes.Select(a => Dimensions[a].ToModel(t.Parameters[a])).ToArray()).ToArray();

    /// <summary>Splits the scored trials into the good (below) and the rest (above), each in trial order.</summary>
    private int Observations(IReadOnlyList<Trial> history, out double[]? weightsBelow, out List<Trial> below, out List<Trial> above)
    {
        weightsBelow = null;
        if (Objectives.Count > 1)
        {
            var scored = Completed(history);
            var nBelow = settings.Below(scored.Count);
            var losses = scored.Select(t => Objectives.Select((o, k) => o.Loss(t.Values![k])).ToArray()).ToArray();
            var chosen = MultiObjective.SelectBest(losses, nBelow);
            var inBelow = new bool[scored.Count];
            foreach (var i in chosen)
            {
                inBelow[i] = true;
            }

            below = scored.Where((t, i) => inBelow[i]).ToList();
            above = scored.Where((t, i) => !inBelow[i]).ToList();
            var belowLosses = losses.Where((l, i) => inBelow[i]).ToArray();
            weightsBelow = MultiObjective.HypervolumeWeights(belowLosses);
            return scored.Count;
        }

        var ranked = new List<(Trial Trial, double Stage, double Loss, int Order)>();
        var order = 0;
        foreach (var t in history)
        {
            if (t.State == TrialState.Completed && t.Value is { } v && !double.IsNaN(v))
            {
                ranked.Add((t, double.NegativeInfinity, Objectives[0].Loss(v), order++));
            }
            else if (t.State == TrialState.Pruned)
            {
                var last = t.IntermediateValues.Where(iv => !double.IsNaN(iv.Value)).OrderBy(iv => iv.Step).LastOrDefault();
                ranked.Add(t.IntermediateValues.Count > 0
                    ? (t, -last.Step, Objectives[0].Loss(last.Value), order++)
                    : (t, 1, 0, order++));
            }
        }

        var n = settings.Below(ranked.Count);
        var sorted = ranked.OrderBy(r => r.Stage).ThenBy(r => r.Loss).ThenBy(r => r.Order).ToList();
        below = sorted.Take(n).OrderBy(r => r.Order).Select(r => r.Trial).ToList();
        above = sorted.Skip(n).OrderBy(r => r.Order).Select(r => r.Trial).ToList();
        return ranked.Count;
    }
}
