using Capstan.Cli;

namespace Capstan.Cli.Tests;

/// <summary>Runs <c>capstan</c> in-process with captured stdout/stderr and its own environment.</summary>
internal static class CliHarness
{
    public static async Task<CliResult> RunAsync(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var context = new CliContext(
            CliContext.CreatePlainConsole(stdout, 250),
            CliContext.CreatePlainConsole(stderr, 250),
            name => environment.TryGetValue(name, out var value) ? value : null);
        var exitCode = await CapstanCli.RunAsync(args, context, TestContext.Current.CancellationToken);
        return new CliResult(exitCode, stdout.ToString(), stderr.ToString());
    }
}

internal sealed record CliResult(int ExitCode, string Out, string Error);

/// <summary>A temporary folder deleted with the test.</summary>
internal sealed class TempHome : IDisposable
{
    public TempHome() => Root = Directory.CreateTempSubdirectory("capstan-test-").FullName;

    public string Root { get; }

    public Dictionary<string, string?> Environment => new() { ["CAPSTAN_HOME"] = Root };

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A child process may still hold a file for a moment; the OS temp cleaner gets it.
        }
    }
}
