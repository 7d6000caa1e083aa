namespace Capstan.Core.Resources;

/// <summary>
/// The kinds of <c>capstan.dev/v1alpha1</c>. Adding a kind is adding its <see cref="Resource"/>
/// class and pointing its entry here at it; kinds without a class yet are named so a file that
/// uses one is told so rather than that the kind does not exist.
/// </summary>
public static class ResourceKinds
{
    private static readonly Dictionary<string, Type?> s_kinds = new(StringComparer.Ordinal)
    {
        [TrainJob.KindName] = typeof(TrainJob),
        [TuningExperiment.KindName] = typeof(TuningExperiment),
        ["Pipeline"] = null,
        [InferenceService.KindName] = typeof(InferenceService),
        ["Monitor"] = null,
    };

    public static IReadOnlyCollection<string> Names => s_kinds.Keys;

    public static bool IsKnown(string kind) => s_kinds.ContainsKey(kind);

    /// <summary>The class of <paramref name="kind"/>, or null when the kind is unknown or not supported yet.</summary>
    public static Type? TypeOf(string kind) => s_kinds.GetValueOrDefault(kind);
}
