namespace Capstan.Tuning;

/// <summary>Selection by Pareto rank and hypervolume for the multi-objective samplers; losses (lower is better).</summary>
internal static class MultiObjective
{
    private static readonly Objective[] s_minimize = Enumerable.Range(0, 16).Select(i => Objective.Minimize($"f{i}")).ToArray();

    public static Objective[] Minimizing(int count) => count <= s_minimize.Length ? s_minimize[..count] : Enumerable.Range(0, count).Select(i => Objective.Minimize($"f{i}")).ToArray();

    /// <summary>
    /// The indices of the best <paramref name="count"/> points: whole Pareto fronts in rank order, the last front cut by
    /// greedy hypervolume contribution (two objectives) or crowding distance (more).
    /// </summary>
    public static List<int> SelectBest(double[][] losses, int count)
    {
        var chosen = new List<int>();
        if (count <= 0 || losses.Length == 0)
        {
            return chosen;
        }

        var m = losses[0].Length;
        var ranks = ParetoFront.Ranks(losses, Minimizing(m));
        for (var r = 0; chosen.Count < count; r++)
        {
            var front = Enumerable.Range(0, losses.Length).Where(i => ranks[i] == r).ToList();
            if (front.Count == 0)
            {
                break;
            }

            if (chosen.Count + front.Count <= count)
            {
                chosen.AddRange(front);
                continue;
            }

            var need = count - chosen.Count;
            if (m == 2)
            {
                var reference = Reference(losses);
                var subset = new List<int>();
                while (subset.Count < need)
                {
                    var best = front.Where(i => !subset.Contains(i))
                        .MaxBy(i => Hypervolume2D(subset.Append(i).Select(j => losses[j]).ToArray(), reference))!;
                    subset.Add(best);
                }

                chosen.AddRange(subset);
            }
            else
            {
                var crowding = ParetoFront.CrowdingDistances(front.Select(i => (IReadOnlyList<double>)losses[i]).ToArray(), Minimizing(m));
                chosen.AddRange(front.Select((i, k) => (i, crowding[k])).OrderByDescending(x => x.Item2).Take(need).Select(x => x.i));
            }
        }

        return chosen;
    }

    /// <summary>Weights of the good points in proportion to their hypervolume contribution (Optuna's MOTPE); uniform beyond two objectives.</summary>
    public static double[] HypervolumeWeights(double[][] points)
    {
        var n = points.Length;
        if (n <= 1 || points[0].Length != 2)
        {
            return Enumerable.Repeat(1.0, n).ToArray();
        }

        var reference = Reference(points);
        var total = Hypervolume2D(points, reference);
        var contributions = new double[n];
        for (var i = 0; i < n; i++)
        {
            contributions[i] = total - Hypervolume2D(points.Where((_, j) => j != i).ToArray(), reference) + 1e-12;
        }

        var max = contributions.Max();
        return contributions.Select(c => Math.Clamp(c / max, 0, 1)).ToArray();
    }

    /// <summary>The hypervolume a set of two-objective points dominates up to a reference point.</summary>
    public static double Hypervolume2D(double[][] points, double[] reference)
    {
        var sorted = points.Where(p => p[0] < reference[0] && p[1] < reference[1]).OrderBy(p => p[0]).ThenBy(p => p[1]).ToArray();
        var volume = 0.0;
        var ceiling = reference[1];
        foreach (var p in sorted)
        {
            if (p[1] < ceiling)
            {
                volume += (reference[0] - p[0]) * (ceiling - p[1]);
                ceiling = p[1];
            }
        }

        return volume;
    }

    private static double[] Reference(double[][] points)
    {
        var m = points[0].Length;
        var reference = new double[m];
        for (var k = 0; k < m; k++)
        {
            var worst = points.Max(p => p[k]);
            reference[k] = Math.Max(1.1 * worst, 0.9 * worst);
            if (reference[k] == 0)
            {
                reference[k] = 1e-12;
            }
        }

        return reference;
    }
}
