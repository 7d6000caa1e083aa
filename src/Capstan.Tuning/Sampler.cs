namespace Capstan.Tuning;

/// <summary>
/// The common part of the algorithms: orders the history by trial number and suggests one trial at a time, treating
/// the ones suggested earlier in the same batch as running trials.
/// </summary>
internal abstract class Sampler(AlgorithmContext context) : ISearchAlgorithm
{
    public string Name => context.Name;

    public SearchSpace Space => context.Space;

    public IReadOnlyList<Objective> Objectives => context.Objectives;

    protected long Seed => context.Seed;

    protected IReadOnlyList<Dimension> Dimensions => context.Space.Dimensions;

    public SuggestionBatch Suggest(IReadOnlyList<Trial> history, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var trials = history.OrderBy(t => t.Number).ToList();
        var next = trials.Count == 0 ? 0 : trials[^1].Number + 1;
        var suggestions = new List<Suggestion>();
        for (var i = 0; i < count; i++)
        {
            var suggestion = SuggestNext(trials);
            if (suggestion is null)
            {
                break;
            }

            suggestions.Add(suggestion);
            trials.Add(new Trial(next++, suggestion.Parameters, TrialState.Running));
        }

        return new SuggestionBatch(suggestions, IsExhausted(trials));
    }

    /// <summary>The next trial after <paramref name="history"/> (ordered by number), or null to wait.</summary>
    protected abstract Suggestion? SuggestNext(IReadOnlyList<Trial> history);

    protected virtual bool IsExhausted(IReadOnlyList<Trial> history) => false;

    protected ParameterAssignment FromUnit(ReadOnlySpan<double> unit)
    {
        var values = new ParameterValue[Dimensions.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = Dimensions[i].FromUnit(unit[i]);
        }

        return new ParameterAssignment(Space, values);
    }

    protected double[] ToUnit(ParameterAssignment assignment)
    {
        var unit = new double[Dimensions.Count];
        for (var i = 0; i < unit.Length; i++)
        {
            unit[i] = Dimensions[i].ToUnit(assignment[i]);
        }

        return unit;
    }

    /// <summary>A random assignment: uniform on each parameter's model axis (normal where the distribution says so).</summary>
    protected ParameterAssignment RandomAssignment(Rng rng)
    {
        var values = new ParameterValue[Dimensions.Count];
        for (var i = 0; i < values.Length; i++)
        {
            var d = Dimensions[i];
            if (d.IsCategorical)
            {
                values[i] = d.FromModel(rng.Next(d.Choices));
            }
            else if (d.IsNormal)
            {
                var mid = (d.Low + d.High) / 2;
                var x = mid + (rng.Normal() * (d.High - d.Low) / 6);
                values[i] = d.FromModel(Math.Clamp(x, d.Low, d.High));
            }
            else
            {
                values[i] = d.FromModel(rng.Uniform(d.Low, d.High));
            }
        }

        return new ParameterAssignment(Space, values);
    }

    /// <summary>Completed trials with a finite value for every objective.</summary>
    protected List<Trial> Completed(IReadOnlyList<Trial> history) =>
        history.Where(t => t.State == TrialState.Completed && t.Values is { } v && v.Count >= Objectives.Count && v.Take(Objectives.Count).All(double.IsFinite)).ToList();

    /// <summary>The first objective's value as a loss (lower is better).</summary>
    protected double Loss(Trial trial) => Objectives[0].Loss(trial.Values![0]);
}
