using System.CommandLine;
using Capstan.Cli.Hosting;
using Capstan.Core;
using Spectre.Console;

namespace Capstan.Cli;

/// <summary>
/// Runs a command body and turns what can go wrong into a one-line message on stderr and a
/// named exit code: no stack traces for errors a user can act on.
/// </summary>
public static class CommandAction
{
    public static void SetHandler(this Command command, CliContext context, Func<ParseResult, CancellationToken, Task<int>> body)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.SetAction((parseResult, cancellationToken) => RunAsync(context, () => body(parseResult, cancellationToken), cancellationToken));
    }

    /// <summary>As <see cref="SetHandler"/>, with the backend opened (and disposed) around the body.</summary>
    public static void SetBackendHandler(this Command command, CliContext context, Func<ParseResult, Backend, CancellationToken, Task<int>> body)
    {
        command.SetHandler(context, async (parseResult, cancellationToken) =>
        {
            await using var backend = await Cluster.ClusterOptions.OpenBackendAsync(context, parseResult, cancellationToken);
            return await body(parseResult, backend, cancellationToken);
        });
    }

    public static async Task<int> RunAsync(CliContext context, Func<Task<int>> body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            return await body();
        }
        catch (CapstanException ex)
        {
            Fail(context, ex.Message);
            return ex.Code == ErrorCode.Internal ? ExitCodes.Internal : ExitCodes.UserError;
        }
        catch (HttpRequestException ex)
        {
            var url = context.GetEnvironmentVariable(Backend.UrlVariable);
            Fail(context, $"Cannot reach the Capstan server at {url}: {ex.Message}");
            return ExitCodes.Unavailable;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Fail(context, "Canceled.");
            return ExitCodes.Canceled;
        }
    }

    public static void Fail(CliContext context, string message)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Error.MarkupLineInterpolated($"[red]error:[/] {message}");
    }
}
