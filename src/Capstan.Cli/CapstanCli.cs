using System.CommandLine;
using Capstan.Cli.Cluster;
using Capstan.Cli.ControlPlane;
using Capstan.Cli.Quickstart;
using Capstan.Cli.Registry;
using Capstan.Cli.Server;
using Capstan.Cli.Serving;
using Capstan.Cli.Tracking;
using Capstan.Cli.Training;

namespace Capstan.Cli;

/// <summary>The <c>capstan</c> command tree.</summary>
public static class CapstanCli
{
    public static RootCommand Create(CliContext context)
    {
        var root = new RootCommand("Capstan: experiment tracking, model registry and serving, laptop to Kubernetes.")
        {
            ServerCommand.Create(context),
            ExperimentsCommand.Create(context),
            RunsCommand.Create(context),
            ModelsCommand.Create(context),
            QuickstartCommand.Create(context),
            ApplyCommand.Create(context),
            GetCommand.Create(context),
            DescribeCommand.Create(context),
            DeleteCommand.Create(context),
            TrainCommand.Create(context),
            ServeCommand.Create(context),
            LogsCommand.Create(context),
            RunCommand.Create(context),
            Kubernetes.RenderCommand.Create(context),
            OperatorCommand.Create(context),
        };
        return root;
    }

    public static async Task<int> RunAsync(string[] args, CliContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var parseResult = Create(context).Parse(args);
        var invocation = new InvocationConfiguration
        {
            Output = context.Out.Profile.Out.Writer,
            Error = context.Error.Profile.Out.Writer,
        };
        var exitCode = await parseResult.InvokeAsync(invocation, cancellationToken);
        return parseResult.Errors.Count > 0 && exitCode != ExitCodes.Ok ? ExitCodes.Usage : exitCode;
    }
}
