using Capstan.Core.Runtime;
using k8s.Models;

namespace Capstan.Runtime.Local.Tests;

public sealed class ResourceRequestTests
{
    [Fact]
    public void From_NoResources_SmallDefault()
    {
        Assert.Equal(new ResourceRequest(100, 128L << 20, 0), ResourceRequest.From(null));
    }

    [Fact]
    public void From_RequestsAndLimits_RequestsWinAndLimitsFillGaps()
    {
        var request = ResourceRequest.From(new V1ResourceRequirements
        {
            Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("500m") },
            Limits = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("2"), ["memory"] = new("2Gi"), ["nvidia.com/gpu"] = new("1") },
        });

        Assert.Equal(new ResourceRequest(500, 2L << 30, 1), request);
    }

    [Fact]
    public void Options_ConfiguredCapacity_ParsedAsQuantities()
    {
        var options = new LocalRuntimeOptions { RootPath = "/tmp/x", Cpu = "1500m", Memory = "1Gi", Gpus = 2 };

        Assert.Equal(new ResourceRequest(1500, 1L << 30, 2), options.ResolveCapacity());
    }

    [Fact]
    public void Detect_ThisMachine_HasProcessorsAndMemory()
    {
        var capacity = MachineCapacity.Detect(detectGpus: false);

        Assert.Equal(Environment.ProcessorCount * 1000L, capacity.CpuMillis);
        Assert.True(capacity.MemoryBytes > 64L << 20);
    }
}
