using System.CommandLine;
using Capstan.Cli.Hosting;
using Capstan.Core.Observability;
using Capstan.Serving.Hosting;
using Capstan.Serving.Models;
using Capstan.Serving.Registry;
using Capstan.Serving.Rollout;
using Capstan.Core.Registry;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Trace;
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
        var canary = new Option<string?>("--canary") { Description = "A second version to serve under the same name (a file, models:/NAME/VERSION or models:/NAME@ALIAS)." };
        var canaryPercent = new Option<int>("--canary-percent") { Description = "Share of the requests without a version that go to --canary (0-100).", DefaultValueFactory = _ => 10 };
        var timeout = new Option<int>("--timeout") { Description = "Seconds a request may wait for its result before it is answered 503.", DefaultValueFactory = _ => 30 };
        var threads = new Option<int>("--intra-op-threads") { Description = "ONNX Runtime threads per run (0: ONNX Runtime's choice, one per core). 1 suits small models under concurrent load.", DefaultValueFactory = _ => 0 };
        command.Add(canary);
        command.Add(canaryPercent);
        command.Add(timeout);
        command.Add(threads);
        command.SetHandler(context, async (parse, ct) =>
        {
            var reference = parse.GetRequiredValue(model);
            var percent = parse.GetValue(canaryPercent);
            if (percent is < 0 or > 100)
            {
                CommandAction.Fail(context, $"--canary-percent must be between 0 and 100, got {percent}.");
                return ExitCodes.Usage;
            }

            var intraOpThreads = parse.GetValue(threads);
            if (intraOpThreads < 0)
            {
                CommandAction.Fail(context, $"--intra-op-threads must be 0 (ONNX Runtime's choice) or more, got {intraOpThreads}.");
                return ExitCodes.Usage;
            }

            await using var registry = new RegistryConnection(context);
            using var repository = ServingServer.CreateRepository();
            using var rollout = new ModelRollout(repository, registry.ResolveAsync);
            var options = new ModelOptions
            {
                MaxBatchSize = Math.Max(1, parse.GetValue(maxBatch)),
                MaxLatency = TimeSpan.FromMilliseconds(Math.Max(0, parse.GetValue(maxLatency))),
                RequestTimeout = TimeSpan.FromSeconds(Math.Max(1, parse.GetValue(timeout))),
                IntraOpThreads = intraOpThreads,
            };
            var servedName = parse.GetValue(name) ?? RegistryConnection.DefaultName(reference);
            var token = context.GetEnvironmentVariable(RepositoryApi.TokenVariable);
            WebApplication app;
            try
            {
                app = ServingServer.Build(
                    new ServingOptions
                    {
                        Host = parse.GetRequiredValue(host),
                        Port = parse.GetValue(port),
                        GrpcPort = parse.GetValue(grpcPort),
                        Tracing = TracingSettings.FromEnvironment(context.GetEnvironmentVariable),
                    },
                    repository,
                    web => web.MapRepositoryApi(rollout, options, token));
            }
            catch (InvalidOperationException ex)
            {
                CommandAction.Fail(context, ex.Message);
                return ExitCodes.Usage;
            }

            await using var disposeApp = app;

            // The tracer exists before the first load, so the start-up loads get their spans too; the server listens only
            // once the models are loaded, so it is ready as soon as it answers.
            _ = app.Services.GetService<TracerProvider>();
            IReadOnlyList<ServedVersion> served;
            try
            {
                served = await rollout.ApplyAsync(new ServingPlan { ModelName = servedName, Model = reference, Canary = parse.GetValue(canary), CanaryTrafficPercent = percent, Options = options }, ct);
            }
            catch (InvalidOperationException ex)
            {
                CommandAction.Fail(context, ex.Message);
                return ExitCodes.UserError;
            }

            try
            {
                await app.StartAsync(ct);
            }
            catch (IOException ex)
            {
                CommandAction.Fail(context, $"Cannot listen on {parse.GetValue(host)}:{parse.GetValue(port)}/{parse.GetValue(grpcPort)}: {ex.Message}");
                return ExitCodes.Unavailable;
            }

            var provider = ExecutionProviderChoice.Describe(repository.ExecutionProviderOf(servedName))
                + (intraOpThreads > 0 ? $", {intraOpThreads} intra-op thread{(intraOpThreads == 1 ? "" : "s")}" : "");
            var versions = string.Join(", ", served.Select(v => served.Count == 1 ? $"version {v.Version}" : $"version {v.Version} ({v.Percent}% {v.Tag})"));
            foreach (var address in app.Urls)
            {
                context.Out.MarkupLineInterpolated($"Serving [bold]{servedName}[/] {versions} on [bold link]{address}[/] ({provider})");
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

    /// <summary>The registry, opened on the first <c>models:/</c> reference and kept for reloads.</summary>
    private sealed class RegistryConnection(CliContext context) : IAsyncDisposable
    {
        private Backend? _backend;
        private ModelResolver? _resolver;

        public async Task<ResolvedModel> ResolveAsync(string reference, string servedName, CancellationToken cancellationToken)
        {
            if (!reference.StartsWith(ModelResolver.RegistryScheme, StringComparison.Ordinal))
            {
                return ModelResolver.ResolveFile(reference, servedName);
            }

            if (_resolver is null)
            {
                _backend = await Backend.OpenAsync(context, cancellationToken);
                _resolver = new ModelResolver(_backend.Metadata, _backend.Artifacts, Path.Combine(Backend.ResolveHome(context).Root, "serving-cache"));
            }

            return await _resolver.ResolveAsync(reference, servedName, cancellationToken);
        }

        /// <summary>The registered model's name, or the file's name without .onnx.</summary>
        public static string DefaultName(string reference) =>
            ModelReference.Parse(reference).Name ?? Path.GetFileNameWithoutExtension(reference);

        public ValueTask DisposeAsync() => _backend?.DisposeAsync() ?? ValueTask.CompletedTask;
    }
}
