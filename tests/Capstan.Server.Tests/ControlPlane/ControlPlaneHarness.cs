using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Runtime.Local;
using Capstan.Server.ControlPlane;
using Capstan.Store.Artifacts;
using Capstan.Store.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;

namespace Capstan.Server.Tests.ControlPlane;

/// <summary>A real control plane over a temporary home: SQLite store, folder artifacts, the local runtime with
/// 4 CPUs, and the service loop with millisecond backoffs.</summary>
internal sealed class ControlPlaneHarness : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopping = new();

    private readonly Core.Storage.IMetadataStore _metadata;

    private ControlPlaneHarness(string root, SqliteMetadataStore store, FolderArtifactStore artifacts, Func<Core.Storage.IMetadataStore, Core.Storage.IMetadataStore>? metadata)
    {
        Root = root;
        Store = store;
        Artifacts = artifacts;
        _metadata = metadata?.Invoke(store) ?? store;
        Open();
    }

    public string Root { get; }

    public SqliteMetadataStore Store { get; }

    public FolderArtifactStore Artifacts { get; }

    public LocalWorkloadRuntime Runtime { get; private set; } = null!;

    public TrainJobReconciler Reconciler { get; private set; } = null!;

    public ControlPlaneService Service { get; private set; } = null!;

    public ExperimentReconciler Experiments { get; private set; } = null!;

    /// <param name="metadata">Wraps the tracking store the reconciler sees (to inject faults); the resource store stays the real one.</param>
    public static async Task<ControlPlaneHarness> StartAsync(bool runLoop = true, Func<Core.Storage.IMetadataStore, Core.Storage.IMetadataStore>? metadata = null)
    {
        var root = Directory.CreateTempSubdirectory("capstan-cp-").FullName;
        var store = await SqliteMetadataStore.OpenAsync(Path.Combine(root, "capstan.db"));
        var harness = new ControlPlaneHarness(root, store, new FolderArtifactStore(Path.Combine(root, "artifacts")), metadata);
        if (runLoop)
        {
            await harness.Service.StartAsync(CancellationToken.None);
        }

        return harness;
    }

    /// <summary>As a server crash and restart: the loop and the runtime go away (their processes keep running),
    /// <paramref name="whileDown"/> runs, then a new runtime over the same folder and a new loop start.</summary>
    public async Task RestartAsync(Action whileDown)
    {
        await Service.StopAsync(CancellationToken.None);
        Service.Dispose();
        await Runtime.DisposeAsync();
        whileDown();
        Open();
        await Service.StartAsync(CancellationToken.None);
    }

    private void Open()
    {
        Runtime = new LocalWorkloadRuntime(new LocalRuntimeOptions
        {
            RootPath = Path.Combine(Root, "runtime"),
            Cpu = "4",
            Memory = "8Gi",
            Gpus = 0,
            TerminationGracePeriod = TimeSpan.FromSeconds(1),
        });
        Reconciler = new TrainJobReconciler(Store, Runtime, _metadata, Artifacts, TimeProvider.System, new TrainJobReconcilerOptions
        {
            BackoffBase = TimeSpan.FromMilliseconds(50),
            BackoffCap = TimeSpan.FromMilliseconds(400),
        });
        Experiments = new ExperimentReconciler(Store, Runtime, Store, TimeProvider.System, new ExperimentReconcilerOptions
        {
            EarlyStoppingInterval = TimeSpan.FromMilliseconds(100),
            MetricsGracePeriod = TimeSpan.FromSeconds(2),
        });
        Service = new ControlPlaneService(Reconciler, Store, Runtime, TimeProvider.System, NullLogger<ControlPlaneService>.Instance, new ControlPlaneOptions { TimerInterval = TimeSpan.FromMilliseconds(20) }, Experiments);
    }

    public async Task<TrainJob> ApplyAsync(string yaml)
    {
        var resource = ResourceLoader.Load(yaml, "test.yaml").Single();
        return (TrainJob)(await Store.ApplyAsync(resource)).Object;
    }

    public async Task<TrainJob> WaitForAsync(string name, Func<TrainJob, bool> condition, int timeoutSeconds = 30)
    {
        var until = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            var job = await Store.GetAsync<TrainJob>("default", name);
            if (condition(job))
            {
                return job;
            }

            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"{name}: still {job.Status?.Phase}: {job.Status?.Message}");
            }

            await Task.Delay(25);
        }
    }

    public async Task<TuningExperiment> ApplyExperimentAsync(string yaml)
    {
        var resource = ResourceLoader.Load(yaml, "experiment.yaml").Single();
        return (TuningExperiment)(await Store.ApplyAsync(resource)).Object;
    }

    public async Task<TuningExperiment> WaitForExperimentAsync(string name, Func<TuningExperiment, bool> condition, int timeoutSeconds = 60)
    {
        var until = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            var experiment = await Store.GetAsync<TuningExperiment>("default", name);
            if (condition(experiment))
            {
                return experiment;
            }

            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"{name}: still {experiment.Status?.Phase}: {experiment.Status?.Message}");
            }

            await Task.Delay(25);
        }
    }

    public Task<TuningExperiment> WaitForExperimentEndAsync(string name, int timeoutSeconds = 60) =>
        WaitForExperimentAsync(name, e => e.Status?.Phase is ExperimentPhase.Succeeded or ExperimentPhase.Failed, timeoutSeconds);

    /// <summary>As <see cref="WaitForAsync"/> for a job that an experiment has yet to create.</summary>
    public async Task<TrainJob> WaitForTrialAsync(string name, Func<TrainJob, bool> condition, int timeoutSeconds = 30)
    {
        var until = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (await Store.FindAsync(TrainJob.KindName, "default", name) is null)
        {
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"{name} was never created");
            }

            await Task.Delay(25);
        }

        return await WaitForAsync(name, condition, timeoutSeconds);
    }

    public async Task<Core.Tracking.Run> WaitForRunStatusAsync(string runId, Core.Tracking.RunStatus status, int timeoutSeconds = 10)
    {
        var until = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            var run = await Store.GetRunAsync(runId);
            if (run.Info.Status == status || DateTime.UtcNow > until)
            {
                return run;
            }

            await Task.Delay(25);
        }
    }

    public Task<TrainJob> WaitForFinishAsync(string name, int timeoutSeconds = 30) =>
        WaitForAsync(name, j => j.Status?.Phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed, timeoutSeconds);

    public async ValueTask DisposeAsync()
    {
        await Service.StopAsync(CancellationToken.None);
        Service.Dispose();
        foreach (var folder in Directory.Exists(Path.Combine(Root, "runtime")) ? Directory.EnumerateDirectories(Path.Combine(Root, "runtime")) : [])
        {
            await Runtime.StopAsync(Path.GetFileName(folder));
        }

        await Runtime.DisposeAsync();
        await Store.DisposeAsync();
        _stopping.Dispose();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
