using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.ControlPlane;
using Capstan.Core.Runtime;
using Capstan.Core.Storage;
using Capstan.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.Extensions.DependencyInjection;

namespace Capstan.Cli.Hosting;

/// <summary>
/// The server's control plane, run inside a CLI command (<c>capstan run</c>, <c>capstan quickstart</c>) over a Capstan
/// home: the API on a free loopback port (so jobs log through the MLflow API), the reconcilers and the local runtime.
/// Disposing it stops the server.
/// </summary>
public sealed class EmbeddedControlPlane : IAsyncDisposable
{
    private readonly WebApplication _app;

    private EmbeddedControlPlane(WebApplication app)
    {
        _app = app;
    }

    public IServiceProvider Services => _app.Services;

    public IResourceStore Resources => Services.GetRequiredService<IResourceStore>();

    public IMetadataStore Metadata => Services.GetRequiredService<IMetadataStore>();

    public IArtifactStore Artifacts => Services.GetRequiredService<IArtifactStore>();

    public IWorkloadRuntime Runtime => Services.GetRequiredService<IWorkloadRuntime>();

    /// <summary>The loopback URL of the embedded API.</summary>
    public Uri? Url => Capstan.Server.ControlPlane.ControlPlaneHosting.LoopbackUrl(Services.GetRequiredService<IServer>());

    /// <exception cref="InvalidOperationException">The home cannot be opened, or another control plane runs it.</exception>
    public static async Task<EmbeddedControlPlane> StartAsync(CapstanHome home, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(home);
        var app = await CapstanServer.BuildAsync(
            new ServerOptions { Host = "127.0.0.1", Port = 0, Home = home.Root, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning },
            cancellationToken);
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return new EmbeddedControlPlane(app);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _app.StopAsync(CancellationToken.None);
        }
        finally
        {
            await _app.DisposeAsync();
        }
    }
}
