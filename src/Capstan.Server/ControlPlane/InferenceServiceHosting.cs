using System.Security.Cryptography;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Runtime;
using Capstan.Core.Storage;
using Capstan.Server.Hosting;
using Capstan.Server.Metrics;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Capstan.Server.ControlPlane;

/// <summary>
/// Wires the InferenceService reconciler into the server, over the runtime <see cref="ControlPlaneHosting"/> registers.
/// Servers are started as <c>dotnet capstan.dll serve ...</c> — the capstan program this process runs — with
/// <c>CAPSTAN_URL</c> pointing back at this server for the registry.
/// </summary>
public static class InferenceServiceHosting
{
    public const string TokenKeyFile = "serving.key";

    public static IServiceCollection AddInferenceServices(this IServiceCollection services, string runtimeRoot)
    {
        services.TryAddSingleton(provider =>
        {
            var server = provider.GetRequiredService<IServer>();
            var home = Path.GetDirectoryName(Path.GetFullPath(runtimeRoot))!;
            return new InferenceServiceReconcilerOptions
            {
                ServerCommand = CapstanProgram.Command(),
                TokenKey = ReadOrCreateKey(Path.Combine(runtimeRoot, TokenKeyFile)),
                ServerEnvironment = () =>
                {
                    var environment = new Dictionary<string, string>(StringComparer.Ordinal) { [CapstanHome.EnvironmentVariable] = home };
                    if (ControlPlaneHosting.LoopbackUrl(server) is { } url)
                    {
                        environment["CAPSTAN_URL"] = url.AbsoluteUri.TrimEnd('/');
                    }

                    return environment;
                },
            };
        });
        services.AddSingleton(provider => new InferenceServiceReconciler(
            provider.GetRequiredService<IResourceStore>(),
            provider.GetRequiredService<IWorkloadRuntime>(),
            provider.GetRequiredService<IMetadataStore>(),
            new InferenceServerClient(new HttpClient { Timeout = TimeSpan.FromSeconds(10) }),
            provider.GetRequiredService<TimeProvider>(),
            provider.GetRequiredService<InferenceServiceReconcilerOptions>()));
        services.AddHostedService(provider =>
        {
            var options = provider.GetRequiredService<InferenceServiceReconcilerOptions>();
            var logger = provider.GetRequiredService<ILogger<InferenceServiceController>>();
            if (options.ServerCommand.Count == 0)
            {
                Log.NoServingCommand(logger);
            }

            return new InferenceServiceController(
                provider.GetRequiredService<InferenceServiceReconciler>(),
                provider.GetRequiredService<IResourceStore>(),
                provider.GetRequiredService<IWorkloadRuntime>(),
                provider.GetRequiredService<TimeProvider>(),
                logger,
                provider.GetService<ControlPlaneOptions>(),
                provider.GetService<ControlPlaneMetrics>());
        });
        return services;
    }

    private static byte[] ReadOrCreateKey(string path)
    {
        if (File.Exists(path))
        {
            return File.ReadAllBytes(path);
        }

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var key = RandomNumberGenerator.GetBytes(32);
        var temporary = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var file = new FileStream(temporary, fileOptions))
        {
            file.Write(key);
        }

        try
        {
            File.Move(temporary, path, overwrite: false);
        }
        catch (IOException)
        {
            // Another process made it first: use theirs.
            File.Delete(temporary);
        }

        return File.ReadAllBytes(path);
    }
}
