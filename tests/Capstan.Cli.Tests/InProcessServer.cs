using Capstan.Core;
using Capstan.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Capstan.Cli.Tests;

/// <summary>A real Capstan server on a free loopback port over a temporary home.</summary>
internal sealed class InProcessServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TempHome _home;

    private InProcessServer(WebApplication app, TempHome home, Uri url)
    {
        _app = app;
        _home = home;
        Url = url;
    }

    public Uri Url { get; }

    public string HomeRoot => _home.Root;

    public static async Task<InProcessServer> StartAsync(CancellationToken cancellationToken)
    {
        var home = new TempHome();
        var app = await CapstanServer.BuildAsync(
            new ServerOptions { Host = "127.0.0.1", Port = 0, Home = home.Root, RunControlPlane = false }, cancellationToken);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new InProcessServer(app, home, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
        _home.Dispose();
    }
}
