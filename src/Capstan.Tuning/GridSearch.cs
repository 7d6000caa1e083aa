namespace Capstan.Tuning;

/// <summary>
/// Grid search: every combination of the parameters' values in order, the first parameter varying slowest, skipping
/// combinations already tried. Double parameters need a step (as in Katib).
/// </summary>
internal sealed class GridSearch : Sampler
{
    private readonly IReadOnlyList<ParameterValue>[] _axes;

    private GridSearch(AlgorithmContext context, IReadOnlyList<ParameterValue>[] axes)
        : base(context) => _axes = axes;

    /// <summary>The number of grid points.</summary>
    public double Size => _axes.Aggregate(1.0, (n, a) => n * a.Count);

    public static GridSearch? Create(AlgorithmContext context, SettingsReader settings)
    {
        var axes = new IReadOnlyList<ParameterValue>[context.Space.Count];
        var ok = true;
        for (var i = 0; i < axes.Length; i++)
        {
            var grid = context.Space.Dimensions[i].Grid();
            if (grid is null)
            {
                settings.Errors.Add(new TuningError(context.Space.Parameters[i].Name, "feasibleSpace.step", "grid search needs a step for a double parameter"));
                ok = false;
            }

            axes[i] = grid ?? [];
        }

        return ok ? new GridSearch(context, axes) : null;
    }

    protected override Suggestion? SuggestNext(IReadOnlyList<Trial> history)
    {
        var used = history.Select(t => t.Parameters).ToHashSet();
        foreach (var point in Points())
        {
            if (!used.Contains(point))
            {
                return new Suggestion(point);
            }
        }

        return null;
    }

    protected override bool IsExhausted(IReadOnlyList<Trial> history) =>
        history.Select(t => t.Parameters).Distinct().Count() >= Size;

    /// <summary>The grid in order: an odometer over the axes, the last parameter turning fastest.</summary>
    public IEnumerable<ParameterAssignment> Points()
    {
        var index = new int[_axes.Length];
        while (true)
        {
            yield return new ParameterAssignment(Space, index.Select((k, i) => _axes[i][k]).ToArray());
            var d = _axes.Length - 1;
            while (d >= 0 && ++index[d] == _axes[d].Count)
            {
                index[d] = 0;
                d--;
            }

            if (d < 0)
            {
                yield break;
            }
        }
    }
}
