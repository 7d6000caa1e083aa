using System.Collections.Concurrent;
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
/// The platform's cost per tuning trial on the local runtime: an Experiment of trivial trials (one <c>loss=</c> line each,
/// one at a time) through the real control plane, timing per trial the suggestion (its TrainJob created) to its process
/// start, process start to its first metric seen by the control plane, and a finished trial to the next one's suggestion.
/// A bare process spawn measured in the same run is the baseline.
/// </summary>
public static class TrialOverheadBenchmark
{
    public static async Task RunAsync(Report report, bool quick)
    {
        var root = Directory.CreateTempSubdirectory("capstan-bench-trials-").FullName;
        try
        {
            var trials = quick ? 8 : 25;
            TimeSpan spawnP50;
            await using (var alone = new LocalWorkloadRuntime(new LocalRuntimeOptions { RootPath = Path.Combine(root, "runtime-alone"), Cpu = "8", Memory = "16Gi", Gpus = 0 }))
            {
                await StartLatencyProbe.MeasureAsync(alone, 3);
                spawnP50 = StartLatencyProbe.Median(await StartLatencyProbe.MeasureAsync(alone, trials));
            }

            await using var store = await SqliteMetadataStore.OpenAsync(Path.Combine(root, "capstan.db"));
            await using var runtime = new LocalWorkloadRuntime(new LocalRuntimeOptions { RootPath = Path.Combine(root, "runtime"), Cpu = "8", Memory = "16Gi", Gpus = 0 });
            var artifacts = new FolderArtifactStore(Path.Combine(root, "artifacts"));
            var jobs = new TrainJobReconciler(store, runtime, store, artifacts, TimeProvider.System);
            var experiments = new ExperimentReconciler(store, runtime, store, TimeProvider.System);
            using var service = new ControlPlaneService(jobs, store, runtime, TimeProvider.System, NullLogger<ControlPlaneService>.Instance, experiments: experiments);

            // Every runtime event, stamped as it arrives: when each trial's process started and its first metric came in.
            var started = new ConcurrentDictionary<string, DateTimeOffset>(StringComparer.Ordinal);
            var firstMetric = new ConcurrentDictionary<string, DateTimeOffset>(StringComparer.Ordinal);
            var finished = new ConcurrentDictionary<string, DateTimeOffset>(StringComparer.Ordinal);
            using var watching = new CancellationTokenSource();
            var watch = Task.Run(async () =>
            {
                try
                {
                    await foreach (var item in runtime.WatchAsync(watching.Token))
                    {
                        var now = DateTimeOffset.UtcNow;
                        switch (item)
                        {
                            case WorkloadStatusChanged { Status.Phase: WorkloadPhase.Running } running:
                                started.TryAdd(running.WorkloadId, now);
                                break;
                            case WorkloadStatusChanged { Status.IsFinished: true } done:
                                finished.TryAdd(done.WorkloadId, now);
                                break;
                            case WorkloadMetricsReported reported:
                                firstMetric.TryAdd(reported.WorkloadId, now);
                                break;
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                    // Done measuring.
                }
            });
            await service.StartAsync(CancellationToken.None);

            var yaml = $$"""
                apiVersion: capstan.dev/v1alpha1
                kind: Experiment
                metadata:
                  name: overhead
                spec:
                  objective: {type: minimize, objectiveMetricName: loss}
                  algorithm: {algorithmName: random}
                  parallelTrialCount: 1
                  maxTrialCount: {{trials}}
                  parameters:
                    - {name: x, parameterType: double, feasibleSpace: {min: "0", max: "1"} }
                  trialTemplate:
                    trialSpec:
                      command: [/bin/sh, -c]
                      args: ['echo loss=${trialParameters.x}']
                """;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            await store.ApplyAsync(ResourceLoader.Load(yaml, "overhead.yaml").Single());
            TuningExperiment experiment;
            while (true)
            {
                experiment = await store.GetAsync<TuningExperiment>("default", "overhead");
                if (experiment.Status?.Phase is ExperimentPhase.Succeeded or ExperimentPhase.Failed)
                {
                    break;
                }

                if (clock.Elapsed > TimeSpan.FromMinutes(3))
                {
                    throw new TimeoutException($"the experiment did not finish in 3 minutes: {experiment.Status?.Message}");
                }

                await Task.Delay(50);
            }

            clock.Stop();
            await service.StopAsync(CancellationToken.None);
            await watching.CancelAsync();
            await watch;

            var toStart = new List<TimeSpan>();
            var toMetric = new List<TimeSpan>();
            var turnaround = new List<TimeSpan>();
            DateTimeOffset? previousEnd = null;
            foreach (var trial in (await store.ListAsync<TrainJob>()).OrderBy(j => j.Metadata.CreationTimestamp))
            {
                var id = TrainJobWorkloads.WorkloadId(trial, 1);
                var created = trial.Metadata.CreationTimestamp!.Value;
                if (previousEnd is { } end)
                {
                    turnaround.Add(created - end);
                }

                if (started.TryGetValue(id, out var start))
                {
                    toStart.Add(start - created);
                    if (firstMetric.TryGetValue(id, out var metric))
                    {
                        toMetric.Add(metric - start);
                    }
                }

                previousEnd = finished.TryGetValue(id, out var done) ? done : null;
            }

            var suggestionToStart = StartLatencyProbe.Median(toStart);
            report.Add(
                $"trial suggestion (TrainJob created) to process start, p50 of {toStart.Count}",
                Report.Ms(suggestionToStart.TotalMilliseconds),
                $"bare process spawn {Report.Ms(spawnP50.TotalMilliseconds)}",
                "measured",
                met: true);
            report.Add(
                "trial process start to first metric seen, p50",
                Report.Ms(StartLatencyProbe.Median(toMetric).TotalMilliseconds),
                "one 'loss=' line on stdout",
                "measured",
                met: true);
            report.Add(
                "trial finished to next trial suggested, p50",
                Report.Ms(StartLatencyProbe.Median(turnaround).TotalMilliseconds),
                $"{experiment.Status?.Trials} trials in {clock.Elapsed.TotalSeconds:0.0} s ({experiment.Status?.Phase})",
                "measured",
                met: true);
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
}
