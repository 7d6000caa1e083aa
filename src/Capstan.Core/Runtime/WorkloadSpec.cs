using k8s.Models;

namespace Capstan.Core.Runtime;

/// <summary>
/// One attempt of a job: <see cref="Replicas"/> copies of one command, started as a gang.
/// </summary>
public sealed record WorkloadSpec
{
    /// <summary>Unique per attempt; letters, digits, '.', '_' and '-' only (it names folders), e.g. <c>default.train.1</c>.</summary>
    public required string WorkloadId { get; init; }

    /// <summary>The executable and its leading arguments; run directly, not through a shell.</summary>
    public required IReadOnlyList<string> Command { get; init; }

    public IReadOnlyList<string> Args { get; init; } = [];

    /// <summary>Where the command runs; default each replica's own working folder for this attempt.</summary>
    public string? WorkingDir { get; init; }

    /// <summary>Variables the process gets on top of the runtime's own (CAPSTAN_*, MLFLOW_*, params, the job's env).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Requests (or, when none, limits) of ONE replica; the gang needs <see cref="Replicas"/> times as much.</summary>
    public V1ResourceRequirements? Resources { get; init; }

    /// <summary>Processes (nodes) in the gang; above 1 they get the PyTorchJob rendezvous environment.</summary>
    public int Replicas { get; init; } = 1;

    /// <summary>Workers torchrun starts per replica (<c>PET_NPROC_PER_NODE</c>).</summary>
    public int NprocPerNode { get; init; } = 1;

    /// <summary>Queue order: higher first, then first submitted first.</summary>
    public int Priority { get; init; }

    /// <summary>Wall-clock limit from start; the gang is killed with reason <see cref="WorkloadReasons.DeadlineExceeded"/>.</summary>
    public long? ActiveDeadlineSeconds { get; init; }
}

public enum WorkloadPhase
{
    /// <summary>Waiting for capacity; <see cref="WorkloadStatus.Reason"/> and message say for what.</summary>
    Queued,
    Running,
    Succeeded,
    Failed,

    /// <summary>A restarted runtime found the workload's processes gone without a recorded exit.</summary>
    Lost,
}

/// <summary>Machine-readable reasons, in the spirit of Kubernetes condition reasons.</summary>
public static class WorkloadReasons
{
    public const string Scheduling = "Scheduling";
    public const string InsufficientCapacity = "InsufficientCapacity";
    public const string Unschedulable = "Unschedulable";
    public const string Started = "Started";
    public const string Completed = "Completed";
    public const string ReplicaFailed = "ReplicaFailed";
    public const string DeadlineExceeded = "DeadlineExceeded";
    public const string Stopped = "Stopped";
    public const string StartFailed = "StartFailed";
    public const string Lost = "Lost";
    public const string Adopted = "Adopted";
}

public sealed record WorkloadStatus(
    string WorkloadId,
    WorkloadPhase Phase,
    string Reason,
    string? Message,
    DateTimeOffset SubmitTime,
    DateTimeOffset? StartTime,
    DateTimeOffset? CompletionTime,
    IReadOnlyList<ReplicaStatus> Replicas)
{
    public bool IsFinished => Phase is WorkloadPhase.Succeeded or WorkloadPhase.Failed or WorkloadPhase.Lost;
}

/// <summary>One replica (node) of a gang; <see cref="ExitCode"/> is 128+signal when a signal ended it, null while it runs or when unknown.</summary>
public sealed record ReplicaStatus(int Rank, int? ProcessId, int? ExitCode, string WorkingDirectory);
