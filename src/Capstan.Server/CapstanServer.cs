using System.Net;
using System.Text.Json.Serialization;
using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.ControlPlane;
using Capstan.Core.Observability;
using Capstan.Core.Storage;
using Capstan.Server.Api;
using Capstan.Server.ControlPlane;
using Capstan.Server.Dashboard;
using Capstan.Server.Health;
using Capstan.Server.Hosting;
using Capstan.Server.Metrics;
using Capstan.Server.Mlflow;
using Capstan.Shared;
using Capstan.Store.Artifacts;
using Capstan.Store.Sqlite;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace Capstan.Server;

/// <summary>
/// The Capstan server: the MLflow-compatible API, the native API, the artifact proxy and health
/// endpoints over the embedded stores. <c>var app = await CapstanServer.BuildAsync(options); await app.RunAsync();</c>
/// </summary>
public static class CapstanServer
{
    /// <summary>
    /// Opens the embedded stores under the Capstan home (SQLite metadata, content-addressed artifact
    /// folder) and builds the server around them. The server owns the stores and disposes them with itself.
    /// </summary>
    /// <exception cref="InvalidOperationException">The options are invalid or a store cannot be opened.</exception>
    public static async Task<WebApplication> BuildAsync(ServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var endpoint = ParseEndpoint(options);
        CapstanHome home;
        try
        {
            home = (options.Home is null ? CapstanHome.FromEnvironment() : new CapstanHome(Path.GetFullPath(options.Home))).EnsureCreated();
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new InvalidOperationException($"Cannot create the Capstan home folder '{options.Home}': {exception.Message}", exception);
        }

        SqliteMetadataStore metadata;
        try
        {
            metadata = await SqliteMetadataStore.OpenAsync(home.DatabasePath, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            throw new InvalidOperationException($"Cannot open the metadata store '{home.DatabasePath}': {exception.Message}", exception);
        }

        try
        {
            var artifacts = new FolderArtifactStore(home.ArtifactsPath);
            return Build(endpoint, home.Root, metadata, artifacts, ownsStores: true, options.RunControlPlane ? Path.Combine(home.Root, ControlPlaneHosting.RuntimeFolder) : null, options.LogLevel, options.Tracing);
        }
        catch
        {
            await metadata.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Builds the server over stores the caller opened and keeps owning (another database, a test double).</summary>
    public static WebApplication Build(ServerOptions options, IMetadataStore metadata, IArtifactStore artifacts)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(artifacts);
        return Build(
            ParseEndpoint(options),
            options.Home ?? "(caller's stores)",
            metadata,
            artifacts,
            ownsStores: false,
            options.Home is null || !options.RunControlPlane ? null : Path.Combine(Path.GetFullPath(options.Home), ControlPlaneHosting.RuntimeFolder),
            options.LogLevel,
            options.Tracing);
    }

    private static WebApplication Build(IPEndPoint endpoint, string home, IMetadataStore metadata, IArtifactStore artifacts, bool ownsStores, string? runtimeRoot, LogLevel logLevel, TracingSettings? tracing)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(CapstanServer).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(endpoint);
        });

