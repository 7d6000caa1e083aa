using Capstan.Core.Resources;

namespace Capstan.Core.Runtime;

/// <summary>
/// Turns one attempt of a <see cref="TrainJob"/> into the <see cref="WorkloadSpec"/> a runtime runs, so every
/// reconciler and runtime reads a job the same way.
/// </summary>
public static class TrainJobWorkloads
{
    /// <summary>
    /// <c>NAMESPACE.NAME.UID.ATTEMPT</c>, UID being the first 8 hex digits of <c>metadata.uid</c>, so a job deleted and
    /// created again under its old name never meets its predecessor's workloads (a runtime keeps finished ones);
    /// <c>NAMESPACE.NAME.ATTEMPT</c> for a job not stored yet. Names are DNS labels without dots, so the id is
    /// unambiguous and folder-safe.
    /// </summary>
    public static string WorkloadId(TrainJob job, int attempt)
    {
        ArgumentNullException.ThrowIfNull(job);
        var prefix = $"{job.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace}.{job.Metadata.Name}";
        var uid = job.Metadata.Uid?.Replace("-", "", StringComparison.Ordinal);
        return string.IsNullOrEmpty(uid) ? $"{prefix}.{attempt}" : $"{prefix}.{uid[..Math.Min(8, uid.Length)]}.{attempt}";
    }

    /// <summary>
    /// The workload for attempt <paramref name="attempt"/> (1 for the first) of a defaulted, valid job.
    /// Command and args get <c>${params.x}</c> expanded. Environment, later entries winning: the params
    /// (see <see cref="ParamSubstitution.Environment"/>), the job's <c>env</c> values, then
    /// <paramref name="runEnvironment"/> — what the control plane adds (<c>CAPSTAN_URL</c>, <c>CAPSTAN_RUN_ID</c>,
    /// <c>MLFLOW_TRACKING_URI</c>, <c>MLFLOW_RUN_ID</c>, <c>MLFLOW_EXPERIMENT_ID</c>).
    /// Throws <see cref="CapstanException"/> for what a command-running runtime cannot do: a job with only an
    /// image, env taken from secrets or config maps (<c>valueFrom</c>, <c>envFrom</c>).
    /// </summary>
    public static WorkloadSpec ToWorkload(TrainJob job, int attempt, IReadOnlyDictionary<string, string> runEnvironment)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(runEnvironment);
        var spec = job.Spec;
        var name = job.Metadata.Name;
        if (spec.Command is not { Count: > 0 } command)
        {
            throw CapstanException.Invalid($"TrainJob '{name}' gives only an image; the local runtime runs spec.command");
        }

        if (spec.EnvFrom is { Count: > 0 })
        {
            throw CapstanException.Invalid($"TrainJob '{name}': spec.envFrom (secrets, config maps) is not supported by the local runtime");
        }

        var parameters = new Dictionary<string, string>(spec.Params ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        var environment = new Dictionary<string, string>(ParamSubstitution.Environment(parameters), StringComparer.Ordinal)
        {
            // Training code that sends OpenTelemetry traces is named after its job (the control plane's own name is
            // inherited otherwise); the job's env can name it differently.
            ["OTEL_SERVICE_NAME"] = name ?? "trainjob",
        };
        foreach (var variable in spec.Env ?? [])
        {
            if (variable.ValueFrom is not null)
            {
                throw CapstanException.Invalid($"TrainJob '{name}': spec.env '{variable.Name}' uses valueFrom, which the local runtime cannot resolve");
            }

            environment[variable.Name] = variable.Value ?? "";
        }

        foreach (var (key, value) in runEnvironment)
        {
            environment[key] = value;
        }

        return new WorkloadSpec
        {
            WorkloadId = WorkloadId(job, attempt),
            Command = ParamSubstitution.Expand(command, ParamSubstitution.Params, parameters),
            Args = ParamSubstitution.Expand(spec.Args ?? [], ParamSubstitution.Params, parameters),
            WorkingDir = spec.WorkingDir,
            Environment = environment,
            Resources = spec.Resources,
            Replicas = spec.Replicas ?? 1,
            NprocPerNode = spec.NprocPerNode ?? 1,
            Priority = spec.Priority ?? 0,
            ActiveDeadlineSeconds = spec.ActiveDeadlineSeconds,
        };
    }
}
