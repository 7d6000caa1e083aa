using k8s.Models;

namespace Capstan.Core.Resources;

/// <summary>
/// One run of training code: a command on the local runtime, a container on Kubernetes.
/// <c>replicas</c> &gt; 1 makes it a distributed job, started as one gang with the PyTorchJob environment.
/// </summary>
public sealed class TrainJob : Resource<TrainJobSpec, TrainJobStatus>
{
    public const string KindName = "TrainJob";

    public TrainJob()
    {
        Kind = KindName;
    }

    public override void ApplyDefaults()
    {
        base.ApplyDefaults();
        Spec.Replicas ??= 1;
        Spec.NprocPerNode ??= 1;
        Spec.RestartPolicy ??= RestartPolicy.Never;
        Spec.BackoffLimit ??= Spec.RestartPolicy == RestartPolicy.Never ? 0 : TrainJobSpec.DefaultRetryingBackoffLimit;
        Spec.Priority ??= 0;
        Spec.Experiment ??= Metadata.Name;
    }

    public override void Validate(ResourceValidation validation)
    {
        base.Validate(validation);
        TrainJobValidation.Validate(Spec, validation);
    }
}

public sealed class TrainJobSpec
{
    /// <summary>The backoff limit when a job restarts and none is given (Kubernetes' Job default is 6; 3 fails faster).</summary>
    public const int DefaultRetryingBackoffLimit = 3;

    /// <summary>Container image; needed on Kubernetes, optional locally where <see cref="Command"/> runs as a process.</summary>
    public string? Image { get; set; }

    public IList<string>? Command { get; set; }

    public IList<string>? Args { get; set; }

    public string? WorkingDir { get; set; }

    public IList<V1EnvVar>? Env { get; set; }

    public IList<V1EnvFromSource>? EnvFrom { get; set; }

    public V1ResourceRequirements? Resources { get; set; }

    public V1Affinity? Affinity { get; set; }

    public IList<V1Toleration>? Tolerations { get; set; }

    public IDictionary<string, string>? NodeSelector { get; set; }

    /// <summary>Hyperparameters: substituted as <c>${params.name}</c> in command and args, exported as environment variables (see <see cref="ParamSubstitution"/>).</summary>
    public IDictionary<string, string>? Params { get; set; }

    /// <summary>Processes (nodes) started together; default 1.</summary>
    public int? Replicas { get; set; }

    /// <summary>Workers torchrun starts on each replica (<c>PET_NPROC_PER_NODE</c>); default 1.</summary>
    public int? NprocPerNode { get; set; }

    /// <summary>Default <see cref="Resources.RestartPolicy.Never"/>.</summary>
    public RestartPolicy? RestartPolicy { get; set; }

    /// <summary>Retries before the job fails; default 0 with restartPolicy Never, 3 otherwise.</summary>
    public int? BackoffLimit { get; set; }

    public long? ActiveDeadlineSeconds { get; set; }

    /// <summary>Queue order: higher first, then first come first served; default 0.</summary>
    public int? Priority { get; set; }

    /// <summary>The tracking experiment the job's run is logged into; default the job's name.</summary>
    public string? Experiment { get; set; }

    public TrainJobOutputs? Outputs { get; set; }
}

/// <summary>Kubeflow's restart policies: retry never, on any failure, or on a retryable exit code only.</summary>
public enum RestartPolicy
{
    Never,
    OnFailure,
    ExitCode,
}

/// <summary>What the job leaves behind: files kept as artifacts, and a model registered on success.</summary>
public sealed class TrainJobOutputs
{
    /// <summary>Globs, relative to the working folder, of files to keep as run artifacts.</summary>
    public IList<string>? Paths { get; set; }

    public ModelOutput? Model { get; set; }
}

public sealed class ModelOutput
{
    public string? Path { get; set; }

    public ModelRegistration? Register { get; set; }
}

/// <summary>Registers the model as a new version of <see cref="Model"/>, optionally pointing <see cref="Alias"/> at it.</summary>
public sealed class ModelRegistration
{
    public string? Model { get; set; }

    public string? Alias { get; set; }
}

public sealed class TrainJobStatus : ResourceStatus
{
    public TrainJobPhase? Phase { get; set; }

    /// <summary>When the first attempt started running; <c>activeDeadlineSeconds</c> counts from here, across retries.</summary>
    public DateTimeOffset? StartTime { get; set; }

    public DateTimeOffset? CompletionTime { get; set; }

    /// <summary>Attempts started so far, the first included.</summary>
    public int? Attempts { get; set; }

    /// <summary>The tracking run the current attempt logs into.</summary>
    public string? RunId { get; set; }
}

public enum TrainJobPhase
{
    Pending,
    Queued,
    Running,
    Succeeded,
    Failed,
}
