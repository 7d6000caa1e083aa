using Capstan.Core.Observability;
using Capstan.Serving.Hosting;
using Capstan.Serving.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Capstan.Serving.Tests;

/// <summary>A real inference server on 127.0.0.1 with free ports: REST first, gRPC second.</summary>
public sealed class ServingHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ServingHost(WebApplication app, ModelRepository repository, Uri rest, Uri grpc)
    {
        _app = app;
        Repository = repository;
        Rest = new HttpClient { BaseAddress = rest };
        GrpcAddress = grpc;
    }

    public ModelRepository Repository { get; }

    public HttpClient Rest { get; }

    public Uri GrpcAddress { get; }

    public static async Task<ServingHost> StartAsync(Action<ModelRepository> load, TracingSettings? tracing = null)
    {
        var repository = ServingServer.CreateRepository();
        load(repository);
        var app = ServingServer.Build(new ServingOptions { Port = 0, GrpcPort = 0, Tracing = tracing }, repository);
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
        return new ServingHost(app, repository, new Uri(addresses[0]), new Uri(addresses[1]));
    }

    public async ValueTask DisposeAsync()
    {
        Rest.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        Repository.Dispose();
    }
}
