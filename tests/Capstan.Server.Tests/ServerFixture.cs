using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;

namespace Capstan.Server.Tests;

/// <summary>A real Capstan server on 127.0.0.1 with a fresh home folder, talked to over HTTP.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    private WebApplication? _app;

    public string Home { get; } = Path.Combine(Path.GetTempPath(), "capstan-server-tests-" + Guid.NewGuid().ToString("N"));

    public HttpClient Http { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        _app = await CapstanServer.BuildAsync(new ServerOptions { Host = "127.0.0.1", Port = 0, Home = Home, RunControlPlane = false });
        await _app.StartAsync();
        var address = _app.Urls.Single();
        Assert.StartsWith("http://127.0.0.1:", address, StringComparison.Ordinal);
        Http = new HttpClient { BaseAddress = new Uri(address) };
    }

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        try
        {
            Directory.Delete(Home, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder does not change any result.
        }
    }

    public async Task<Reply> SendAsync(HttpMethod method, string path, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return new Reply(response.StatusCode, body, response.Content.Headers.ContentType?.MediaType, text);
    }

    public Task<Reply> PostAsync(string path, string json) => SendAsync(HttpMethod.Post, path, json);

    public Task<Reply> GetAsync(string path) => SendAsync(HttpMethod.Get, path);

    /// <summary>POSTs to an MLflow endpoint and insists on success.</summary>
    public async Task<JsonElement> MlflowAsync(string endpoint, string json, HttpMethod? method = null)
    {
        var reply = await SendAsync(method ?? HttpMethod.Post, "/api/2.0/mlflow/" + endpoint, json);
        Assert.True(reply.Status == HttpStatusCode.OK, $"{endpoint} answered {(int)reply.Status}: {reply.Text}");
        return reply.Body;
    }

    public async Task<string> CreateExperimentAsync(string name)
    {
        var body = await MlflowAsync("experiments/create", $$"""{"name":"{{name}}"}""");
        return body.GetProperty("experiment_id").GetString()!;
    }

    public async Task<string> CreateRunAsync(string experimentId, string runName = "run")
    {
        var body = await MlflowAsync("runs/create", $$"""{"experiment_id":"{{experimentId}}","run_name":"{{runName}}","start_time":1700000000000}""");
        return body.GetProperty("run").GetProperty("info").GetProperty("run_id").GetString()!;
    }
}

public sealed record Reply(HttpStatusCode Status, JsonElement Body, string? ContentType, string Text)
{
    public string? ErrorCode => Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty("error_code", out var code) ? code.GetString() : null;

    public string? Message => Body.ValueKind == JsonValueKind.Object && Body.TryGetProperty("message", out var message) ? message.GetString() : null;
}
