namespace Capstan.Server.Hosting;

/// <summary>
/// How to start the capstan program this process runs as a child process: a TrainJob of <c>capstan train</c>, a served
/// model (<c>capstan serve</c>). The apphost when it was started as one, else <c>dotnet capstan.dll</c> with the host
/// that runs us (the muxer, or <c>DOTNET_HOST_PATH</c> under a test host).
/// </summary>
public static class CapstanProgram
{
    /// <summary>The capstan program's assembly name.</summary>
    public const string AssemblyName = "capstan";

    /// <summary>The executable and its leading arguments; empty when the capstan program is not loaded in this process.</summary>
    public static IReadOnlyList<string> Command()
    {
        var program = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => a.GetName().Name == AssemblyName);
        if (program is null)
        {
            return [];
        }

        var location = program.Location;
        var process = Environment.ProcessPath;
        if (location.Length == 0)
        {
            // Published as a single file: the executable is the program.
            return process is not null ? [process] : [];
        }

        var apphost = Path.ChangeExtension(location, OperatingSystem.IsWindows() ? ".exe" : null);
        if (process is not null && string.Equals(Path.GetFullPath(process), Path.GetFullPath(apphost), StringComparison.Ordinal))
        {
            return [process];
        }

        var dotnet = process is not null && Path.GetFileNameWithoutExtension(process) == "dotnet"
            ? process
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        return [dotnet, location];
    }
}
