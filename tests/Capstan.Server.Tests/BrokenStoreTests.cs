using System.Net;
using System.Reflection;
using System.Text.Json;
using Capstan.Core.Artifacts;
using Capstan.Core.Storage;
using Capstan.Store.Artifacts;

namespace Capstan.Server.Tests;

/// <summary>A server whose metadata store fails every call, as a locked or corrupt database would.</summary>
public sealed class BrokenStoreTests : IAsyncLifetime
{
    private readonly string _artifacts = Path.Combine(Path.GetTempPath(), "capstan-broken-" + Guid.NewGuid().ToString("N"));
    private Microsoft.AspNetCore.Builder.WebApplication _app = null!;
    private HttpClient _http = null!;

    public async ValueTask InitializeAsync()
    {
        var store = DispatchProxy.Create<IMetadataStore, FailingStore>();
        _app = CapstanServer.Build(new ServerOptions { Port = 0 }, store, new FolderArtifactStore(_artifacts));
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(_app.Urls.Single()) };
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_artifacts, recursive: true);
    }

    [Fact]
    public async Task Readyz_StoreFailing_Returns503WhileHealthzStays200()
    {
        using var ready = await _http.GetAsync("/readyz");
        using var healthy = await _http.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
    }

    [Fact]
    public async Task MlflowEndpoint_StoreFailing_Returns500InternalErrorWithoutLeakingDetails()
    {
        using var response = await _http.GetAsync("/api/2.0/mlflow/runs/get?run_id=abc");
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("INTERNAL_ERROR", body.RootElement.GetProperty("error_code").GetString());
        Assert.DoesNotContain("disk I/O", body.RootElement.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NativeEndpoint_StoreFailing_Returns500ProblemDetails()
    {
        using var response = await _http.GetAsync("/api/v1/runs/abc");
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("INTERNAL_ERROR", body.RootElement.GetProperty("errorCode").GetString());
    }

    public class FailingStore : DispatchProxy
    {
        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args) =>
            throw new InvalidOperationException("disk I/O error (simulated)");
    }
}
