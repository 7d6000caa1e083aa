using Capstan.Serving.Models;

namespace Capstan.Serving.Tests;

public sealed class ExecutionProviderChoiceTests
{
    private static readonly string[] s_cpuBuild = ["CPUExecutionProvider"];
    private static readonly string[] s_cudaBuild = ["CUDAExecutionProvider", "CPUExecutionProvider"];

    [Fact]
    public void Decide_CpuOnlyBuild_ChoosesCpuAndSaysTheBuildLacksCuda()
    {
        var choice = ExecutionProviderChoice.Decide(true, s_cpuBuild, gpuPresent: true, cudaVisibleDevices: null);

        Assert.Equal(("cpu", "this ONNX Runtime build has no CUDA execution provider"), (choice.Name, choice.Reason));
    }

    [Fact]
    public void Decide_CudaBuildWithoutGpu_ChoosesCpu()
    {
        var choice = ExecutionProviderChoice.Decide(true, s_cudaBuild, gpuPresent: false, cudaVisibleDevices: null);

        Assert.Equal(("cpu", "no NVIDIA GPU on this machine"), (choice.Name, choice.Reason));
    }

    [Theory]
    [InlineData("")]
    [InlineData("-1")]
    public void Decide_GpusHiddenByCudaVisibleDevices_ChoosesCpu(string visible)
    {
        var choice = ExecutionProviderChoice.Decide(true, s_cudaBuild, gpuPresent: true, cudaVisibleDevices: visible);

        Assert.Equal("cpu", choice.Name);
        Assert.Contains("CUDA_VISIBLE_DEVICES", choice.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_CudaBuildAndGpu_ChoosesCuda()
    {
        Assert.Equal("cuda", ExecutionProviderChoice.Decide(true, s_cudaBuild, gpuPresent: true, cudaVisibleDevices: "0").Name);
        Assert.Equal("cpu", ExecutionProviderChoice.Decide(false, s_cudaBuild, gpuPresent: true, cudaVisibleDevices: "0").Name);
    }

    [Fact]
    public void ForMachine_ThisMachine_MatchesWhatALoadedModelReports()
    {
        using var repository = Hosting.ServingServer.CreateRepository();
        var metadata = repository.Load("mlp", "1", ModelSource.FromBytes(Capstan.Testing.OnnxModelBuilder.Mlp(4, 8, 3)), new ModelOptions());

        var machine = ExecutionProviderChoice.ForMachine(preferCuda: true);

        Assert.Equal(machine.Name, metadata.ExecutionProvider);
        Assert.Equal(machine.ToString(), ExecutionProviderChoice.Describe(metadata.ExecutionProvider));
        Assert.Equal("cpu", repository.Load("mlp", "2", ModelSource.FromBytes(Capstan.Testing.OnnxModelBuilder.Mlp(4, 8, 3)), new ModelOptions { PreferCuda = false }).ExecutionProvider);
    }
}