        // Per-request information logs cost more than a log-metric call, so the framework logs warnings
        // by default. As the lowest-precedence source, appsettings or Logging__LogLevel__* can still raise it.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData =
            [
                new("Logging:LogLevel:Default", logLevel.ToString()),
                new("Logging:LogLevel:Microsoft.AspNetCore", logLevel > LogLevel.Warning ? logLevel.ToString() : "Warning"),
            ],
        });

        if (ownsStores)
        {
            // Factory registrations are disposed with the application.
            builder.Services.AddSingleton(_ => metadata);
            builder.Services.AddSingleton(_ => artifacts);
        }
        else
        {
            builder.Services.AddSingleton(metadata);
            builder.Services.AddSingleton(artifacts);
        }

        // The SQLite store keeps the control plane's objects in the same file, behind the same single writer.
        if (metadata is IResourceStore resources)
        {
            builder.Services.AddSingleton(resources);

            // Jobs run only where there is a home to keep their working folders in, and one control plane per home.
            if (runtimeRoot is not null)
            {
                var controlPlaneLock = ControlPlaneLock.Acquire(runtimeRoot);
                builder.Services.AddSingleton(_ => controlPlaneLock);
                builder.Services.AddControlPlane(runtimeRoot);
                builder.Services.AddInferenceServices(runtimeRoot);
            }
        }

        builder.Services.AddCapstanApis();
        builder.Services.AddSingleton(services => new ControlPlaneMetrics(services.GetService<IResourceStore>()));
        if (tracing is not null)
        {
            // ASP.NET Core's activities are process-wide: keep this server's requests (its store), not probes or scrapes.
            CapstanTracing.Add(
                builder.Services,
                tracing,
                "capstan-server",
                ControlPlaneActivity.SourceName,
                context => !IsProbe(context.Request.Path) && ReferenceEquals(context.RequestServices.GetService<IMetadataStore>(), metadata));
        }

        var app = builder.Build();

        // Resolved once so the container owns it: the lock is released when the server is disposed.
        _ = app.Services.GetService<ControlPlaneLock>();
        app.UseMiddleware<ApiErrorMiddleware>();
        app.UseRouting();
        app.UseMiddleware<EncodedSlashMiddleware>();

        // Requests by endpoint (the route template, so one series per API, not per run id), code and method.
        var metrics = app.Services.GetRequiredService<ControlPlaneMetrics>();
        app.UseHttpMetrics(http => http.SetMetricFactory(metrics.Factory));
        app.MapMetrics("/metrics", metrics.Registry);
        app.MapHealthApi();
        app.MapMlflowApi();
        app.MapMlflowArtifactsApi();
        app.MapTrackingApi();
        app.MapRegistryApi();
        app.MapResourceApi();
        app.MapResourceLogApi();
        app.MapOpenApi();
        app.MapDashboard();

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(CapstanServer));
        app.Lifetime.ApplicationStarted.Register(() => Log.Listening(logger, string.Join(", ", app.Urls), home));
        return app;
    }

    /// <summary>JSON conventions, problem details and the OpenAPI document for the HTTP APIs.</summary>
    public static IServiceCollection AddCapstanApis(this IServiceCollection services)
    {
        services.ConfigureHttpJsonOptions(json =>
        {
            // The same conventions as CapstanJson.Options, which the .NET client uses.
            json.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
            json.SerializerOptions.Converters.Add(new JsonStringEnumConverter());
        });

        // Bad bodies reach ApiErrorMiddleware as exceptions, so they get the API's error format.
        services.Configure<RouteHandlerOptions>(routing => routing.ThrowOnBadRequest = true);
        services.AddProblemDetails();
        services.AddOpenApi();
        return services;
    }

    private static bool IsProbe(PathString path) =>
        path.StartsWithSegments("/metrics", StringComparison.Ordinal)
        || path.StartsWithSegments("/healthz", StringComparison.Ordinal)
        || path.StartsWithSegments("/readyz", StringComparison.Ordinal);

    private static IPEndPoint ParseEndpoint(ServerOptions options)
    {
        if (options.Port is < 0 or > 65535)
        {
            throw new InvalidOperationException($"Port {options.Port} is out of range: use 0 to 65535 (0 picks a free port).");
        }

        var host = options.Host?.Trim();
        IPAddress address = host switch
        {
            null or "" => IPAddress.Loopback,
            "localhost" => IPAddress.Loopback,
            "*" or "+" => IPAddress.Any,
            _ when IPAddress.TryParse(host.Trim('[', ']'), out var parsed) => parsed,
            _ => throw new InvalidOperationException($"Host '{host}' is not an IP address: use an address such as 127.0.0.1 or 0.0.0.0, 'localhost', or '*'."),
        };
        return new IPEndPoint(address, options.Port);
    }
}
