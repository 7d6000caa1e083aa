using Microsoft.Extensions.Logging;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>The operator's log messages, with stable event ids.</summary>
internal static partial class Log
{
    [LoggerMessage(5001, LogLevel.Debug, "Listed {What} at resourceVersion {Version}")]
    public static partial void Listed(ILogger logger, string what, string version);

    [LoggerMessage(5002, LogLevel.Information, "The watch of {What} from resourceVersion {Version} expired (410 Gone); listing again")]
    public static partial void WatchExpired(ILogger logger, string what, string? version);

    [LoggerMessage(5003, LogLevel.Warning, "The watch of {What} failed; watching again shortly")]
    public static partial void WatchFailed(ILogger logger, string what, Exception error);

    [LoggerMessage(5004, LogLevel.Warning, "Listing {What} failed; trying again shortly")]
    public static partial void ListFailed(ILogger logger, string what, Exception error);

    [LoggerMessage(5005, LogLevel.Debug, "Reconcile of {Key} met a conflict; requeued after {Delay}")]
    public static partial void ReconcileConflict(ILogger logger, string key, TimeSpan delay);

    [LoggerMessage(5006, LogLevel.Warning, "Reconcile of {Key} failed; requeued after {Delay}")]
    public static partial void ReconcileFailed(ILogger logger, string key, TimeSpan delay, Exception error);

    [LoggerMessage(5007, LogLevel.Information, "{Identity} is now the leader ({Lease}); starting the controllers")]
    public static partial void StartedLeading(ILogger logger, string identity, string lease);

    [LoggerMessage(5008, LogLevel.Information, "{Identity} stopped leading; the controllers stop")]
    public static partial void StoppedLeading(ILogger logger, string identity);

    [LoggerMessage(5009, LogLevel.Information, "The leader is {Leader}")]
    public static partial void NewLeader(ILogger logger, string leader);

    [LoggerMessage(5010, LogLevel.Debug, "Leader election: {Message}")]
    public static partial void ElectionError(ILogger logger, string message);

    [LoggerMessage(5011, LogLevel.Warning, "Recording event {Reason} on {Name} failed")]
    public static partial void EventNotRecorded(ILogger logger, string reason, string name, Exception error);

    [LoggerMessage(5012, LogLevel.Information, "{Kind} {Key}: {Message}")]
    public static partial void Reconciled(ILogger logger, string kind, string key, string message);

    [LoggerMessage(5013, LogLevel.Information, "{Identity} released the lease ({Lease}) on stopping")]
    public static partial void ReleasedLease(ILogger logger, string identity, string lease);

    [LoggerMessage(5014, LogLevel.Warning, "{Identity} could not release the lease on stopping; a standby takes it when it expires")]
    public static partial void LeaseNotReleased(ILogger logger, string identity, Exception error);
}
