using Capstan.Core;
using Capstan.Core.Resources;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>
/// Ends the tracking run of a finished TrainJob or Experiment. The resource's <c>RunEnded</c> condition says whether it did:
/// True once the run is FINISHED or FAILED; False with reason TrackingUnavailable while the Capstan API does not answer, which
/// later passes (and a restarted or new leader, since it is in the status) take as "try again"; False with RunNotEnded when
/// the API refused (the run was deleted), which is not retried.
/// An unreachable API, a timeout and a 5xx count as unavailable.
/// </summary>
internal static class TrackedRun
{
    public const string ConditionRunEnded = "RunEnded";

    public const string ReasonTrackingUnavailable = "TrackingUnavailable";

    /// <summary>True when an earlier pass could not reach the API to end the run.</summary>
    public static bool EndPending(ResourceStatus? status) =>
        status?.Conditions?.Any(c => c.Type == ConditionRunEnded && c.Status == ConditionStatus.False && c.Reason == ReasonTrackingUnavailable) == true;

    /// <summary>The Capstan API was unreachable, timed out or answered 5xx: it may answer on a later pass.</summary>
    public static bool Unavailable(Exception error, CancellationToken cancellationToken) =>
        error is HttpRequestException
        || (error is TaskCanceledException && !cancellationToken.IsCancellationRequested)
        || error is CapstanException { Code: ErrorCode.Internal };

    /// <summary>Ends the run at <paramref name="endTime"/> and sets the condition; the API's error message when it did not answer, else null.</summary>
    public static async Task<string?> EndAsync(IMetadataStore tracking, string runId, bool succeeded, DateTimeOffset endTime, ResourceStatus status, long? generation, CancellationToken cancellationToken)
    {
        var outcome = succeeded ? RunStatus.Finished : RunStatus.Failed;
        var now = DateTimeOffset.UtcNow;
        try
        {
            await tracking.UpdateRunAsync(runId, new RunUpdate(outcome, endTime.ToUnixTimeMilliseconds()), cancellationToken).ConfigureAwait(false);
            status.SetCondition(ConditionRunEnded, ConditionStatus.True, succeeded ? "RunFinished" : "RunFailed", $"Run {runId} ended {(succeeded ? "FINISHED" : "FAILED")}", generation, now);
            return null;
        }
        catch (Exception e) when (Unavailable(e, cancellationToken))
        {
            status.SetCondition(ConditionRunEnded, ConditionStatus.False, ReasonTrackingUnavailable, $"Run {runId} is still RUNNING: the Capstan API did not answer ({e.Message}); retrying", generation, now, recordFalse: true);
            return e.Message;
        }
        catch (CapstanException e)
        {
            status.SetCondition(ConditionRunEnded, ConditionStatus.False, "RunNotEnded", $"Run {runId} was not ended: {e.Message}", generation, now, recordFalse: true);
            return null;
        }
    }
}
