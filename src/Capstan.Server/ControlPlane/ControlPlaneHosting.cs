using Capstan.Core.Artifacts;
using Capstan.Core.ControlPlane;
using Capstan.Core.Runtime;
using Capstan.Core.Storage;
using Capstan.Runtime.Local;
using Capstan.Server.Metrics;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Capstan.Server.ControlPlane;

/// <summary>Wires the control plane into the server: a local runtime under <c>HOME/runtime</c>, the reconciler and its loop.</summary>
public static class ControlPlaneHosting
{
    public const string RuntimeFolder = "runtime";

    public static IServiceCollection AddControlPlane(this IServiceCollection services, string runtimeRoot, ControlPlaneOptions? options = null)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<IWorkloadRuntime>(_ => new LocalWorkloadRuntime(new LocalRuntimeOptions { RootPath = runtimeRoot }));
        services.AddSingleton(provider =>
        {
            var server = provider.GetRequiredService<IServer>();
            return new TrainJobReconciler(
                provider.GetRequiredService<IResourceStore>(),
                provider.GetRequiredService<IWorkloadRuntime>(),
                provider.GetRequiredService<IMetadataStore>(),
                provider.GetRequiredService<IArtifactStore>(),
                provider.GetRequiredService<TimeProvider>(),
                new TrainJobReconcilerOptions { ServerUrl = () => LoopbackUrl(server) });
        });
        services.AddSingleton(provider => new ExperimentReconciler(
            provider.GetRequiredService<IResourceStore>(),
            provider.GetRequiredService<IWorkloadRuntime>(),
            provider.GetRequiredService<IMetadataStore>(),
            provider.GetRequiredService<TimeProvider>()));
        services.AddSingleton(options ?? new ControlPlaneOptions());
        services.AddHostedService(provider => new ControlPlaneService(
            provider.GetRequiredService<TrainJobReconciler>(),
            provider.GetRequiredService<IResourceStore>(),
            provider.GetRequiredService<IWorkloadRuntime>(),
            provider.GetRequiredService<TimeProvider>(),
            provider.GetRequiredService<ILogger<ControlPlaneService>>(),
            provider.GetRequiredService<ControlPlaneOptions>(),
            provider.GetRequiredService<ExperimentReconciler>(),
            provider.GetService<ControlPlaneMetrics>()));
        return services;
    }

    /// <summary>The first address the server listens on, with a wildcard host replaced by loopback so a child on this machine can reach it.</summary>
    public static Uri? LoopbackUrl(IServer server)
    {
        ArgumentNullException.ThrowIfNull(server);
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        if (address is null || !Uri.TryCreate(address.Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal), UriKind.Absolute, out var url))
        {
            return null;
        }

        return url.Host is "0.0.0.0" or "[::]" or "::" ? new UriBuilder(url) { Host = "127.0.0.1" }.Uri : url;
    }
}
