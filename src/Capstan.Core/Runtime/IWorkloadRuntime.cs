using Capstan.Core.Tracking;

namespace Capstan.Core.Runtime;

/// <summary>
/// Where workloads run: the seam between the reconcilers and a runtime (local processes, Kubernetes).
/// A workload is one attempt of a job: a gang of replicas started all together or not at all.
/// Retries, backoff and restart policies are the caller's: a retry is a new workload with a new id.
/// Every method is idempotent on the workload id, so a reconciler can call them on every pass.
/// </summary>
public interface IWorkloadRuntime : IAsyncDisposable
{
    /// <summary>
    /// Queues the workload and returns its status. Submitting an id the runtime already knows returns that
    /// workload's status unchanged. A gang that can never fit is not queued: it comes back
    /// <see cref="WorkloadPhase.Failed"/> with reason <see cref="WorkloadReasons.Unschedulable"/>.
    /// </summary>
    Task<WorkloadStatus> SubmitAsync(WorkloadSpec spec, CancellationToken cancellationToken = default);

    /// <summary>The workload's status, or null when the runtime has never seen the id.</summary>
    Task<WorkloadStatus?> GetStatusAsync(string workloadId, CancellationToken cancellationToken = default);

    /// <summary>The status of every workload the runtime knows, finished or not (e.g. to find the ones whose owner is gone).</summary>
    Task<IReadOnlyList<WorkloadStatus>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Ends the workload: a queued one leaves the queue, a running one has the whole process tree of every
    /// replica terminated. Completes when nothing of it runs any more; the final status has reason
    /// <see cref="WorkloadReasons.Stopped"/> unless it had already finished. Unknown ids are ignored.
    /// </summary>
    Task<WorkloadStatus?> StopAsync(string workloadId, CancellationToken cancellationToken = default);

    /// <summary>
    /// The workload's output lines (stdout and stderr; prefixed <c>[RANK] </c> when it has more than one replica).
    /// Without <paramref name="follow"/> the lines written so far; with it, also the lines still to come,
    /// ending when the workload has finished and its output is drained.
    /// </summary>
    IAsyncEnumerable<string> ReadLogsAsync(string workloadId, bool follow, CancellationToken cancellationToken = default);

    /// <summary>
    /// Everything that happens to any workload from the moment of this call: status changes and metrics parsed from stdout.
    /// Each call gets its own unbounded stream; keep reading it, or cancel to stop.
    /// </summary>
    IAsyncEnumerable<WorkloadEvent> WatchAsync(CancellationToken cancellationToken = default);
}

/// <summary>Something that happened to a workload.</summary>
public abstract record WorkloadEvent(string WorkloadId);

/// <summary>The workload moved to a new phase (or changed its reason while queued).</summary>
public sealed record WorkloadStatusChanged(string WorkloadId, WorkloadStatus Status) : WorkloadEvent(WorkloadId);

/// <summary>Metrics one replica printed on stdout as <c>name=value</c> (see <see cref="StdoutMetrics"/>).</summary>
public sealed record WorkloadMetricsReported(string WorkloadId, int Replica, IReadOnlyList<Metric> Metrics) : WorkloadEvent(WorkloadId);
