using System.Globalization;

namespace Capstan.Core.Resources;

/// <summary>The defaults and rules of an <see cref="ExperimentSpec"/>: a bad search space is reported, with its field path, before any trial runs.</summary>
internal static class ExperimentValidation
{
    public const string MedianStop = "medianstop";
    public const string MinTrialsRequired = "min_trials_required";
    public const string StartStep = "start_step";
    public const int DefaultMinTrialsRequired = 3;
    public const int DefaultStartStep = 4;

    /// <summary>Room left in a trial's name after the experiment's: <c>NAME-trial-N</c>.</summary>
    private const int TrialSuffixLength = 12;

    public static void ApplyDefaults(TuningExperiment experiment)
    {
        var spec = experiment.Spec;
        var objective = spec.Objective ??= new ObjectiveSpec();
        if (objective.Objectives is { Count: > 0 } objectives)
        {
            objective.ObjectiveMetricName ??= objectives[0].MetricName;
            objective.Type ??= objectives[0].Type;
        }

        var strategies = objective.MetricStrategies ??= [];
        foreach (var (metric, type) in ObjectiveDirections(objective))
        {
            if (metric is not null && !strategies.Any(s => s.Name == metric))
            {
                strategies.Add(new MetricStrategy { Name = metric, Value = type == ObjectiveType.Minimize ? MetricStrategyType.Min : MetricStrategyType.Max });
            }
        }

        spec.Algorithm ??= new AlgorithmSpec { AlgorithmName = "random" };
        spec.Algorithm.AlgorithmSettings ??= [];
        spec.ParallelTrialCount ??= Math.Min(TuningExperiment.DefaultParallelTrialCount, spec.MaxTrialCount ?? TuningExperiment.DefaultParallelTrialCount);
        spec.ResumePolicy ??= ResumePolicy.LongRunning;
        foreach (var parameter in spec.Parameters ?? [])
        {
            if (parameter.ParameterType is ParameterType.Double or ParameterType.Int && parameter.FeasibleSpace is { } space)
            {
                space.Distribution ??= Distribution.Uniform;
            }
        }

        if (spec.EarlyStopping is { } early)
        {
            var settings = early.AlgorithmSettings ??= [];
            AddSetting(settings, MinTrialsRequired, DefaultMinTrialsRequired);
            AddSetting(settings, StartStep, DefaultStartStep);
        }

        if (spec.TrialTemplate is { } template)
        {
            template.TrialParameters ??= [.. (spec.Parameters ?? []).Select(p => new TrialParameterSpec { Name = p.Name, Reference = p.Name })];
            if (template.TrialSpec is { } trialSpec)
            {
                trialSpec.Experiment ??= experiment.Metadata.Name;
            }
        }
    }

    /// <summary>Every objective metric with its direction: the declared list, or the one objective.</summary>
    public static IEnumerable<(string? Metric, ObjectiveType? Type)> ObjectiveDirections(ObjectiveSpec objective)
    {
        if (objective.Objectives is { Count: > 0 } objectives)
        {
            foreach (var item in objectives)
            {
                yield return (item.MetricName, item.Type);
            }

            foreach (var additional in objective.AdditionalMetricNames ?? [])
            {
                yield return (additional, objective.Type);
            }

            yield break;
        }

        yield return (objective.ObjectiveMetricName, objective.Type);
        foreach (var additional in objective.AdditionalMetricNames ?? [])
        {
            yield return (additional, objective.Type);
        }
    }

    public static void Validate(TuningExperiment experiment, ResourceValidation validation)
    {
        var spec = experiment.Spec;
        if (experiment.Metadata.Name is { Length: > ResourceNames.MaxLength - TrialSuffixLength } name && name.Length <= ResourceNames.MaxLength)
        {
            validation.Error("metadata.name", $"'{name}' is too long for an experiment: its trials are named NAME-trial-N, so keep it to {ResourceNames.MaxLength - TrialSuffixLength} characters");
        }

        ValidateObjective(spec.Objective, validation);
        ValidateAlgorithm(spec.Algorithm, validation);
        ValidateParameters(spec.Parameters, validation);
        AtLeast(validation, "spec.parallelTrialCount", spec.ParallelTrialCount, 1);
        AtLeast(validation, "spec.maxTrialCount", spec.MaxTrialCount, 1);
        AtLeast(validation, "spec.maxFailedTrialCount", spec.MaxFailedTrialCount, 0);
        if (spec.ParallelTrialCount > spec.MaxTrialCount)
        {
            validation.Error("spec.parallelTrialCount", $"{spec.ParallelTrialCount} is more than maxTrialCount {spec.MaxTrialCount}");
        }

        if (spec.MaxTrialCount is null && spec.Objective?.Goal is null && spec.Algorithm?.AlgorithmName is not "grid")
        {
            validation.Error("spec.maxTrialCount", "missing required field 'maxTrialCount': without it or an objective goal the search never ends");
        }

        ValidateEarlyStopping(spec.EarlyStopping, validation);
        TuningSearch.Validate(spec, validation);
        ValidateTemplate(experiment, validation);
    }

