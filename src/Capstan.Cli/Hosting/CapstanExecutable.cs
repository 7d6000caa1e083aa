namespace Capstan.Cli.Hosting;

/// <summary>
/// How to start this same capstan program as a child process (a TrainJob running <c>capstan train</c>, a served model):
/// the apphost when it was started as one, else <c>dotnet capstan.dll</c> with the host that runs us.
/// </summary>
public static class CapstanExecutable
{
    /// <summary>The executable and leading arguments, ready for a TrainJob's <c>command</c>.</summary>
    public static IReadOnlyList<string> Command()
    {
        var assembly = typeof(CapstanExecutable).Assembly.Location;
        var process = Environment.ProcessPath;
        var apphost = Path.ChangeExtension(assembly, OperatingSystem.IsWindows() ? ".exe" : null);
        if (process is not null && string.Equals(Path.GetFullPath(process), Path.GetFullPath(apphost), StringComparison.Ordinal))
        {
            return [process];
        }

        // Under 'dotnet capstan.dll' or a test host: the dotnet muxer that runs this process, or the one on PATH.
        var dotnet = process is not null && Path.GetFileNameWithoutExtension(process) == "dotnet"
            ? process
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        return [dotnet, assembly];
    }
}
