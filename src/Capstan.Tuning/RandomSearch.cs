namespace Capstan.Tuning;

/// <summary>Random search: each trial's parameters drawn independently, seeded by (seed, trial index).</summary>
internal sealed class RandomSearch(AlgorithmContext context) : Sampler(context)
{
    public static RandomSearch Create(AlgorithmContext context, SettingsReader settings) => new(context);

    protected override Suggestion? SuggestNext(IReadOnlyList<Trial> history) =>
        new(RandomAssignment(Rng.For(Seed, 1, history.Count)));
}