    private static void ValidateObjective(ObjectiveSpec? objective, ResourceValidation validation)
    {
        if (objective is null)
        {
            validation.Error("spec.objective", "missing required field 'objective'");
            return;
        }

        if (objective.Objectives is { } objectives)
        {
            if (objectives.Count == 0)
            {
                validation.Error("spec.objective.objectives", "must list at least one objective");
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < objectives.Count; i++)
            {
                var path = FieldPath.Index("spec.objective.objectives", i);
                if (string.IsNullOrEmpty(objectives[i].MetricName))
                {
                    validation.Error(path + ".metricName", "missing required field 'metricName'");
                }
                else if (!seen.Add(objectives[i].MetricName!))
                {
                    validation.Error(path + ".metricName", $"'{objectives[i].MetricName}' is listed twice");
                }

                if (objectives[i].Type is null)
                {
                    validation.Error(path + ".type", "missing required field 'type' (minimize or maximize)");
                }
            }

            if (objectives.Count > 0 && objective.ObjectiveMetricName is { } primary && primary != objectives[0].MetricName)
            {
                validation.Error("spec.objective.objectiveMetricName", $"'{primary}' must be the first of 'objectives' ('{objectives[0].MetricName}'), the primary objective");
            }

            if (objectives.Count > 0 && objective.Type is { } type && objectives[0].Type is { } first && type != first)
            {
                validation.Error("spec.objective.type", $"'{Wire(type)}' contradicts objectives[0].type '{Wire(first)}'");
            }
        }
        else
        {
            if (objective.Type is null)
            {
                validation.Error("spec.objective.type", "missing required field 'type' (minimize or maximize)");
            }

            if (string.IsNullOrEmpty(objective.ObjectiveMetricName))
            {
                validation.Error("spec.objective.objectiveMetricName", "missing required field 'objectiveMetricName'");
            }
        }

        if (objective.Goal is { } goal && !double.IsFinite(goal))
        {
            validation.Error("spec.objective.goal", "must be a finite number");
        }

        var metrics = ObjectiveDirections(objective).Select(d => d.Metric).OfType<string>().ToHashSet(StringComparer.Ordinal);
        for (var i = 0; i < (objective.AdditionalMetricNames?.Count ?? 0); i++)
        {
            if (objective.AdditionalMetricNames![i] == objective.ObjectiveMetricName)
            {
                validation.Error(FieldPath.Index("spec.objective.additionalMetricNames", i), $"'{objective.ObjectiveMetricName}' is the objective metric already");
            }
        }

        for (var i = 0; i < (objective.MetricStrategies?.Count ?? 0); i++)
        {
            var strategy = objective.MetricStrategies![i];
            var path = FieldPath.Index("spec.objective.metricStrategies", i);
            if (string.IsNullOrEmpty(strategy.Name))
            {
                validation.Error(path + ".name", "missing required field 'name'");
            }
            else if (!metrics.Contains(strategy.Name))
            {
                validation.Error(path + ".name", $"'{strategy.Name}' is neither the objective nor an additional metric ({string.Join(", ", metrics.Order(StringComparer.Ordinal))})");
            }

            if (strategy.Value is null)
            {
                validation.Error(path + ".value", "missing required field 'value' (min, max or latest)");
            }
        }
    }

    private static void ValidateAlgorithm(AlgorithmSpec? algorithm, ResourceValidation validation)
    {
        if (algorithm is null)
        {
            return;
        }

        if (string.IsNullOrEmpty(algorithm.AlgorithmName))
        {
            validation.Error("spec.algorithm.algorithmName", "missing required field 'algorithmName'");
            return;
        }

        ValidateSettings(algorithm.AlgorithmSettings, "spec.algorithm.algorithmSettings", validation);
    }

