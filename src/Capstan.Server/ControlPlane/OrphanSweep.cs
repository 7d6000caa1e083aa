using Capstan.Core.ControlPlane;
using Capstan.Core.Runtime;
using Microsoft.Extensions.Logging;

namespace Capstan.Server.ControlPlane;

/// <summary>A starting loop's one pass over <see cref="OrphanedWorkloads"/>: logged, and not fatal when it fails.</summary>
internal static class OrphanSweep
{
    public static async Task RunAsync(ILogger logger, IWorkloadRuntime runtime, IResourceStore resources, string kind, Func<string, string?> keyOfWorkload, CancellationToken cancellationToken)
    {
        try
        {
            foreach (var id in await OrphanedWorkloads.StopAsync(runtime, resources, kind, keyOfWorkload, cancellationToken).ConfigureAwait(false))
            {
                Log.OrphanStopped(logger, id, kind);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.OrphanSweepFailed(logger, kind, e);
        }
    }
}
