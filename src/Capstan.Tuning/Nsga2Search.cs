namespace Capstan.Tuning;

/// <summary>
/// NSGA-II (Deb et al.) with Optuna's defaults: generations of population_size (50) trials by number; the first is
/// random, each later one is bred from the best population_size completed trials of all earlier generations (by
/// non-dominated rank, then crowding distance) — binary tournaments, uniform crossover (crossover_prob 0.9,
/// swapping_prob 0.5) and mutation to a random value with mutation_prob (1/number of parameters).
/// </summary>
internal sealed class Nsga2Search(AlgorithmContext context, int population, double crossover, double swapping, double? mutation) : Sampler(context)
{
    public static Nsga2Search Create(AlgorithmContext context, SettingsReader reader)
    {
        var population = reader.Int("population_size", 50, min: 2);
        var crossover = reader.Double("crossover_prob", 0.9, p => p is >= 0 and <= 1, "between 0 and 1");
        var swapping = reader.Double("swapping_prob", 0.5, p => p is >= 0 and <= 1, "between 0 and 1");
        var mutation = reader.Double("mutation_prob", double.NaN, p => p is >= 0 and <= 1, "between 0 and 1");
        return new Nsga2Search(context, population, crossover, swapping, double.IsNaN(mutation) ? null : mutation);
    }

    protected override Suggestion? SuggestNext(IReadOnlyList<Trial> history)
    {
        var index = history.Count;
        var generation = index / population;
        var rng = Rng.For(Seed, 11, index);
        var earlier = history.Take(generation * population).ToList();
        var parents = Select(Completed(earlier));
        if (generation == 0 || parents.Count < 2)
        {
            return new Suggestion(RandomAssignment(rng));
        }

        var a = Tournament(parents, rng);
        var b = Tournament(parents, rng);
        var values = a.Trial.Parameters.Values.ToArray();
        if (rng.NextDouble() < crossover)
        {
            for (var d = 0; d < values.Length; d++)
            {
                if (rng.NextDouble() < swapping)
                {
                    values[d] = b.Trial.Parameters[d];
                }
            }
        }

        var random = RandomAssignment(rng);
        var p = mutation ?? (1.0 / Math.Max(1, values.Length));
        for (var d = 0; d < values.Length; d++)
        {
            if (rng.NextDouble() < p)
            {
                values[d] = random[d];
            }
        }

        return new Suggestion(new ParameterAssignment(Space, values));
    }

    private static (Trial Trial, int Rank, double Crowding) Tournament(List<(Trial Trial, int Rank, double Crowding)> parents, Rng rng)
    {
        var x = parents[rng.Next(parents.Count)];
        var y = parents[rng.Next(parents.Count)];
        return x.Rank < y.Rank || (x.Rank == y.Rank && x.Crowding >= y.Crowding) ? x : y;
    }

    /// <summary>The elite: the best population_size trials by rank, the last front cut by crowding distance.</summary>
    private List<(Trial Trial, int Rank, double Crowding)> Select(List<Trial> completed)
    {
        var values = completed.Select(t => (IReadOnlyList<double>)t.Values!.Take(Objectives.Count).ToArray()).ToArray();
        var ranks = ParetoFront.Ranks(values, Objectives);
        var elite = new List<(Trial, int, double)>();
        foreach (var group in Enumerable.Range(0, completed.Count).GroupBy(i => ranks[i]).OrderBy(g => g.Key))
        {
            var members = group.ToArray();
            var crowding = ParetoFront.CrowdingDistances(members.Select(i => values[i]).ToArray(), Objectives);
            var ordered = members.Select((i, k) => (completed[i], group.Key, crowding[k])).OrderByDescending(m => m.Item3).ThenBy(m => m.Item1.Number);
            foreach (var m in ordered)
            {
                if (elite.Count == population)
                {
                    return elite;
                }

                elite.Add(m);
            }
        }

        return elite;
    }
}