    private static void ValidateSettings(IList<AlgorithmSetting>? settings, string root, ResourceValidation validation)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < (settings?.Count ?? 0); i++)
        {
            var path = FieldPath.Index(root, i);
            if (string.IsNullOrEmpty(settings![i].Name))
            {
                validation.Error(path + ".name", "missing required field 'name'");
            }
            else if (!seen.Add(settings[i].Name!))
            {
                validation.Error(path + ".name", $"'{settings[i].Name}' is set twice");
            }

            if (settings[i].Value is null)
            {
                validation.Error(path + ".value", "missing required field 'value'");
            }
        }
    }

    private static void ValidateParameters(IList<ParameterSpec>? parameters, ResourceValidation validation)
    {
        if (parameters is null || parameters.Count == 0)
        {
            validation.Error("spec.parameters", "missing required field 'parameters': the search space needs at least one parameter");
            return;
        }

        for (var i = 0; i < parameters.Count; i++)
        {
            var parameter = parameters[i];
            var path = FieldPath.Index("spec.parameters", i);
            if (string.IsNullOrEmpty(parameter.Name))
            {
                validation.Error(path + ".name", "missing required field 'name'");
            }

            if (parameter.ParameterType is not { } type)
            {
                validation.Error(path + ".parameterType", "missing required field 'parameterType' (double, int, discrete or categorical)");
                continue;
            }

            if (parameter.FeasibleSpace is null)
            {
                validation.Error(path + ".feasibleSpace", "missing required field 'feasibleSpace'");
            }
        }
    }

    private static void ValidateEarlyStopping(EarlyStoppingSpec? early, ResourceValidation validation)
    {
        if (early is not null)
        {
            if (string.IsNullOrEmpty(early.AlgorithmName))
            {
                validation.Error("spec.earlyStopping.algorithmName", $"missing required field 'algorithmName' ({MedianStop})");
            }

            ValidateSettings(early.AlgorithmSettings, "spec.earlyStopping.algorithmSettings", validation);
        }
    }

    private static void ValidateTemplate(TuningExperiment experiment, ResourceValidation validation)
    {
        var spec = experiment.Spec;
        if (spec.TrialTemplate is not { } template)
        {
            validation.Error("spec.trialTemplate", "missing required field 'trialTemplate'");
            return;
        }

        if (template.TrialSpec is not { } trialSpec)
        {
            // A trial spec that could not be translated (a Katib file) has said why already.
            if (!validation.Errors.Any(e => e.FieldPath.StartsWith("spec.trialTemplate.trialSpec", StringComparison.Ordinal)))
            {
                validation.Error("spec.trialTemplate.trialSpec", "missing required field 'trialSpec' (a TrainJob spec)");
            }

            return;
        }

        var parameterNames = (spec.Parameters ?? []).Select(p => p.Name).OfType<string>().ToList();
        var trialParameters = template.TrialParameters is null ? [.. parameterNames] : new List<string>();
        for (var i = 0; i < (template.TrialParameters?.Count ?? 0); i++)
        {
            var trialParameter = template.TrialParameters![i];
            var path = FieldPath.Index("spec.trialTemplate.trialParameters", i);
            if (string.IsNullOrEmpty(trialParameter.Name))
            {
                validation.Error(path + ".name", "missing required field 'name'");
            }
            else if (trialParameters.Contains(trialParameter.Name))
            {
                validation.Error(path + ".name", $"trial parameter '{trialParameter.Name}' is defined twice");
            }
            else
            {
                trialParameters.Add(trialParameter.Name);
            }

            if (string.IsNullOrEmpty(trialParameter.Reference))
            {
                validation.Error(path + ".reference", "missing required field 'reference' (the name of a search parameter)");
            }
            else if (!parameterNames.Contains(trialParameter.Reference))
            {
                var suggestion = SpellingSuggestion.Closest(trialParameter.Reference, parameterNames);
                var hint = suggestion is null ? $"known: {string.Join(", ", parameterNames)}" : $"did you mean '{suggestion}'?";
                validation.Error(path + ".reference", $"'{trialParameter.Reference}' names no parameter in spec.parameters ({hint})");
            }
        }

        const string root = "spec.trialTemplate.trialSpec";
        foreach (var (path, name) in TrialTemplates.Placeholders(trialSpec, root).Where(p => !trialParameters.Contains(p.Name)))
        {
            validation.Error(path, ParamSubstitution.UnknownMessage(name, ParamSubstitution.TrialParameters, trialParameters));
        }

        foreach (var (path, name) in TrialTemplates.MetaPlaceholders(trialSpec, root).Where(p => p.Name is not ("Name" or "Namespace")))
        {
            validation.Error(path, $"${{{TrialTemplates.TrialSpecPrefix}.{name}}} is not a trial placeholder (known: ${{trialSpec.Name}}, ${{trialSpec.Namespace}})");
        }

        // The template is a TrainJob spec: its own rules hold, reported under the template's path.
        var scratch = new ResourceValidation("");
        TrainJobValidation.Validate(trialSpec, scratch);
        foreach (var error in scratch.Errors)
        {
            var relative = error.FieldPath.StartsWith("spec", StringComparison.Ordinal) ? error.FieldPath[4..] : "." + error.FieldPath;
            validation.Error(root + relative, error.Message);
        }
    }

    private static void AtLeast(ResourceValidation validation, string path, long? value, long minimum)
    {
        if (value < minimum)
        {
            validation.Error(path, $"must be at least {minimum}, got {value}");
        }
    }

    private static void AddSetting(IList<AlgorithmSetting> settings, string name, int value)
    {
        if (!settings.Any(s => s.Name == name))
        {
            settings.Add(new AlgorithmSetting { Name = name, Value = value.ToString(CultureInfo.InvariantCulture) });
        }
    }

    private static string Wire<T>(T value)
        where T : struct, Enum =>
        typeof(T).GetField(value.ToString())?.GetCustomAttributes(typeof(System.Text.Json.Serialization.JsonStringEnumMemberNameAttribute), false)
            .OfType<System.Text.Json.Serialization.JsonStringEnumMemberNameAttribute>().FirstOrDefault()?.Name ?? value.ToString();
}
