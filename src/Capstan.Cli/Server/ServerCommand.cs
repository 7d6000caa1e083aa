using System.CommandLine;
using Capstan.Core;
using Capstan.Core.Observability;
using Capstan.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Spectre.Console;

namespace Capstan.Cli.Server;

/// <summary><c>capstan server</c>: the API (native and MLflow) over the embedded stores, until Ctrl-C.</summary>
public static class ServerCommand
{
    public static Command Create(CliContext context)
    {
        var command = new Command("server", "Run the Capstan server (REST API, MLflow-compatible API) until Ctrl-C.");
        var host = new Option<string>("--host") { Description = "Address to listen on.", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port", "-p") { Description = "Port to listen on (0: any free port).", DefaultValueFactory = _ => 5000 };
        var homeOption = new Option<string?>("--home") { Description = "Capstan home (default: $CAPSTAN_HOME, else ~/.capstan)." };
        command.Add(host);
        command.Add(port);
        var noControlPlane = new Option<bool>("--no-control-plane")
        {
            Description = "Serve the API only: no reconcilers and no local runtime (on Kubernetes, where the operator runs the workloads).",
        };
        command.Add(homeOption);
        command.Add(noControlPlane);
        command.SetHandler(context, async (parse, ct) =>
        {
            var home = parse.GetValue(homeOption) is { Length: > 0 } given
                ? new CapstanHome(Path.GetFullPath(given))
                : Hosting.Backend.ResolveHome(context);
            TracingSettings? tracing;
            try
            {
                tracing = TracingSettings.FromEnvironment(context.GetEnvironmentVariable);
            }
            catch (InvalidOperationException ex)
            {
                CommandAction.Fail(context, ex.Message);
                return ExitCodes.Usage;
            }

            var options = new ServerOptions
            {
                Host = parse.GetRequiredValue(host),
                Port = parse.GetValue(port),
                Home = home.EnsureCreated().Root,
                RunControlPlane = !parse.GetValue(noControlPlane),
                Tracing = tracing,
            };
            WebApplication app;
            try
            {
                app = await CapstanServer.BuildAsync(options, ct);
            }
            catch (InvalidOperationException ex)
            {
                CommandAction.Fail(context, ex.Message);
                return ExitCodes.Unavailable;
            }

            await using var disposeApp = app;
            try
            {
                await app.StartAsync(ct);
            }
            catch (IOException ex)
            {
                // Typically the port is taken: say so in one line rather than a stack trace.
                CommandAction.Fail(context, $"Cannot listen on {options.Host}:{options.Port}: {ex.Message}");
                return ExitCodes.Unavailable;
            }

            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            foreach (var address in addresses)
            {
                context.Out.MarkupLineInterpolated($"Capstan is listening on [bold link]{address}[/]");
            }

            context.Error.MarkupLineInterpolated($"Home: {home.Root}. Press Ctrl-C to stop.");
            try
            {
                await app.WaitForShutdownAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Ctrl-C: fall through to a clean stop.
            }

            await app.StopAsync(CancellationToken.None);
            context.Error.MarkupLine("Stopped.");
            return ExitCodes.Ok;
        });
        return command;
    }
}
