namespace Capstan.Tuning;

/// <summary>A setting of an algorithm or early-stopping rule, as Katib writes them: a name and a string value.</summary>
public sealed record AlgorithmSetting(string Name, string Value);

/// <summary>
/// A parameter assignment to run as a new trial. <see cref="PromotedFrom"/> is set by Hyperband and ASHA when the
/// trial continues the configuration of an earlier trial with a larger resource.
/// </summary>
public sealed record Suggestion(ParameterAssignment Parameters, int? PromotedFrom = null);

/// <summary>
/// What an algorithm suggests now. Fewer suggestions than asked for with <see cref="Exhausted"/> false means it waits
/// for running trials (e.g. a Hyperband rung); <see cref="Exhausted"/> true means it will never suggest more (a
/// finished grid), so the experiment can end.
/// </summary>
public sealed record SuggestionBatch(IReadOnlyList<Suggestion> Suggestions, bool Exhausted);

/// <summary>
/// A search algorithm. It keeps no state between calls: every suggestion is computed from the history alone (all
/// trials so far, running ones included, in any order) and the seed, so the same seed and history give the same
/// suggestions and a restarted control plane rebuilds the search from its store.
/// </summary>
public interface ISearchAlgorithm
{
    /// <summary>The canonical (Katib) name of the algorithm.</summary>
    string Name { get; }

    SearchSpace Space { get; }

    IReadOnlyList<Objective> Objectives { get; }

    /// <summary>Up to <paramref name="count"/> new trials to run after <paramref name="history"/>.</summary>
    SuggestionBatch Suggest(IReadOnlyList<Trial> history, int count);
}

/// <summary>
/// The algorithms by name: Katib's names, with Optuna's and a few obvious spellings as aliases.
/// </summary>
public static class SearchAlgorithms
{
    private static readonly (string Name, string[] Aliases, string Description)[] s_catalog =
    [
        ("random", ["randomsearch", "random-search", "randomsampler"], "random search"),
        ("grid", ["gridsearch", "grid-search", "gridsampler"], "every point of the grid, in order"),
        ("sobol", ["qmc", "quasirandom", "quasi-random", "qmcsampler"], "quasi-random Sobol sequence (Joe-Kuo directions)"),
        ("tpe", ["tpesampler"], "tree-structured Parzen estimator over the joint space; multivariate: false for independent TPE with Optuna's defaults"),
        ("multivariate-tpe", ["multivariatetpe", "multivariate_tpe", "mtpe"], "tree-structured Parzen estimator over the joint space (the same as tpe)"),
        ("bayesianoptimization", ["bayesian", "bayesian-optimization", "gp", "gpsampler", "skopt-bayesian-optimization"], "Gaussian-process Bayesian optimisation, Matern 5/2, expected improvement"),
        ("cmaes", ["cma-es", "cma", "cmaessampler"], "covariance matrix adaptation evolution strategy"),
        ("hyperband", [], "Hyperband over a resource parameter"),
        ("asha", ["successivehalving", "successive-halving", "async-successive-halving"], "asynchronous successive halving over a resource parameter"),
        ("nsga2", ["nsga-ii", "nsgaii", "nsgaiisampler"], "NSGA-II multi-objective genetic search"),
        ("motpe", ["multiobjective-tpe", "motpesampler"], "multi-objective tree-structured Parzen estimator"),
    ];

    /// <summary>The canonical names accepted by <see cref="Create"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = s_catalog.Select(c => c.Name).ToArray();

    /// <summary>The canonical name for a name or alias (case-insensitive), or null when unknown.</summary>
    public static string? Canonical(string name)
    {
        var n = name.Trim().ToLowerInvariant();
        foreach (var c in s_catalog)
        {
            if (c.Name == n || c.Aliases.Contains(n))
            {
                return c.Name;
            }
        }

        return null;
    }

    /// <summary>Every error in an algorithm choice: an unknown name, unknown or bad settings, a space or objectives it cannot search.</summary>
    public static IReadOnlyList<TuningError> Validate(string name, SearchSpace space, IReadOnlyList<Objective> objectives, IReadOnlyList<AlgorithmSetting>? settings = null)
    {
        TryBuild(name, space, objectives, settings ?? [], 0, out _, out var errors);
        return errors;
    }

    /// <summary>
    /// Creates an algorithm by name. A <c>random_state</c> setting (Katib's) overrides <paramref name="seed"/>.
    /// Throws <see cref="TuningSpecException"/> listing what is wrong and what is accepted.
    /// </summary>
    public static ISearchAlgorithm Create(string name, SearchSpace space, IReadOnlyList<Objective> objectives, IReadOnlyList<AlgorithmSetting>? settings = null, long seed = 0) =>
        TryBuild(name, space, objectives, settings ?? [], seed, out var algorithm, out var errors) ? algorithm! : throw new TuningSpecException(errors);

    private static bool TryBuild(string name, SearchSpace space, IReadOnlyList<Objective> objectives, IReadOnlyList<AlgorithmSetting> settings, long seed, out ISearchAlgorithm? algorithm, out IReadOnlyList<TuningError> errors)
    {
        algorithm = null;
        var canonical = Canonical(name);
        if (canonical is null)
        {
            errors = [new TuningError(name, "algorithmName", $"unknown algorithm '{name}'; accepted: {string.Join(", ", Names)}")];
            return false;
        }

        var list = new List<TuningError>();
        if (objectives.Count == 0)
        {
            list.Add(new TuningError(canonical, "objective", "the search needs at least one objective"));
        }

        var reader = new SettingsReader(canonical, settings, list);
        var seedSetting = reader.Long("random_state", seed);
        var context = new AlgorithmContext(canonical, space, objectives, seedSetting);
        ISearchAlgorithm? built = canonical switch
        {
            "random" => RandomSearch.Create(context, reader),
            "grid" => GridSearch.Create(context, reader),
            "tpe" => TpeSearch.Create(context, reader, multivariate: true),
            "multivariate-tpe" => TpeSearch.Create(context, reader, multivariate: true),
            "motpe" => TpeSearch.Create(context, reader, multivariate: false),
            "sobol" => SobolSearch.Create(context, reader),
            "bayesianoptimization" => GaussianProcessSearch.Create(context, reader),
            "cmaes" => CmaEsSearch.Create(context, reader),
            "hyperband" => HyperbandSearch.Create(context, reader),
            "asha" => AshaSearch.Create(context, reader),
            "nsga2" => Nsga2Search.Create(context, reader),
            _ => null,
        };
        reader.RejectUnknown();
        if (objectives.Count > 1 && canonical is "bayesianoptimization" or "cmaes" or "hyperband" or "asha")
        {
            list.Add(new TuningError(canonical, "objective", $"{canonical} searches one objective; for several use nsga2, motpe (or tpe), random, grid or sobol"));
        }

        errors = list;
        algorithm = list.Count == 0 ? built : null;
        return algorithm is not null;
    }
}

/// <summary>What every algorithm is built from.</summary>
internal sealed record AlgorithmContext(string Name, SearchSpace Space, IReadOnlyList<Objective> Objectives, long Seed);
