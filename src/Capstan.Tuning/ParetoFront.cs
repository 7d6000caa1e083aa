namespace Capstan.Tuning;

/// <summary>Ranking trials by their objectives: the best trial, Pareto dominance and non-dominated sorting.</summary>
public static class ParetoFront
{
    /// <summary>The completed trials no other completed trial dominates, in trial order.</summary>
    public static IReadOnlyList<Trial> Of(IReadOnlyList<Trial> trials, IReadOnlyList<Objective> objectives)
    {
        var completed = Scored(trials, objectives);
        var ranks = Ranks(completed.Select(t => t.Values!).ToArray(), objectives);
        return completed.Where((t, i) => ranks[i] == 0).OrderBy(t => t.Number).ToArray();
    }

    /// <summary>The best completed trial on one objective (the first such trial on ties), or null.</summary>
    public static Trial? Best(IReadOnlyList<Trial> trials, Objective objective, int objectiveIndex = 0)
    {
        Trial? best = null;
        foreach (var t in trials.OrderBy(t => t.Number))
        {
            if (t.State == TrialState.Completed && t.Values is { } v && v.Count > objectiveIndex && double.IsFinite(v[objectiveIndex])
                && (best is null || objective.IsBetter(v[objectiveIndex], best.Values![objectiveIndex])))
            {
                best = t;
            }
        }

        return best;
    }

    /// <summary>True when <paramref name="a"/> is no worse than <paramref name="b"/> on every objective and better on one.</summary>
    public static bool Dominates(IReadOnlyList<double> a, IReadOnlyList<double> b, IReadOnlyList<Objective> objectives)
    {
        var better = false;
        for (var k = 0; k < objectives.Count; k++)
        {
            var la = objectives[k].Loss(a[k]);
            var lb = objectives[k].Loss(b[k]);
            if (la > lb)
            {
                return false;
            }

            better |= la < lb;
        }

        return better;
    }

    /// <summary>
    /// Non-dominated sorting (Deb et al.): 0 for the points on the Pareto front, 1 for those on the front once the
    /// first is removed, and so on.
    /// </summary>
    public static int[] Ranks(IReadOnlyList<IReadOnlyList<double>> values, IReadOnlyList<Objective> objectives)
    {
        var n = values.Count;
        var dominatedBy = new int[n];
        var dominates = new List<int>[n];
        for (var i = 0; i < n; i++)
        {
            dominates[i] = [];
        }

        for (var i = 0; i < n; i++)
        {
            for (var j = i + 1; j < n; j++)
            {
                if (Dominates(values[i], values[j], objectives))
                {
                    dominates[i].Add(j);
                    dominatedBy[j]++;
                }
                else if (Dominates(values[j], values[i], objectives))
                {
                    dominates[j].Add(i);
                    dominatedBy[i]++;
                }
            }
        }

        var ranks = new int[n];
        var front = Enumerable.Range(0, n).Where(i => dominatedBy[i] == 0).ToList();
        var rank = 0;
        while (front.Count > 0)
        {
            var next = new List<int>();
            foreach (var i in front)
            {
                ranks[i] = rank;
                foreach (var j in dominates[i])
                {
                    if (--dominatedBy[j] == 0)
                    {
                        next.Add(j);
                    }
                }
            }

            front = next;
            rank++;
        }

        return ranks;
    }

    /// <summary>
    /// Crowding distance of points within one front (NSGA-II): larger is lonelier; the extremes of each objective get
    /// infinity.
    /// </summary>
    public static double[] CrowdingDistances(IReadOnlyList<IReadOnlyList<double>> front, IReadOnlyList<Objective> objectives)
    {
        var n = front.Count;
        var distance = new double[n];
        for (var k = 0; k < objectives.Count; k++)
        {
            var order = Enumerable.Range(0, n).OrderBy(i => front[i][k]).ToArray();
            var span = n == 0 ? 0 : front[order[^1]][k] - front[order[0]][k];
            if (n > 0)
            {
                distance[order[0]] = double.PositiveInfinity;
                distance[order[^1]] = double.PositiveInfinity;
            }

            for (var r = 1; r < n - 1; r++)
            {
                if (span > 0)
                {
                    distance[order[r]] += (front[order[r + 1]][k] - front[order[r - 1]][k]) / span;
                }
            }
        }

        return distance;
    }

    internal static List<Trial> Scored(IReadOnlyList<Trial> trials, IReadOnlyList<Objective> objectives) =>
        trials.Where(t => t.State == TrialState.Completed && t.Values is { } v && v.Count >= objectives.Count && v.Take(objectives.Count).All(double.IsFinite)).ToList();
}
