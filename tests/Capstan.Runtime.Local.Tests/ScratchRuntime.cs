using Capstan.Core.Runtime;

namespace Capstan.Runtime.Local.Tests;

/// <summary>A runtime over a fresh temporary root; disposing stops what is still running and deletes the root.</summary>
internal sealed class ScratchRuntime : IAsyncDisposable
{
    private readonly List<LocalWorkloadRuntime> _instances = [];

    public ScratchRuntime(string cpu = "4", string memory = "8Gi", int gpus = 0, TimeSpan? grace = null)
    {
        Root = Path.Combine(Path.GetTempPath(), "capstan-runtime-tests", Guid.NewGuid().ToString("N"));
        Options = new LocalRuntimeOptions
        {
            RootPath = Root,
            Cpu = cpu,
            Memory = memory,
            Gpus = gpus,
            TerminationGracePeriod = grace ?? TimeSpan.FromSeconds(1),
        };
        Runtime = Open();
    }

    public string Root { get; }

    public LocalRuntimeOptions Options { get; }

    public LocalWorkloadRuntime Runtime { get; private set; }

    /// <summary>A second instance over the same root, as a restarted control plane would open.</summary>
    public LocalWorkloadRuntime Open()
    {
        var runtime = new LocalWorkloadRuntime(Options);
        _instances.Add(runtime);
        Runtime = runtime;
        return runtime;
    }

    public static WorkloadSpec Shell(string id, string script, int replicas = 1, string? cpu = null, int priority = 0, IReadOnlyDictionary<string, string>? environment = null) => new()
    {
        WorkloadId = id,
        Command = ["/bin/sh", "-c"],
        Args = [script],
        Replicas = replicas,
        Priority = priority,
        Environment = environment ?? new Dictionary<string, string>(),
        Resources = cpu is null ? null : new k8s.Models.V1ResourceRequirements
        {
            Requests = new Dictionary<string, k8s.Models.ResourceQuantity> { ["cpu"] = new(cpu) },
        },
    };

    public async Task<WorkloadStatus> WaitForAsync(string id, Func<WorkloadStatus, bool> condition, int timeoutSeconds = 20)
    {
        var until = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            var status = await Runtime.GetStatusAsync(id);
            if (status is not null && condition(status))
            {
                return status;
            }

            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"{id}: still {status?.Phase} ({status?.Reason}: {status?.Message})");
            }

            await Task.Delay(20);
        }
    }

    public Task<WorkloadStatus> WaitForFinishAsync(string id, int timeoutSeconds = 20) =>
        WaitForAsync(id, s => s.IsFinished, timeoutSeconds);

    public Task<WorkloadStatus> WaitForRunningAsync(string id, int timeoutSeconds = 20) =>
        WaitForAsync(id, s => s.Phase == WorkloadPhase.Running, timeoutSeconds);

    public static async Task WaitForFileAsync(string path, int timeoutSeconds = 20)
    {
        var until = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (!File.Exists(path) || new FileInfo(path).Length == 0)
        {
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"{path} never appeared");
            }

            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        var last = _instances[^1];
        foreach (var folder in Directory.EnumerateDirectories(Root))
        {
            await last.StopAsync(Path.GetFileName(folder));
        }

        foreach (var instance in _instances)
        {
            await instance.DisposeAsync();
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
