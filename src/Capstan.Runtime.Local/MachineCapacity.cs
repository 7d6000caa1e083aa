using System.Diagnostics;
using System.Globalization;
using Capstan.Core.Runtime;

namespace Capstan.Runtime.Local;

/// <summary>What this machine has: all processors, total memory (<c>/proc/meminfo</c>, else the GC's view), the GPUs <c>nvidia-smi -L</c> lists.</summary>
public static class MachineCapacity
{
    public static ResourceRequest Detect(bool detectGpus = true) =>
        new(Environment.ProcessorCount * 1000L, TotalMemoryBytes(), detectGpus ? CountGpus() : 0);

    private static long TotalMemoryBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    private static int CountGpus()
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("nvidia-smi", "-L")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            if (process is null)
            {
                return 0;
            }

            var output = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(10_000) || process.ExitCode != 0)
            {
                return 0;
            }

            return output.Split('\n').Count(line => line.StartsWith("GPU ", StringComparison.Ordinal));
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return 0;
        }
    }
}
