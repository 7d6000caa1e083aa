namespace Capstan.Tuning;

/// <summary>
/// Bayesian optimisation with a Gaussian process (Katib's <c>bayesianoptimization</c>, skopt's settings): random
/// points for the first n_initial_points (10), then a GP with an ARD Matern 5/2 kernel fitted by marginal likelihood
/// on the completed trials, and the next point where the acquisition is largest — expected improvement by default
/// (xi 0.01), or probability of improvement, or the lower confidence bound (kappa 1.96). The acquisition is
/// maximised by sampling 2,000 points (plus neighbours of the best trials) and refining the best few by a shrinking
/// local search. Numeric parameters are coordinates of the unit cube; a categorical one is one coordinate per choice.
/// </summary>
internal sealed class GaussianProcessSearch(AlgorithmContext context, int initialPoints, string acquisition, double xi, double kappa) : Sampler(context)
{
    private const int SampledCandidates = 2000;

    public static GaussianProcessSearch? Create(AlgorithmContext context, SettingsReader reader)
    {
        reader.Choice("base_estimator", "GP", "GP");
        var initial = reader.Int("n_initial_points", 10, min: 1);
        var acquisition = reader.Choice("acq_func", "EI", "EI", "PI", "LCB");
        reader.Choice("acq_optimizer", "auto", "auto", "sampling");
        var xi = reader.Double("xi", 0.01, v => v >= 0, "at least 0");
        var kappa = reader.Double("kappa", 1.96, v => v >= 0, "at least 0");
        return new GaussianProcessSearch(context, initial, acquisition, xi, kappa);
    }

    protected override Suggestion? SuggestNext(IReadOnlyList<Trial> history)
    {
        var index = history.Count;
        var completed = Completed(history);
        if (completed.Count < initialPoints)
        {
            return new Suggestion(RandomAssignment(Rng.For(Seed, 7, index)));
        }

        var x = completed.Select(t => Encode(ToUnit(t.Parameters))).ToArray();
        var y = completed.Select(Loss).ToArray();
        var gp = new GaussianProcess(x, y).Fit();
        var best = y.Min();
        var rng = Rng.For(Seed, 8, index);
        var candidates = new List<double[]>(SampledCandidates + 50);
        for (var i = 0; i < SampledCandidates; i++)
        {
            candidates.Add(Encode(Enumerable.Range(0, Dimensions.Count).Select(_ => rng.NextDouble()).ToArray()));
        }

        foreach (var near in completed.OrderBy(Loss).Take(5))
        {
            var u = ToUnit(near.Parameters);
            for (var i = 0; i < 10; i++)
            {
                candidates.Add(Encode(u.Select(c => Math.Clamp(c + (0.05 * rng.Normal()), 0, 1)).ToArray()));
            }
        }

        var scored = candidates.Select(c => (Point: c, Score: Acquisition(gp, c, best))).OrderByDescending(s => s.Score).Take(5).ToList();
        var bestPoint = scored[0].Point;
        var bestScore = scored[0].Score;
        foreach (var (start, startScore) in scored)
        {
            var point = start;
            var score = startScore;
            for (var step = 0.1; step > 1e-3; step /= 2)
            {
                for (var tries = 0; tries < 10; tries++)
                {
                    var next = Decoded(point.Select(c => Math.Clamp(c + (step * rng.Normal()), 0, 1)).ToArray());
                    var s = Acquisition(gp, next, best);
                    if (s > score)
                    {
                        (point, score) = (next, s);
                    }
                }
            }

            if (score > bestScore)
            {
                (bestPoint, bestScore) = (point, score);
            }
        }

        return new Suggestion(FromUnit(Decode(bestPoint)));
    }

    private double Acquisition(GaussianProcess gp, double[] point, double best)
    {
        var (mean, std) = gp.Predict(point);
        switch (acquisition)
        {
            case "LCB":
                return -(mean - (kappa * std));
            case "PI":
                return Gaussian.Cdf((best - mean - xi) / std);
            default:
                var z = (best - mean - xi) / std;
                return std * ((z * Gaussian.Cdf(z)) + Gaussian.Pdf(z));
        }
    }

    /// <summary>Unit coordinates to model features: numeric ones as they are, a categorical one as a one-hot block.</summary>
    private double[] Encode(double[] unit)
    {
        var features = new List<double>();
        for (var d = 0; d < Dimensions.Count; d++)
        {
            var dim = Dimensions[d];
            if (dim.IsCategorical)
            {
                var choice = Math.Min((int)(unit[d] * dim.Choices), dim.Choices - 1);
                for (var c = 0; c < dim.Choices; c++)
                {
                    features.Add(c == choice ? 1 : 0);
                }
            }
            else
            {
                features.Add(unit[d]);
            }
        }

        return features.ToArray();
    }

    private double[] Decode(double[] features)
    {
        var unit = new double[Dimensions.Count];
        var f = 0;
        for (var d = 0; d < Dimensions.Count; d++)
        {
            var dim = Dimensions[d];
            if (dim.IsCategorical)
            {
                var choice = 0;
                for (var c = 1; c < dim.Choices; c++)
                {
                    if (features[f + c] > features[f + choice])
                    {
                        choice = c;
                    }
                }

                unit[d] = (choice + 0.5) / dim.Choices;
                f += dim.Choices;
            }
            else
            {
                unit[d] = features[f++];
            }
        }

        return unit;
    }

    /// <summary>A perturbed feature vector snapped back to a point the space can hold (one-hot blocks re-made).</summary>
    private double[] Decoded(double[] features) => Encode(Decode(features));
}
