using Microsoft.Extensions.Logging;

namespace Capstan.Server;

/// <summary>The Experiment control loop's messages (event ids 60–69).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 60, Level = LogLevel.Warning, Message = "Reconciling experiment {Key} failed; retrying")]
    public static partial void ExperimentReconcileFailed(ILogger logger, string key, Exception exception);

    [LoggerMessage(EventId = 61, Level = LogLevel.Information, Message = "Experiment {Key} deleted; its trials were deleted")]
    public static partial void ExperimentDeleted(ILogger logger, string key);
}
