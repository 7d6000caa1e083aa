using System.Runtime.CompilerServices;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;

namespace Capstan.Core.ControlPlane;

/// <summary>
/// A TrainJob's output as <c>capstan logs</c> shows it: the current attempt's lines, or with follow every attempt's lines
/// as they come (a retry's under a <c>--- attempt N ---</c> line) until the job reaches a terminal phase.
/// </summary>
public static class TrainJobLogs
{
    public static async IAsyncEnumerable<string> ReadAsync(
        IResourceStore resources,
        IWorkloadRuntime runtime,
        string @namespace,
        string name,
        bool follow,
        TimeSpan? pollInterval = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(resources);
        ArgumentNullException.ThrowIfNull(runtime);
        var poll = pollInterval ?? TimeSpan.FromMilliseconds(200);
        var shown = 0;
        while (true)
        {
            var job = await resources.GetAsync<TrainJob>(@namespace, name, cancellationToken).ConfigureAwait(false);
            var attempts = job.Status?.Attempts ?? 0;
            var terminal = job.Status?.Phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed;
            if (attempts > shown)
            {
                var attempt = follow ? Math.Max(shown + 1, 1) : attempts;
                if (attempt > 1 && follow)
                {
                    yield return $"--- attempt {attempt} ---";
                }

                shown = attempt;
                var lines = runtime.ReadLogsAsync(TrainJobWorkloads.WorkloadId(job, attempt), follow, cancellationToken);
                await using var reader = lines.GetAsyncEnumerator(cancellationToken);
                while (true)
                {
                    bool more;
                    try
                    {
                        more = await reader.MoveNextAsync().ConfigureAwait(false);
                    }
                    catch (CapstanException e) when (e.Code == ErrorCode.ResourceDoesNotExist)
                    {
                        more = false;
                    }

                    if (!more)
                    {
                        break;
                    }

                    yield return reader.Current;
                }

                if (!follow)
                {
                    yield break;
                }

                continue;
            }

            if (!follow || terminal)
            {
                yield break;
            }

            await Task.Delay(poll, cancellationToken).ConfigureAwait(false);
        }
    }
}
