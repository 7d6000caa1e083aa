using Microsoft.ML.OnnxRuntime;

namespace Capstan.Serving.Models;

/// <summary>
/// Where ONNX Runtime runs a model: CUDA when the ONNX Runtime build has the CUDA execution provider, the machine shows an
/// NVIDIA GPU, <c>CUDA_VISIBLE_DEVICES</c> does not hide it and the provider starts; the CPU otherwise — with the reason,
/// so <c>capstan serve</c> can say why a GPU machine serves on the CPU.
/// </summary>
public sealed record ExecutionProviderChoice(string Name, string Reason)
{
    public const string Cpu = "cpu";
    public const string Cuda = "cuda";
    public const string CudaProvider = "CUDAExecutionProvider";

    private static readonly Lazy<ExecutionProviderChoice> s_machine = new(() => Decide(true, OrtEnv.Instance().GetAvailableProviders(), NvidiaGpuPresent(), Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES")));

    /// <summary>What this machine and build allow, decided once per process (before a session tries the provider).</summary>
    public static ExecutionProviderChoice ForMachine(bool preferCuda) =>
        preferCuda ? s_machine.Value : new ExecutionProviderChoice(Cpu, "the CPU was asked for");

    /// <summary>The decision from its inputs alone; <see cref="Name"/> is <see cref="Cuda"/> when CUDA is worth trying.</summary>
    public static ExecutionProviderChoice Decide(bool preferCuda, IReadOnlyCollection<string> availableProviders, bool gpuPresent, string? cudaVisibleDevices)
    {
        ArgumentNullException.ThrowIfNull(availableProviders);
        if (!preferCuda)
        {
            return new ExecutionProviderChoice(Cpu, "the CPU was asked for");
        }

        if (!availableProviders.Contains(CudaProvider))
        {
            return new ExecutionProviderChoice(Cpu, "this ONNX Runtime build has no CUDA execution provider");
        }

        if (cudaVisibleDevices is not null && (cudaVisibleDevices.Trim().Length == 0 || cudaVisibleDevices.Trim() == "-1"))
        {
            return new ExecutionProviderChoice(Cpu, $"CUDA_VISIBLE_DEVICES='{cudaVisibleDevices}' hides every GPU");
        }

        return gpuPresent
            ? new ExecutionProviderChoice(Cuda, "an NVIDIA GPU and the CUDA execution provider are present")
            : new ExecutionProviderChoice(Cpu, "no NVIDIA GPU on this machine");
    }

    /// <summary>Adds the chosen provider to <paramref name="options"/>; CUDA that fails to start falls back to the CPU.</summary>
    public static ExecutionProviderChoice Apply(SessionOptions options, bool preferCuda)
    {
        ArgumentNullException.ThrowIfNull(options);
        var choice = ForMachine(preferCuda);
        if (choice.Name != Cuda)
        {
            return choice;
        }

        try
        {
            options.AppendExecutionProvider_CUDA(0);
            return choice;
        }
        catch (OnnxRuntimeException e)
        {
            return new ExecutionProviderChoice(Cpu, $"the CUDA execution provider did not start: {e.Message}");
        }
    }

    /// <summary>The NVIDIA driver's device nodes or its /proc entries, looked at without loading any library.</summary>
    public static bool NvidiaGpuPresent()
    {
        try
        {
            return File.Exists("/dev/nvidia0")
                || (Directory.Exists("/proc/driver/nvidia/gpus") && Directory.EnumerateFileSystemEntries("/proc/driver/nvidia/gpus").Any());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The provider a loaded model got, with the machine's reason: <c>cpu: no NVIDIA GPU on this machine</c>.</summary>
    public static string Describe(string provider)
    {
        var machine = ForMachine(preferCuda: true);
        return provider == machine.Name ? machine.ToString()
            : provider == Cpu ? $"{Cpu}: the CUDA execution provider did not start"
            : provider;
    }

    public override string ToString() => $"{Name}: {Reason}";
}
