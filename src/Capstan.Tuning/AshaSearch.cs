namespace Capstan.Tuning;

/// <summary>
/// Asynchronous successive halving (Li et al., ASHA): rungs at min·eta^k of the resource up to max. Whenever a trial
/// is asked for, the highest rung with a completed configuration in its top 1/eta that has not yet been promoted gives
/// that configuration eta times the resource; if there is none, a new random configuration starts at the least
/// resource. It never waits. Rungs and promotions are read from the resource value and the other parameters of the
/// trials in the history.
/// </summary>
internal sealed class AshaSearch(AlgorithmContext context, ResourceSchedule resource) : Sampler(context)
{
    public static AshaSearch? Create(AlgorithmContext context, SettingsReader reader) =>
        ResourceSchedule.Read(context, reader) is { } resource ? new AshaSearch(context, resource) : null;

    protected override Suggestion? SuggestNext(IReadOnlyList<Trial> history)
    {
        var rungs = Enumerable.Range(0, resource.Rungs + 1).Select(k => resource.At(k).Text).ToArray();
        var byRung = new List<Trial>[rungs.Length];
        for (var k = 0; k < rungs.Length; k++)
        {
            byRung[k] = [];
        }

        foreach (var t in history)
        {
            var k = Array.IndexOf(rungs, t.Parameters[resource.Index].Text);
            if (k >= 0)
            {
                byRung[k].Add(t);
            }
        }

        for (var k = rungs.Length - 2; k >= 0; k--)
        {
            var completed = byRung[k].Where(t => t.State == TrialState.Completed && t.Value is { } v && double.IsFinite(v)).OrderBy(Loss).ThenBy(t => t.Number).ToList();
            var top = completed.Take((int)Math.Floor(completed.Count / resource.Eta));
            foreach (var candidate in top)
            {
                if (!byRung[k + 1].Any(t => resource.SameConfiguration(t.Parameters, candidate.Parameters)))
                {
                    return new Suggestion(resource.With(candidate.Parameters, resource.At(k + 1)), candidate.Number);
                }
            }
        }

        return new Suggestion(resource.With(RandomAssignment(Rng.For(Seed, 10, history.Count)), resource.At(0)));
    }
}
