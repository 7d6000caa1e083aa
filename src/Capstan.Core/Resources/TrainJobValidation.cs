using k8s.Models;

namespace Capstan.Core.Resources;

/// <summary>The rules of a <see cref="TrainJobSpec"/> that its field types cannot express.</summary>
internal static class TrainJobValidation
{
    private static readonly string[] s_tolerationOperators = ["Equal", "Exists"];
    private static readonly string[] s_taintEffects = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

    public static void Validate(TrainJobSpec spec, ResourceValidation validation)
    {
        if (spec.Image is null && (spec.Command is null || spec.Command.Count == 0))
        {
            validation.Error("spec", "either 'image' or 'command' is required");
        }

        AtLeast(validation, "spec.replicas", spec.Replicas, 1);
        AtLeast(validation, "spec.nprocPerNode", spec.NprocPerNode, 1);
        AtLeast(validation, "spec.backoffLimit", spec.BackoffLimit, 0);
        AtLeast(validation, "spec.activeDeadlineSeconds", spec.ActiveDeadlineSeconds, 1);
        ValidateResources(spec.Resources, validation);
        ValidateParams(spec, validation);
        ValidateEnv(spec, validation);
        ValidateTolerations(spec.Tolerations, validation);
        ValidateOutputs(spec.Outputs, validation);
    }

    private static void AtLeast(ResourceValidation validation, string path, long? value, long minimum)
    {
        if (value < minimum)
        {
            validation.Error(path, $"must be at least {minimum}, got {value}");
        }
    }

    internal static void ValidateResources(V1ResourceRequirements? resources, ResourceValidation validation)
    {
        if (resources?.Requests is null || resources.Limits is null)
        {
            return;
        }

        foreach (var (name, request) in resources.Requests)
        {
            if (resources.Limits.TryGetValue(name, out var limit) && request.ToDecimal() > limit.ToDecimal())
            {
                validation.Error(
                    FieldPath.Key("spec.resources.requests", name),
                    $"request {request} is more than the limit {limit}: a request must not exceed its limit");
            }
        }
    }

    private static void ValidateParams(TrainJobSpec spec, ResourceValidation validation)
    {
        var parameters = spec.Params ?? new Dictionary<string, string>();
        var byVariable = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in parameters.Keys)
        {
            var path = FieldPath.Key("spec.params", name);
            if (name.Length == 0 || name.Contains('}', StringComparison.Ordinal))
            {
                validation.ErrorAtName(path, $"'{name}' is not a valid parameter name");
            }
            else if (!byVariable.TryAdd(ParamSubstitution.EnvironmentName(name), name))
            {
                validation.ErrorAtName(path, $"'{name}' and '{byVariable[ParamSubstitution.EnvironmentName(name)]}' both become {ParamSubstitution.EnvironmentName(name)}");
            }
        }

        CheckPlaceholders(spec.Command, "spec.command", parameters, validation);
        CheckPlaceholders(spec.Args, "spec.args", parameters, validation);
    }

    private static void CheckPlaceholders(IList<string>? texts, string path, IDictionary<string, string> parameters, ResourceValidation validation)
    {
        for (var i = 0; i < (texts?.Count ?? 0); i++)
        {
            foreach (var name in ParamSubstitution.Names(texts![i], ParamSubstitution.Params).Where(n => !parameters.ContainsKey(n)))
            {
                validation.Error(FieldPath.Index(path, i), ParamSubstitution.UnknownMessage(name, ParamSubstitution.Params, parameters.Keys));
            }
        }
    }

    internal static void ValidateEnv(TrainJobSpec spec, ResourceValidation validation)
    {
        for (var i = 0; i < (spec.Env?.Count ?? 0); i++)
        {
            var env = spec.Env![i];
            var path = FieldPath.Index("spec.env", i);
            if (string.IsNullOrEmpty(env.Name))
            {
                validation.Error(path + ".name", "missing required field 'name'");
            }

            if (env.Value is not null && env.ValueFrom is not null)
            {
                validation.Error(path + ".valueFrom", "may not be given together with 'value'");
            }
        }

        for (var i = 0; i < (spec.EnvFrom?.Count ?? 0); i++)
        {
            var source = spec.EnvFrom![i];
            if ((source.SecretRef is null) == (source.ConfigMapRef is null))
            {
                validation.Error(FieldPath.Index("spec.envFrom", i), "give exactly one of 'secretRef' or 'configMapRef'");
            }
        }
    }

    internal static void ValidateTolerations(IList<V1Toleration>? tolerations, ResourceValidation validation)
    {
        for (var i = 0; i < (tolerations?.Count ?? 0); i++)
        {
            var toleration = tolerations![i];
            var path = FieldPath.Index("spec.tolerations", i);
            if (toleration.OperatorProperty is { } op && !s_tolerationOperators.Contains(op))
            {
                validation.Error(path + ".operator", $"'{op}' is not a valid operator (allowed: {string.Join(", ", s_tolerationOperators)})");
            }

            if (toleration.Effect is { Length: > 0 } effect && !s_taintEffects.Contains(effect))
            {
                validation.Error(path + ".effect", $"'{effect}' is not a valid effect (allowed: {string.Join(", ", s_taintEffects)})");
            }
        }
    }

    private static void ValidateOutputs(TrainJobOutputs? outputs, ResourceValidation validation)
    {
        if (outputs?.Model is not { } model)
        {
            return;
        }

        if (string.IsNullOrEmpty(model.Path))
        {
            validation.Error("spec.outputs.model.path", "missing required field 'path'");
        }

        if (model.Register is { Model: null or "" })
        {
            validation.Error("spec.outputs.model.register.model", "missing required field 'model'");
        }
    }
}
