using Microsoft.Extensions.Logging;

namespace Capstan.Server;

/// <summary>The server's log messages, with stable event ids.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Capstan server listening on {Addresses}, home {Home}")]
    public static partial void Listening(ILogger logger, string addresses, string home);

    [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "Unhandled error in {Method} {Path}")]
    public static partial void UnhandledException(ILogger logger, string method, string path, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Readiness check failed")]
    public static partial void NotReady(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "Reconciling {Key} failed; retrying")]
    public static partial void ReconcileFailed(ILogger logger, string key, Exception exception);

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "TrainJob {Key} deleted; its workload was stopped")]
    public static partial void JobDeleted(ILogger logger, string key);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "{Count} metric(s) of workload {WorkloadId} could not be logged")]
    public static partial void MetricsNotLogged(ILogger logger, string workloadId, int count, Exception exception);

    [LoggerMessage(EventId = 13, Level = LogLevel.Information, Message = "Stopped workload {WorkloadId}: its {Kind} was deleted while no control plane was watching")]
    public static partial void OrphanStopped(ILogger logger, string workloadId, string kind);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "Looking for workloads of deleted {Kind}s failed; they keep running")]
    public static partial void OrphanSweepFailed(ILogger logger, string kind, Exception exception);

    [LoggerMessage(EventId = 40, Level = LogLevel.Information, Message = "InferenceService {Key} deleted; its server was stopped")]
    public static partial void InferenceServiceDeleted(ILogger logger, string key);

    [LoggerMessage(EventId = 41, Level = LogLevel.Warning, Message = "No inference server command: InferenceServices cannot run here (start the control plane from the capstan program)")]
    public static partial void NoServingCommand(ILogger logger);
}
