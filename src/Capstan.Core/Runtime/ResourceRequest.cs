using k8s.Models;

namespace Capstan.Core.Runtime;

/// <summary>
/// What one replica needs of a machine: CPU in millicores, memory in bytes, whole GPUs.
/// Taken from <c>requests</c>, each missing one from <c>limits</c> (as Kubernetes defaults requests to limits),
/// each still missing one from <see cref="Default"/>: 100m CPU and 128Mi memory, no GPU.
/// </summary>
public readonly record struct ResourceRequest(long CpuMillis, long MemoryBytes, int Gpus)
{
    public const string Cpu = "cpu";
    public const string Memory = "memory";
    public const string NvidiaGpu = "nvidia.com/gpu";

    public static ResourceRequest Default { get; } = new(100, 128L * 1024 * 1024, 0);

    public static ResourceRequest Zero { get; } = new(0, 0, 0);

    public static ResourceRequest From(V1ResourceRequirements? resources)
    {
        return new ResourceRequest(
            Quantity(resources, Cpu, q => (long)Math.Ceiling(q * 1000m)) ?? Default.CpuMillis,
            Quantity(resources, Memory, q => (long)Math.Ceiling(q)) ?? Default.MemoryBytes,
            (int)(Quantity(resources, NvidiaGpu, q => (long)Math.Ceiling(q)) ?? Default.Gpus));
    }

    public ResourceRequest Times(int count) => new(CpuMillis * count, MemoryBytes * count, Gpus * count);

    public static ResourceRequest operator +(ResourceRequest a, ResourceRequest b) =>
        new(a.CpuMillis + b.CpuMillis, a.MemoryBytes + b.MemoryBytes, a.Gpus + b.Gpus);

    public static ResourceRequest operator -(ResourceRequest a, ResourceRequest b) =>
        new(a.CpuMillis - b.CpuMillis, a.MemoryBytes - b.MemoryBytes, a.Gpus - b.Gpus);

    public ResourceRequest Add(ResourceRequest other) => this + other;

    public ResourceRequest Subtract(ResourceRequest other) => this - other;

    /// <summary>Whether this request fits in <paramref name="available"/> on every dimension.</summary>
    public bool FitsIn(ResourceRequest available) =>
        CpuMillis <= available.CpuMillis && MemoryBytes <= available.MemoryBytes && Gpus <= available.Gpus;

    public override string ToString() => $"cpu {CpuMillis}m, memory {FormatBytes(MemoryBytes)}, gpu {Gpus}";

    private static string FormatBytes(long bytes) => bytes % (1L << 30) == 0 ? $"{bytes >> 30}Gi" : bytes % (1L << 20) == 0 ? $"{bytes >> 20}Mi" : $"{bytes}";

    private static long? Quantity(V1ResourceRequirements? resources, string name, Func<decimal, long> convert)
    {
        if (resources?.Requests is { } requests && requests.TryGetValue(name, out var requested) && requested is not null)
        {
            return convert(requested.ToDecimal());
        }

        if (resources?.Limits is { } limits && limits.TryGetValue(name, out var limited) && limited is not null)
        {
            return convert(limited.ToDecimal());
        }

        return null;
    }
}
