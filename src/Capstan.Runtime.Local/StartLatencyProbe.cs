using System.Diagnostics;
using Capstan.Core.Runtime;

namespace Capstan.Runtime.Local;

/// <summary>
/// Measures submit-to-start latency: the time from <see cref="IWorkloadRuntime.SubmitAsync"/> until the runtime
/// announces the workload Running (its processes have been spawned), one short <c>/bin/true</c> job at a time on
/// an otherwise idle runtime. For the benchmark and for tests.
/// </summary>
public static class StartLatencyProbe
{
    public static async Task<IReadOnlyList<TimeSpan>> MeasureAsync(IWorkloadRuntime runtime, int samples, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        var prefix = $"latency-probe-{Guid.NewGuid():N}"[..24];
        var latencies = new List<TimeSpan>(samples);
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await using var events = runtime.WatchAsync(watching.Token).GetAsyncEnumerator(watching.Token);
        for (var i = 0; i < samples; i++)
        {
            var id = $"{prefix}-{i}";
            var started = Stopwatch.GetTimestamp();
            await runtime.SubmitAsync(new WorkloadSpec { WorkloadId = id, Command = ["/bin/true"] }, cancellationToken).ConfigureAwait(false);
            TimeSpan? latency = null;
            while (await events.MoveNextAsync().ConfigureAwait(false))
            {
                if (events.Current is not WorkloadStatusChanged { Status: var status } || status.WorkloadId != id)
                {
                    continue;
                }

                if (status.Phase == WorkloadPhase.Running)
                {
                    latency = Stopwatch.GetElapsedTime(started);
                }
                else if (status.IsFinished)
                {
                    break;
                }
            }

            latencies.Add(latency ?? throw new InvalidOperationException($"probe workload {id} never ran"));
        }

        await watching.CancelAsync().ConfigureAwait(false);
        return latencies;
    }

    public static TimeSpan Median(IReadOnlyList<TimeSpan> latencies)
    {
        ArgumentNullException.ThrowIfNull(latencies);
        var sorted = latencies.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
