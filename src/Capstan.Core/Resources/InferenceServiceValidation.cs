using Capstan.Core.Registry;

namespace Capstan.Core.Resources;

/// <summary>The rules of an <see cref="InferenceServiceSpec"/> that its field types cannot express.</summary>
internal static class InferenceServiceValidation
{
    public static void Validate(InferenceServiceSpec spec, ResourceValidation validation)
    {
        ValidateModel(spec.Model, "spec.model", validation);
        if (spec.ModelName is { } name && (name.Length == 0 || name.Contains('/', StringComparison.Ordinal)))
        {
            validation.Error("spec.modelName", $"'{name}' is not a valid model name: it may not be empty or contain '/'");
        }

        if (spec.Canary is { } canary)
        {
            ValidateModel(canary.Model, "spec.canary.model", validation);
            if (canary.TrafficPercent is null)
            {
                validation.Error("spec.canary.trafficPercent", "missing required field 'trafficPercent'");
            }
            else if (canary.TrafficPercent is < 0 or > 100)
            {
                validation.Error("spec.canary.trafficPercent", $"must be between 0 and 100, got {canary.TrafficPercent}");
            }

            if (canary.Model is { Length: > 0 } && canary.Model == spec.Model)
            {
                validation.Error("spec.canary.model", $"is the same as spec.model ('{spec.Model}'): a canary serves a different version");
            }
        }

        AtLeast(validation, "spec.replicas", spec.Replicas, 0);
        ValidateAutoscaling(spec.Autoscaling, spec.Replicas ?? 1, validation);
        if (spec.Batching is { } batching)
        {
            AtLeast(validation, "spec.batching.maxBatchSize", batching.MaxBatchSize, 1);
            AtLeast(validation, "spec.batching.maxLatency", batching.MaxLatency, 0);
        }

        AtLeast(validation, "spec.timeout", spec.Timeout, 1);
        ValidatePort(validation, "spec.port", spec.Port);
        ValidatePort(validation, "spec.grpcPort", spec.GrpcPort);
        // Validation runs before defaults: compare what the ports will be.
        var port = spec.Port ?? InferenceServiceSpec.DefaultPort;
        if (port == (spec.GrpcPort ?? InferenceServiceSpec.DefaultGrpcPort))
        {
            validation.Error("spec.grpcPort", $"must differ from spec.port ({port}): REST and gRPC listen on ports of their own");
        }

        TrainJobValidation.ValidateResources(spec.Resources, validation);
        TrainJobValidation.ValidateEnv(new TrainJobSpec { Env = spec.Env, EnvFrom = spec.EnvFrom }, validation);
        TrainJobValidation.ValidateTolerations(spec.Tolerations, validation);
    }

    private static void ValidateModel(string? model, string path, ResourceValidation validation)
    {
        if (string.IsNullOrEmpty(model))
        {
            validation.Error(path, "missing required field 'model'");
        }
        else if (ModelReference.TryParse(model, out var problem) is null)
        {
            validation.Error(path, problem!);
        }
    }

    private static void ValidateAutoscaling(AutoscalingSpec? autoscaling, int replicas, ResourceValidation validation)
    {
        if (autoscaling is null)
        {
            return;
        }

        AtLeast(validation, "spec.autoscaling.minReplicas", autoscaling.MinReplicas, 1);
        if (autoscaling.MaxReplicas is null)
        {
            validation.Error("spec.autoscaling.maxReplicas", "missing required field 'maxReplicas'");
        }
        else if (autoscaling.MaxReplicas < (autoscaling.MinReplicas ?? replicas))
        {
            validation.Error("spec.autoscaling.maxReplicas", $"must be at least minReplicas ({autoscaling.MinReplicas ?? replicas}), got {autoscaling.MaxReplicas}");
        }

        if (autoscaling.Metric is { } metric && !AutoscalingSpec.Metrics.Contains(metric, StringComparer.Ordinal))
        {
            validation.Error("spec.autoscaling.metric", $"'{metric}' is not a valid metric (allowed: {string.Join(", ", AutoscalingSpec.Metrics)})");
        }

        AtLeast(validation, "spec.autoscaling.target", autoscaling.Target, 1);
        if ((autoscaling.Metric ?? AutoscalingSpec.Cpu) == AutoscalingSpec.Cpu && autoscaling.Target > 100)
        {
            validation.Error("spec.autoscaling.target", $"is a percentage of the CPU request for metric cpu: at most 100, got {autoscaling.Target}");
        }
    }

    private static void ValidatePort(ResourceValidation validation, string path, int? port)
    {
        if (port is < 1 or > 65535)
        {
            validation.Error(path, $"must be between 1 and 65535, got {port}");
        }
    }

    private static void AtLeast(ResourceValidation validation, string path, long? value, long minimum)
    {
        if (value < minimum)
        {
            validation.Error(path, $"must be at least {minimum}, got {value}");
        }
    }
}
