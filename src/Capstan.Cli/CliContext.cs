using Spectre.Console;

namespace Capstan.Cli;

/// <summary>
/// What a command needs from its surroundings: where results go (<see cref="Out"/>, stdout),
/// where people-facing text and progress go (<see cref="Error"/>, stderr), and the environment
/// it reads. Tests build one over string writers and a dictionary.
/// </summary>
public sealed class CliContext(IAnsiConsole output, IAnsiConsole error, Func<string, string?> environment)
{
    public IAnsiConsole Out { get; } = output;

    public IAnsiConsole Error { get; } = error;

    /// <summary>The raw stdout writer, for machine-readable output (JSON, YAML) that must not be wrapped.</summary>
    public TextWriter RawOut => Out.Profile.Out.Writer;

    public string? GetEnvironmentVariable(string name) => environment(name);

    /// <summary>The context of the real process: colours and live progress only on a terminal.</summary>
    public static CliContext ForProcess() => new(
        CreateConsole(Console.Out, Console.IsOutputRedirected),
        CreateConsole(Console.Error, Console.IsErrorRedirected),
        Environment.GetEnvironmentVariable);

    /// <summary>A plain, uncoloured, non-interactive console over a writer (redirected output, tests).</summary>
    public static IAnsiConsole CreatePlainConsole(TextWriter writer, int width = 200)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = width;
        return console;
    }

    private static IAnsiConsole CreateConsole(TextWriter writer, bool redirected) =>
        redirected
            ? CreatePlainConsole(writer)
            : AnsiConsole.Create(new AnsiConsoleSettings
            {
                Ansi = AnsiSupport.Detect,
                ColorSystem = ColorSystemSupport.Detect,
                Interactive = InteractionSupport.Detect,
                Out = new AnsiConsoleOutput(writer),
            });
}
