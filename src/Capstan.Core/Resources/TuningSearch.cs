using System.Globalization;
using Engine = Capstan.Tuning;

namespace Capstan.Core.Resources;

/// <summary>
/// An <see cref="ExperimentSpec"/> as the search engine (<c>Capstan.Tuning</c>) sees it: the search space, the
/// objectives with their directions and goal, the algorithm and the early-stopping rule; and the engine's errors put
/// back at their field paths in the experiment.
/// </summary>
public static class TuningSearch
{
    private static readonly Dictionary<string, string> s_katibOnly = new(StringComparer.Ordinal)
    {
        ["enas"] = "neural architecture search (ENAS) is not supported",
        ["darts"] = "neural architecture search (DARTS) is not supported",
        ["pbt"] = "population based training is not supported",
    };

    /// <summary>The search space; throws <see cref="Engine.TuningSpecException"/> when it is invalid.</summary>
    public static Engine.SearchSpace Space(ExperimentSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return Engine.SearchSpace.Create(Parameters(spec).Select(p => p.Parameter));
    }

    /// <summary>The objectives, the primary one first with the goal.</summary>
    public static IReadOnlyList<Engine.Objective> Objectives(ExperimentSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var objective = spec.Objective ?? new ObjectiveSpec();
        if (objective.Objectives is { Count: > 0 } list)
        {
            return [.. list.Select((o, i) => new Engine.Objective(o.MetricName ?? "", Direction(o.Type), i == 0 ? objective.Goal : null))];
        }

        return [new Engine.Objective(objective.ObjectiveMetricName ?? "", Direction(objective.Type), objective.Goal)];
    }

