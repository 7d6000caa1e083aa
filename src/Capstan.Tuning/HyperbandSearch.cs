namespace Capstan.Tuning;

/// <summary>
/// Hyperband (Li et al.): brackets of successive halving from the most exploratory (many configurations at the least
/// resource) to the most conservative (few at the most), repeated. In a bracket, a rung's best 1/eta configurations
/// are promoted to the next rung with eta times the resource, once every trial of the rung has finished; until then
/// it waits. Trials map, by number, onto the fixed sequence of bracket slots, so the schedule is rebuilt from the
/// history alone.
/// </summary>
internal sealed class HyperbandSearch : Sampler
{
    private readonly ResourceSchedule _resource;
    private readonly List<(int Bracket, int Rung, int Position, int RungStart, int RungSize)> _pass = [];

    private HyperbandSearch(AlgorithmContext context, ResourceSchedule resource)
        : base(context)
    {
        _resource = resource;
        var sMax = resource.Rungs;
        var slot = 0;
        for (var s = sMax; s >= 0; s--)
        {
            var n = (int)Math.Ceiling((sMax + 1.0) / (s + 1) * Math.Pow(resource.Eta, s));
            for (var i = 0; i <= s; i++)
            {
                var size = Math.Max(1, (int)Math.Floor(n * Math.Pow(resource.Eta, -i)));
                for (var j = 0; j < size; j++)
                {
                    _pass.Add((s, i, j, slot, size));
                }

                slot += size;
            }
        }
    }

    /// <summary>Trials in one pass over all brackets.</summary>
    public int PassLength => _pass.Count;

    public static HyperbandSearch? Create(AlgorithmContext context, SettingsReader reader) =>
        ResourceSchedule.Read(context, reader) is { } resource ? new HyperbandSearch(context, resource) : null;

    protected override Suggestion? SuggestNext(IReadOnlyList<Trial> history)
    {
        var index = history.Count;
        var passStart = index / PassLength * PassLength;
        var (bracket, rung, position, rungStart, _) = _pass[index % PassLength];
        var sMax = _resource.Rungs;
        var resource = _resource.At(sMax - bracket + rung);
        if (rung == 0)
        {
            return new Suggestion(_resource.With(RandomAssignment(Rng.For(Seed, 9, index)), resource));
        }

        var previous = _pass[(rungStart - 1) % PassLength];
        var previousStart = passStart + previous.RungStart;
        var previousRung = history.Skip(previousStart).Take(previous.RungSize).ToList();
        if (previousRung.Count < previous.RungSize || previousRung.Any(t => t.State == TrialState.Running))
        {
            return null;
        }

        var ranked = previousRung
            .OrderBy(t => t.State == TrialState.Completed && t.Value is { } v && double.IsFinite(v) ? 0 : 1)
            .ThenBy(t => t.State == TrialState.Completed && t.Value is { } v && double.IsFinite(v) ? Loss(t) : 0)
            .ThenBy(t => t.Number)
            .ToList();
        var parent = ranked[position];
        return new Suggestion(_resource.With(parent.Parameters, resource), parent.Number);
    }
}
