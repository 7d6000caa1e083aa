using Capstan.Core;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;

namespace Capstan.Runtime.Local;

/// <summary>Settings of the local runtime; capacity left unset is detected from the machine.</summary>
public sealed class LocalRuntimeOptions
{
    /// <summary>Where each workload gets its folder (<c>ROOT/WORKLOAD_ID/</c>): state file, combined log, one folder per replica.</summary>
    public string RootPath { get; set; } = Path.Combine(CapstanHome.FromEnvironment().Root, "runtime");

    /// <summary>CPU to hand out, as a Kubernetes quantity (<c>4</c>, <c>3500m</c>); default the processor count.</summary>
    public string? Cpu { get; set; }

    /// <summary>Memory to hand out, as a Kubernetes quantity (<c>16Gi</c>); default the machine's total memory.</summary>
    public string? Memory { get; set; }

    /// <summary>GPU slots; default the GPUs <c>nvidia-smi -L</c> lists, 0 without it.</summary>
    public int? Gpus { get; set; }

    /// <summary>Between SIGTERM and SIGKILL when a workload is stopped, times out or loses a replica.</summary>
    public TimeSpan TerminationGracePeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often running workloads' output files are read (logs, metrics) and adopted processes checked.</summary>
    public TimeSpan OutputPollInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>The rendezvous address replicas get as <c>MASTER_ADDR</c>.</summary>
    public string MasterAddress { get; set; } = "127.0.0.1";

    /// <summary>The capacity these options describe, detecting what is not set.</summary>
    public ResourceRequest ResolveCapacity()
    {
        var detected = MachineCapacity.Detect(detectGpus: Gpus is null);
        return new ResourceRequest(
            Cpu is null ? detected.CpuMillis : (long)Math.Ceiling(Quantity(Cpu, nameof(Cpu)) * 1000m),
            Memory is null ? detected.MemoryBytes : (long)Math.Ceiling(Quantity(Memory, nameof(Memory))),
            Gpus ?? detected.Gpus);
    }

    private static decimal Quantity(string text, string name) =>
        ResourceQuantities.Parse(text)?.ToDecimal()
        ?? throw CapstanException.Invalid($"local runtime {name}: {ResourceQuantities.Problem(text)}");
}