    /// <summary>The algorithm, seeded by <c>random_state</c> or else by the experiment's name, so a file run again searches the same way.</summary>
    public static Engine.ISearchAlgorithm Algorithm(TuningExperiment experiment)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        var spec = experiment.Spec;
        return Engine.SearchAlgorithms.Create(
            spec.Algorithm?.AlgorithmName ?? "random",
            Space(spec),
            Objectives(spec),
            Settings(spec.Algorithm?.AlgorithmSettings),
            Seed(experiment.Metadata.Name ?? ""));
    }

    public static Engine.IEarlyStoppingRule? EarlyStopping(ExperimentSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return spec.EarlyStopping is { AlgorithmName: { } name } early
            ? Engine.EarlyStoppingRules.Create(name, Objectives(spec)[0], Settings(early.AlgorithmSettings))
            : null;
    }

    /// <summary>A stable 64-bit FNV-1a hash of the name: the default seed.</summary>
    public static long Seed(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var hash = 14695981039346656037UL;
        foreach (var c in name)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return (long)(hash & long.MaxValue);
    }

    /// <summary>Reports, at their field paths, what the engine rejects: the space, the algorithm and its settings, the early-stopping rule.</summary>
    internal static void Validate(ExperimentSpec spec, ResourceValidation validation)
    {
        var parameters = Parameters(spec);
        if (parameters.Count == 0 || parameters.Count != (spec.Parameters?.Count ?? 0))
        {
            return;
        }

        if (spec.Algorithm is { AlgorithmName: { Length: > 0 } algorithmName } && Engine.SearchAlgorithms.Canonical(algorithmName) is null)
        {
            var hint = s_katibOnly.TryGetValue(algorithmName, out var why)
                ? why
                : SpellingSuggestion.Closest(algorithmName, Engine.SearchAlgorithms.Names) is { } close ? $"did you mean '{close}'?" : "unknown algorithm";
            validation.Error("spec.algorithm.algorithmName", $"'{algorithmName}': {hint} (supported: {string.Join(", ", Engine.SearchAlgorithms.Names)})");
        }

        var spaceErrors = Engine.SearchSpace.Validate(parameters.Select(p => p.Parameter));
        foreach (var error in spaceErrors)
        {
            var index = parameters.LastOrDefault(p => p.Parameter.Name == error.Subject).Index;
            validation.Error(FieldPath.Field(FieldPath.Index("spec.parameters", index), error.Field), error.Message);
        }

        var objectives = Objectives(spec);
        if (spaceErrors.Count > 0 || objectives.Any(o => o.Name.Length == 0))
        {
            return;
        }

        var space = Engine.SearchSpace.Create(parameters.Select(p => p.Parameter));
        if (spec.Algorithm is { AlgorithmName: { Length: > 0 } name } algorithm)
        {
            if (Engine.SearchAlgorithms.Canonical(name) is not null)
            {
                var errors = Engine.SearchAlgorithms.Validate(name, space, objectives, Settings(algorithm.AlgorithmSettings));
                Report(errors, "spec.algorithm", algorithm.AlgorithmSettings, parameters, validation);
            }
        }

        if (spec.EarlyStopping is { AlgorithmName: { } earlyName } early)
        {
            Report(Engine.EarlyStoppingRules.Validate(earlyName, objectives[0], Settings(early.AlgorithmSettings)), "spec.earlyStopping", early.AlgorithmSettings, parameters, validation);
        }
    }

    private static void Report(IReadOnlyList<Engine.TuningError> errors, string root, IList<AlgorithmSetting>? settings, List<(int Index, Engine.ParameterSpec Parameter)> parameters, ResourceValidation validation)
    {
        foreach (var error in errors)
        {
            var settingIndex = settings?.Select((s, i) => (s, i)).LastOrDefault(x => string.Equals(x.s.Name, error.Field, StringComparison.OrdinalIgnoreCase)).i ?? -1;
            var settingFound = settings is not null && settingIndex >= 0 && string.Equals(settings[settingIndex].Name, error.Field, StringComparison.OrdinalIgnoreCase);
            var path = error.Field switch
            {
                "algorithmName" => root + ".algorithmName",
                "objective" => "spec.objective",
                _ when settingFound => FieldPath.Index(root + ".algorithmSettings", settingIndex),
                _ when parameters.FirstOrDefault(p => p.Parameter.Name == error.Subject).Parameter is not null =>
                    FieldPath.Index("spec.parameters", parameters.First(p => p.Parameter.Name == error.Subject).Index),
                _ => root,
            };
            validation.Error(path, error.Message);
        }
    }

    /// <summary>The parameters that are complete enough to hand to the engine, with their index in the spec.</summary>
    private static List<(int Index, Engine.ParameterSpec Parameter)> Parameters(ExperimentSpec spec)
    {
        var list = new List<(int, Engine.ParameterSpec)>();
        for (var i = 0; i < (spec.Parameters?.Count ?? 0); i++)
        {
            var p = spec.Parameters![i];
            if (p is { Name: { Length: > 0 } name, ParameterType: { } type, FeasibleSpace: { } space })
            {
                list.Add((i, new Engine.ParameterSpec(
                    name,
                    type switch
                    {
                        ParameterType.Double => Engine.ParameterType.Double,
                        ParameterType.Int => Engine.ParameterType.Int,
                        ParameterType.Discrete => Engine.ParameterType.Discrete,
                        _ => Engine.ParameterType.Categorical,
                    },
                    new Engine.FeasibleSpace(
                        space.Min,
                        space.Max,
                        space.Step,
                        space.List is null ? null : [.. space.List],
                        space.Distribution switch
                        {
                            Distribution.LogUniform => Engine.Distribution.LogUniform,
                            Distribution.Normal => Engine.Distribution.Normal,
                            Distribution.LogNormal => Engine.Distribution.LogNormal,
                            _ => Engine.Distribution.Uniform,
                        }))));
            }
        }

        return list;
    }

    private static Engine.ObjectiveDirection Direction(ObjectiveType? type) =>
        type == ObjectiveType.Minimize ? Engine.ObjectiveDirection.Minimize : Engine.ObjectiveDirection.Maximize;

    private static List<Engine.AlgorithmSetting> Settings(IList<AlgorithmSetting>? settings) =>
        [.. (settings ?? []).Where(s => s.Name is not null && s.Value is not null).Select(s => new Engine.AlgorithmSetting(s.Name!, s.Value!))];

    /// <summary>A value as the trial spec gets it.</summary>
    internal static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
