using System.CommandLine;
using Capstan.Cli.Hosting;
using Capstan.Serving.Hosting;
using Capstan.Serving.Models;
using Capstan.Serving.Registry;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Spectre.Console;

namespace Capstan.Cli.Serving;

/// <summary><c>capstan serve MODEL</c>: an Open Inference Protocol v2 server (REST and gRPC) for one model, until Ctrl-C.</summary>
public static class ServeCommand
{
    public static Command Create(CliContext context)
    {
        var command = new Command("serve", "Serve an ONNX model over the Open Inference Protocol v2 (REST and gRPC) until Ctrl-C.");
        var model = new Argument<string>("MODEL") { Description = "A .onnx file, models:/NAME/VERSION or models:/NAME@ALIAS." };
        var host = new Option<string>("--host") { Description = "Address to listen on.", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port", "-p") { Description = "REST port (0: any free port).", DefaultValueFactory = _ => 8080 };
        var grpcPort = new Option<int>("--grpc-port") { Description = "gRPC port, HTTP/2 without TLS (0: any free port).", DefaultValueFactory = _ => 8081 };
        var name = new Option<string?>("--name") { Description = "Name to serve the model under (default: the registered name or file name)." };
        var maxBatch = new Option<int>("--max-batch-size") { Description = "Rows per batched run; 1 turns dynamic batching off.", DefaultValueFactory = _ => 1 };
        var maxLatency = new Option<int>("--max-latency-ms") { Description = "How long a forming batch may wait for more requests.", DefaultValueFactory = _ => 0 };
        command.Add(model);
        command.Add(host);
        command.Add(port);
        command.Add(grpcPort);
        command.Add(name);
        command.Add(maxBatch);
        command.Add(maxLatency);
        command.SetHandler(context, async (parse, ct) =>
        {
            var reference = parse.GetRequiredValue(model);
            ResolvedModel resolved;
            if (reference.StartsWith(ModelResolver.RegistryScheme, StringComparison.Ordinal))
            {
                await using var backend = await Backend.OpenAsync(context, ct);
                var cache = Path.Combine(Backend.ResolveHome(context).Root, "serving-cache");
                resolved = await new ModelResolver(backend.Metadata, backend.Artifacts, cache).ResolveAsync(reference, parse.GetValue(name), ct);
            }
            else
            {
                resolved = ModelResolver.ResolveFile(reference, parse.GetValue(name));
            }

            using var repository = ServingServer.CreateRepository();
            var options = new ModelOptions
            {
                MaxBatchSize = Math.Max(1, parse.GetValue(maxBatch)),
                MaxLatency = TimeSpan.FromMilliseconds(Math.Max(0, parse.GetValue(maxLatency))),
            };
            try
            {
                repository.Load(resolved.Name, resolved.Version, ModelSource.FromFile(resolved.OnnxPath), options);
            }
            catch (InvalidOperationException ex)
            {
                CommandAction.Fail(context, ex.Message);
                return ExitCodes.UserError;
            }

            WebApplication app;
            try
            {
                app = ServingServer.Build(new ServingOptions { Host = parse.GetRequiredValue(host), Port = parse.GetValue(port), GrpcPort = parse.GetValue(grpcPort) }, repository);
            }
            catch (InvalidOperationException ex)
            {
                CommandAction.Fail(context, ex.Message);
                return ExitCodes.Usage;
            }

            await using var disposeApp = app;
            try
            {
                await app.StartAsync(ct);
            }
            catch (IOException ex)
            {
                CommandAction.Fail(context, $"Cannot listen on {parse.GetValue(host)}:{parse.GetValue(port)}/{parse.GetValue(grpcPort)}: {ex.Message}");
                return ExitCodes.Unavailable;
            }

            foreach (var address in app.Urls)
            {
                context.Out.MarkupLineInterpolated($"Serving [bold]{resolved.Name}[/] version {resolved.Version} on [bold link]{address}[/]");
            }

            context.Error.MarkupLine("REST on the first address (/v2, /metrics), gRPC (h2c) on the second. Press Ctrl-C to stop.");
            try
            {
                await app.WaitForShutdownAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Ctrl-C: fall through to a clean stop.
            }

            await app.StopAsync(CancellationToken.None);
            return ExitCodes.Ok;
        });
        return command;
    }
}
