using System.Globalization;

namespace Capstan.Server.ControlPlane;

/// <summary>
/// One control plane per Capstan home: an exclusive lock on <c>HOME/runtime/control-plane.lock</c>, held while a
/// <c>capstan server</c> or <c>capstan run</c> drives the home's jobs, so two of them never run the same job twice.
/// The operating system releases it when the holder exits, <c>kill -9</c> included, so a stale file never blocks a restart.
/// </summary>
public sealed class ControlPlaneLock : IDisposable
{
    public const string FileName = "control-plane.lock";

    /// <summary>Next to the lock, the holder's pid: .NET's own lock keeps every other FileStream off the lock file itself.</summary>
    public const string PidFileName = "control-plane.pid";

    private readonly FileStream _file;

    private ControlPlaneLock(FileStream file)
    {
        _file = file;
    }

    /// <exception cref="InvalidOperationException">Another process holds the lock; the message names its pid when known.</exception>
    public static ControlPlaneLock Acquire(string runtimeRoot)
    {
        ArgumentNullException.ThrowIfNull(runtimeRoot);
        Directory.CreateDirectory(runtimeRoot);
        var path = Path.Combine(runtimeRoot, FileName);
        FileStream file;
        try
        {
            // FileShare.None takes an advisory exclusive lock (flock) on Unix and a sharing lock on Windows.
            file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            var holder = ReadHolder(Path.Combine(runtimeRoot, PidFileName));
            throw new InvalidOperationException(
                $"Another Capstan control plane{holder} is running the jobs of {Path.GetDirectoryName(runtimeRoot)}. "
                + "Point the CLI at it with CAPSTAN_URL (capstan apply), or use another --home / CAPSTAN_HOME.");
        }

        File.WriteAllText(Path.Combine(runtimeRoot, PidFileName), Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        return new ControlPlaneLock(file);
    }

    public void Dispose() => _file.Dispose();

    private static string ReadHolder(string path)
    {
        try
        {
            return int.TryParse(File.ReadAllText(path).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? $" (pid {pid})" : "";
        }
        catch (IOException)
        {
            return "";
        }
    }
}
