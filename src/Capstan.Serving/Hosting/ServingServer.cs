using System.Net;
using Capstan.Core.Observability;
using Capstan.Serving.Grpc;
using Capstan.Serving.Inference;
using Capstan.Serving.Metrics;
using Capstan.Serving.Models;
using Capstan.Serving.Rest;
using Capstan.Shared;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace Capstan.Serving.Hosting;

/// <summary>Where the inference server listens.</summary>
public sealed record ServingOptions
{
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>REST (HTTP/1.1) and /metrics; 0 picks a free port.</summary>
    public int Port { get; init; } = 8080;

    /// <summary>
    /// gRPC as HTTP/2 without TLS (prior knowledge, h2c). Kestrel cannot tell h2c from HTTP/1.1 on
    /// one plaintext endpoint, so gRPC gets its own; 0 picks a free port, -1 turns gRPC off.
    /// </summary>
    public int GrpcPort { get; init; } = 8081;

    /// <summary>The least severe log level written; a command embedding the server (the quickstart) uses Warning.</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>OTLP trace export; null (the default) records no spans and costs nothing per request.</summary>
    public TracingSettings? Tracing { get; init; }
}

/// <summary>
/// The inference server: OIP v2 REST and /metrics on one endpoint, OIP v2 gRPC on another,
/// over a <see cref="ModelRepository"/> the caller fills (and may keep changing while it runs).
/// </summary>
public static class ServingServer
{
    public static WebApplication Build(ServingOptions options, ModelRepository repository, Action<WebApplication>? mapExtra = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(repository);
        if (!IPAddress.TryParse(options.Host, out var address))
        {
            address = options.Host == "localhost" ? IPAddress.Loopback : throw new InvalidOperationException($"--host '{options.Host}' is not an IP address.");
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(address, options.Port, listen => listen.Protocols = HttpProtocols.Http1);
            if (options.GrpcPort >= 0)
            {
                kestrel.Listen(address, options.GrpcPort, listen => listen.Protocols = HttpProtocols.Http2);
            }
        });
        builder.Services.AddSingleton(repository);
        builder.Services.AddSingleton(repository.Metrics);
        builder.Services.AddSingleton<InferenceService>();
        builder.Services.AddSingleton<OipGrpcService>(); // one instance, not one activation per call
        builder.Services.AddGrpc();

        // ASP.NET Core logs every request at Information (4 lines each): that is most of a small request's cost.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

        // Hosting starts an Activity and a logging scope for every request whenever its logger is enabled at
        // any level, though it only logs request start and finish at Information: off, unless a tracer listens.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        builder.Logging.SetMinimumLevel(options.LogLevel);
        if (options.Tracing is { } tracing)
        {
            AddTracing(builder.Services, tracing, repository);
        }

        var app = builder.Build();
        app.MapOipRestApi();
        app.MapGrpcService<OipGrpcService>();
        app.MapMetrics("/metrics", repository.Metrics.Registry);
        mapExtra?.Invoke(app);
        return app;
    }

    /// <summary>
    /// Spans for every HTTP and gRPC request (W3C traceparent from the caller continues its trace) and the server's own
    /// inference and model-load spans, batched to an OTLP collector. Scrapes and health probes make no spans.
    /// </summary>
    // ASP.NET Core's activities are process-wide: keep this server's requests, not another app's in the same process.
    private static void AddTracing(IServiceCollection services, TracingSettings tracing, ModelRepository repository) =>
        CapstanTracing.Add(
            services,
            tracing,
            "capstan-serving",
            ServingActivity.SourceName,
            context => !IsProbe(context.Request.Path) && ReferenceEquals(context.RequestServices.GetService<ModelRepository>(), repository));

    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments("/metrics", StringComparison.Ordinal) || path.StartsWithSegments("/v2/health", StringComparison.Ordinal);

    /// <summary>A repository with its own metrics registry.</summary>
    public static ModelRepository CreateRepository() => new(new ServingMetrics());
}
