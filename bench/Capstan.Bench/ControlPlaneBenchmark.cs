using System.Diagnostics;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Runtime.Local;
using Capstan.Server.ControlPlane;
using Capstan.Store.Artifacts;
using Capstan.Store.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Capstan.Bench;

/// <summary>
/// The control plane: submit-to-process-start through the reconciler against the runtime alone, and a burst of short
/// jobs through the whole loop (run creation, status, events, log upload) with the process's CPU share.
/// </summary>
public static class ControlPlaneBenchmark
{
    public static async Task RunAsync(Report report, bool quick)
    {
        var root = Directory.CreateTempSubdirectory("capstan-bench-cp-").FullName;
        try
        {
            var samples = quick ? 10 : 30;
            var runtimeOptions = new LocalRuntimeOptions { RootPath = Path.Combine(root, "runtime-alone"), Cpu = "8", Memory = "16Gi", Gpus = 0 };
            TimeSpan runtimeP50;
            await using (var alone = new LocalWorkloadRuntime(runtimeOptions))
            {
                await StartLatencyProbe.MeasureAsync(alone, 3);
                runtimeP50 = StartLatencyProbe.Median(await StartLatencyProbe.MeasureAsync(alone, samples));
            }

            await using var store = await SqliteMetadataStore.OpenAsync(Path.Combine(root, "capstan.db"));
            await using var runtime = new LocalWorkloadRuntime(new LocalRuntimeOptions { RootPath = Path.Combine(root, "runtime"), Cpu = "8", Memory = "16Gi", Gpus = 0 });
            var reconciler = new TrainJobReconciler(store, runtime, store, new FolderArtifactStore(Path.Combine(root, "artifacts")), TimeProvider.System);
            using var service = new ControlPlaneService(reconciler, store, runtime, TimeProvider.System, NullLogger<ControlPlaneService>.Instance);
            await service.StartAsync(CancellationToken.None);

            var latencies = new List<TimeSpan>();
            using (var watching = new CancellationTokenSource())
            {
                await using var events = runtime.WatchAsync(watching.Token).GetAsyncEnumerator(watching.Token);
                for (var i = 0; i < samples + 3; i++)
                {
                    var name = $"latency-{i}";
                    var started = Stopwatch.GetTimestamp();
                    var applied = await store.ApplyAsync(Job(name));
                    var id = TrainJobWorkloads.WorkloadId((TrainJob)applied.Object, 1);
                    while (await events.MoveNextAsync())
                    {
                        if (events.Current is WorkloadStatusChanged { Status: { Phase: WorkloadPhase.Running } status } && status.WorkloadId == id)
                        {
                            if (i >= 3)
                            {
                                latencies.Add(Stopwatch.GetElapsedTime(started));
                            }

                            break;
                        }
                    }
                }

                await watching.CancelAsync();
            }

            var reconcilerP50 = StartLatencyProbe.Median(latencies);
            report.Add(
                "submit-to-process-start through the reconciler, p50",
                Report.Ms(reconcilerP50.TotalMilliseconds),
                $"runtime alone {Report.Ms(runtimeP50.TotalMilliseconds)}",
                "≤ 50 ms",
                reconcilerP50 <= TimeSpan.FromMilliseconds(50));

            var count = quick ? 200 : 1000;
            var process = Process.GetCurrentProcess();
            var cpuBefore = process.TotalProcessorTime;
            var wall = Stopwatch.StartNew();
            for (var i = 0; i < count; i++)
            {
                await store.ApplyAsync(Job($"burst-{i}"));
            }

            while (true)
            {
                var jobs = await store.ListAsync<TrainJob>();
                if (jobs.Count(j => j.Metadata.Name!.StartsWith("burst-", StringComparison.Ordinal) && j.Status?.Phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed) >= count)
                {
                    break;
                }

                if (wall.Elapsed > TimeSpan.FromMinutes(3))
                {
                    throw new TimeoutException("burst of jobs did not finish within 3 minutes");
                }

                await Task.Delay(100);
            }

            wall.Stop();
            process.Refresh();
            var cpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
            var share = cpu / wall.Elapsed.TotalSeconds / Environment.ProcessorCount;
            report.Add(
                $"{count} short jobs through the control plane",
                Report.Rate(count / wall.Elapsed.TotalSeconds) + " jobs",
                $"control plane CPU {share:P0} of {Environment.ProcessorCount} cores ({cpu:0.0} s in {wall.Elapsed.TotalSeconds:0.0} s)",
                "measured",
                met: true);
            await service.StopAsync(CancellationToken.None);
            await CountByPhaseAsync(report, Path.Combine(root, "count.db"), quick ? 2_000 : 10_000);
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>
    /// What a scrape of <c>capstan_resources</c> costs at <paramref name="objects"/> TrainJobs: counted in SQLite from the
    /// stored bodies, against listing and deserializing every object and counting in memory (what it did before), in turns.
    /// </summary>
    private static async Task CountByPhaseAsync(Report report, string path, int objects)
    {
        await using var store = await SqliteMetadataStore.OpenAsync(path);
        var phases = new TrainJobPhase?[] { null, TrainJobPhase.Running, TrainJobPhase.Succeeded, TrainJobPhase.Failed, TrainJobPhase.Succeeded };
        for (var i = 0; i < objects; i++)
        {
            var job = (TrainJob)await store.CreateAsync(Job($"count-{i}"));
            if (phases[i % phases.Length] is { } phase)
            {
                job.Status = new TrainJobStatus { Phase = phase, Message = "bench", Attempts = 1, RunId = Guid.NewGuid().ToString("N") };
                await store.UpdateStatusAsync(job);
            }
        }

        var counted = new List<double>();
        var listed = new List<double>();
        for (var round = 0; round < 11; round++)
        {
            var started = Stopwatch.GetTimestamp();
            var bySql = await store.CountByPhaseAsync(TrainJob.KindName);
            counted.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            started = Stopwatch.GetTimestamp();
            var byList = (await store.ListAsync(TrainJob.KindName)).GroupBy(ResourcePhases.Of).ToDictionary(g => g.Key, g => g.Count());
            listed.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if (bySql.Count != byList.Count || bySql.Any(c => byList.GetValueOrDefault(c.Key) != c.Value))
            {
                throw new InvalidOperationException("the SQL count and the listed count differ");
            }
        }

        counted.Sort();
        listed.Sort();
        report.Info(
            $"capstan_resources count per kind at {objects:N0} TrainJobs, p50 of 11",
            Report.Ms(counted[5]),
            $"list and deserialize every object {Report.Ms(listed[5])} ({listed[5] / counted[5]:0.0}x)");
    }

    private static TrainJob Job(string name) => new()
    {
        Metadata = new ResourceMetadata { Name = name, Namespace = ResourceMetadata.DefaultNamespace },
        Spec = new TrainJobSpec { Command = ["/bin/true"], Experiment = "bench" },
    };
}
