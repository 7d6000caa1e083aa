using System.Diagnostics;
using Capstan.Core.Runtime;

namespace Capstan.Runtime.Local;

/// <summary>A workload's mutable state inside <see cref="LocalWorkloadRuntime"/>; guarded by the runtime's lock.</summary>
internal sealed class LocalWorkload(string workloadId, string folder, WorkloadSpec? spec, ResourceRequest request, long sequence, DateTimeOffset submitTime)
{
    public string WorkloadId { get; } = workloadId;

    public string Folder { get; } = folder;

    public string LogPath => Path.Combine(Folder, LocalWorkloadRuntime.LogFile);

    /// <summary>Null for a workload recovered from a state file.</summary>
    public WorkloadSpec? Spec { get; } = spec;

    /// <summary>What the whole gang holds while it runs.</summary>
    public ResourceRequest Request { get; } = request;

    public long Sequence { get; } = sequence;

    public int Priority => Spec?.Priority ?? 0;

    public DateTimeOffset SubmitTime { get; } = submitTime;

    public WorkloadPhase Phase { get; set; } = WorkloadPhase.Queued;

    public string Reason { get; set; } = WorkloadReasons.Scheduling;

    public string? Message { get; set; }

    public DateTimeOffset? StartTime { get; set; }

    public DateTimeOffset? CompletionTime { get; set; }

    public long? ActiveDeadlineSeconds { get; set; }

    public List<LocalReplica> Replicas { get; } = [];

    /// <summary>Set by a stop request; the supervisor then ends the gang with reason Stopped.</summary>
    public bool StopRequested { get; set; }

    /// <summary>Completed to wake the supervisor early (a stop request).</summary>
    public TaskCompletionSource Attention { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed (and replaced) each time lines are appended to the combined log.</summary>
    public TaskCompletionSource OutputChanged { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>True once nothing more will be written to the combined log.</summary>
    public bool OutputDone { get; set; }

    /// <summary>The supervising loop of a running gang; completes when the gang has ended (or the runtime is disposed).</summary>
    public Task Supervision { get; set; } = Task.CompletedTask;

    public WorkloadStatus Snapshot() => new(
        WorkloadId,
        Phase,
        Reason,
        Message,
        SubmitTime,
        StartTime,
        CompletionTime,
        [.. Replicas.Select(r => new ReplicaStatus(r.Rank, r.ProcessId == 0 ? null : r.ProcessId, r.ExitCode, r.WorkingDirectory))]);

    public WorkloadState ToState() => new(
        WorkloadId,
        Phase,
        Reason,
        Message,
        SubmitTime,
        StartTime,
        CompletionTime,
        ActiveDeadlineSeconds,
        Request,
        [.. Replicas.Select(r => new ReplicaState(r.Rank, r.ProcessId, r.StartTicks, r.Folder, r.WorkingDirectory, r.ExitCode, r.Gpus))]);
}

/// <summary>One replica process: its shell leads a process group that holds everything the replica started.</summary>
internal sealed class LocalReplica(int rank, string folder, string workingDirectory)
{
    public int Rank { get; } = rank;

    public string Folder { get; } = folder;

    public string WorkingDirectory { get; } = workingDirectory;

    public int ProcessId { get; set; }

    public ulong StartTicks { get; set; }

    /// <summary>Our own child; null for a replica adopted from a previous runtime instance.</summary>
    public Process? Process { get; set; }

    /// <summary>Completes with the exit code, or null when the replica vanished without one.</summary>
    public Task<int?> Exit { get; set; } = Task.FromResult<int?>(null);

    public int? ExitCode { get; set; }

    /// <summary>The GPU slots (device indices) the replica holds; its <c>CUDA_VISIBLE_DEVICES</c>.</summary>
    public IReadOnlyList<int> Gpus { get; init; } = [];
}
