using Capstan.Core.Resources;
using Capstan.Core.Runtime;

namespace Capstan.Core.ControlPlane;

/// <summary>
/// Workloads whose owner is gone: a TrainJob or InferenceService deleted (or deleted and created again under its name)
/// while no control plane was watching leaves its processes running with nobody to stop them, since a stopping control
/// plane leaves workloads running to adopt them on restart. A starting control plane stops those, as Kubernetes' garbage
/// collector deletes dependents whose owner's uid no longer exists.
/// </summary>
public static class OrphanedWorkloads
{
    /// <summary>
    /// Stops every unfinished workload that <paramref name="keyOfWorkload"/> maps to an object of <paramref name="kind"/>
    /// which does not exist or has another uid than the one in the workload id; returns the ids it stopped.
    /// </summary>
    public static async Task<IReadOnlyList<string>> StopAsync(
        IWorkloadRuntime runtime,
        IResourceStore resources,
        string kind,
        Func<string, string?> keyOfWorkload,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(resources);
        ArgumentNullException.ThrowIfNull(keyOfWorkload);
        var stopped = new List<string>();
        foreach (var workload in await runtime.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            if (workload.IsFinished || keyOfWorkload(workload.WorkloadId) is not { } key)
            {
                continue;
            }

            var slash = key.IndexOf('/', StringComparison.Ordinal);
            var owner = await resources.FindAsync(kind, key[..slash], key[(slash + 1)..], cancellationToken).ConfigureAwait(false);
            if (owner is null || !UidMatches(owner, workload.WorkloadId))
            {
                await runtime.StopAsync(workload.WorkloadId, cancellationToken).ConfigureAwait(false);
                stopped.Add(workload.WorkloadId);
            }
        }

        return stopped;
    }

    /// <summary>Ids <c>NS.NAME.UID8.REST</c> carry the owner's uid (dashes removed, first 8); ids without one match any owner.</summary>
    private static bool UidMatches(Resource owner, string workloadId)
    {
        var parts = workloadId.Split('.');
        if (parts.Length < 4)
        {
            return true;
        }

        var uid = (owner.Metadata.Uid ?? "").Replace("-", "", StringComparison.Ordinal);
        var expected = uid.Length == 0 ? "0" : uid[..Math.Min(8, uid.Length)];
        return string.Equals(parts[2], expected, StringComparison.Ordinal);
    }
}
