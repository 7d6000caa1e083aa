using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Capstan.Serving.Hosting;
using Capstan.Serving.Models;
using Capstan.Serving.Registry;
using Capstan.Serving.Rollout;
using Capstan.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Capstan.Serving.Tests;

/// <summary>Canary traffic splits and rollouts against a real server on loopback.</summary>
public sealed partial class CanaryTests : IAsyncLifetime
{
    private const string Token = "test-token";
    private static readonly float[] s_row = [0.5f, -1f, 2f, 0.25f];

    private readonly string _folder = Directory.CreateTempSubdirectory("capstan-canary-").FullName;
    private ModelRepository _repository = null!;
    private ModelRollout _rollout = null!;
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        for (var v = 1; v <= 3; v++)
        {
            await File.WriteAllBytesAsync(Path.Combine(_folder, $"{v}.onnx"), OnnxModelBuilder.Mlp(4, 8, 3, v), Ct);
        }

        _repository = ServingServer.CreateRepository();

        // models:/iris/N → the file of version N, as the registry resolver would fetch it.
        _rollout = new ModelRollout(_repository, (reference, name, _) =>
            Task.FromResult(new ResolvedModel(name, reference[(reference.LastIndexOf('/') + 1)..], Path.Combine(_folder, reference[(reference.LastIndexOf('/') + 1)..] + ".onnx"))));
        await _rollout.ApplyAsync(new ServingPlan { ModelName = "iris", Model = "models:/iris/1" }, Ct);
        _app = ServingServer.Build(new ServingOptions { Port = 0, GrpcPort = -1 }, _repository, web => web.MapRepositoryApi(_rollout, new ModelOptions(), Token));
        await _app.StartAsync(Ct);
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _http = new HttpClient { BaseAddress = new Uri(address) };
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _rollout.Dispose();
        _repository.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    private static float[] Expected(int version)
    {
        using var session = new InferenceSession(OnnxModelBuilder.Mlp(4, 8, 3, version));
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(s_row, [1, 4]))]);
        return [.. results.First().AsEnumerable<float>()];
    }

    private async Task<(string Version, float[] Data)> InferAsync(string path = "/v2/models/iris/infer")
    {
        using var response = await _http.PostAsync(path, new StringContent("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[0.5,-1,2,0.25]}]}""", Encoding.UTF8, "application/json"), Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var root = JsonDocument.Parse(body).RootElement;
        return (root.GetProperty("model_version").GetString()!, [.. root.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(e => e.GetSingle())]);
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> LoadAsync(string json, string? token = Token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/repository/models/iris/load") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await _http.SendAsync(request, Ct);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement.Clone());
    }

    private async Task<double> SuccessCountAsync(string version)
    {
        var text = await _http.GetStringAsync("/metrics", Ct);
        var match = Regex.Match(text, $$"""capstan_inference_requests_total\{model="iris",version="{{version}}",outcome="success"\} (\S+)""");
        return match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    [Fact]
    public async Task Canary_ThirtyPercent_SplitsRequestsByThatShareAndTheMetricsShowIt()
    {
        var (status, body) = await LoadAsync("""{"parameters":{"model":"models:/iris/1","canary_model":"models:/iris/2","canary_traffic_percent":30}}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["default:1:70", "canary:2:30"], body.GetProperty("traffic").EnumerateArray().Select(t => $"{t.GetProperty("tag").GetString()}:{t.GetProperty("version").GetString()}:{t.GetProperty("percent").GetInt32()}"));

        const int Requests = 2000;
        var counts = new int[3];
        var expected = new[] { Expected(1), Expected(2) };
        var mismatches = 0;
        await Parallel.ForAsync(0, Requests, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = Ct }, async (_, _) =>
        {
            var (version, data) = await InferAsync();
            var v = int.Parse(version, CultureInfo.InvariantCulture);
            Interlocked.Increment(ref counts[v]);
            if (!data.Zip(expected[v - 1]).All(p => Math.Abs(p.First - p.Second) < 1e-5))
            {
                Interlocked.Increment(ref mismatches);
            }
        });

        // Binomial(2000, 0.3): the standard deviation of the share is 1.02 points; 4.5 of them is a one-in-a-hundred-thousand miss.
        var share = counts[2] / (double)Requests;
        Assert.Equal(Requests, counts[1] + counts[2]);
        Assert.InRange(share, 0.3 - 0.046, 0.3 + 0.046);
        Assert.Equal(0, mismatches);
        Assert.Equal(counts[1], await SuccessCountAsync("1"));
        Assert.Equal(counts[2], await SuccessCountAsync("2"));
    }

    [Fact]
    public async Task Canary_ExplicitVersion_BypassesTheSplit()
    {
        await LoadAsync("""{"parameters":{"model":"models:/iris/1","canary_model":"models:/iris/2","canary_traffic_percent":50}}""");

        for (var i = 0; i < 40; i++)
        {
            Assert.Equal("1", (await InferAsync("/v2/models/iris/versions/1/infer")).Version);
        }
    }

    [Theory]
    [InlineData(0, "1")]
    [InlineData(100, "2")]
    public async Task Canary_ZeroOrHundredPercent_SendsEverythingToOneVersion(int percent, string only)
    {
        var (status, _) = await LoadAsync($$$"""{"parameters":{"model":"models:/iris/1","canary_model":"models:/iris/2","canary_traffic_percent":{{{percent}}}}}""");
        Assert.Equal(HttpStatusCode.OK, status);

        var versions = new HashSet<string>();
        for (var i = 0; i < 60; i++)
        {
            versions.Add((await InferAsync()).Version);
        }

        Assert.Equal([only], versions);
    }

    [Fact]
    public async Task Load_NewMainVersion_UnloadsTheOldAndTheIndexShowsTheSplit()
    {
        await LoadAsync("""{"parameters":{"model":"models:/iris/3","canary_model":"models:/iris/2","canary_traffic_percent":25}}""");

        using var response = await _http.PostAsync("/v2/repository/index", null, Ct);
        var index = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement;
        Assert.Equal(["iris:2:25", "iris:3:75"], index.EnumerateArray().Select(m => $"{m.GetProperty("name").GetString()}:{m.GetProperty("version").GetString()}:{m.GetProperty("traffic_percent").GetInt32()}"));
        Assert.Equal(["2", "3"], _repository.VersionsOf("iris"));
        var three = await InferAsync("/v2/models/iris/versions/3/infer");
        Assert.Equal(Expected(3), three.Data, new FloatComparer());
    }

    [Theory]
    [InlineData(null, HttpStatusCode.Unauthorized, "bearer token")]
    [InlineData("wrong", HttpStatusCode.Unauthorized, "bearer token")]
    public async Task Load_WithoutTheToken_IsRefusedAndNothingChanges(string? token, HttpStatusCode expected, string message)
    {
        var (status, body) = await LoadAsync("""{"parameters":{"model":"models:/iris/2"}}""", token);

        Assert.Equal(expected, status);
        Assert.Contains(message, body.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal("1", (await InferAsync()).Version);
    }

    [Theory]
    [InlineData("""{"parameters":{"model":"models:/iris/1","canary_model":"models:/iris/2","canary_traffic_percent":150}}""", "'canary_traffic_percent' must be between 0 and 100, got 150")]
    [InlineData("""{"parameters":{"canary_model":"models:/iris/2"}}""", "Parameter 'model' is required")]
    [InlineData("""{"parameters":{"model":"models:/iris/1","max_batch_size":"8"}}""", "Parameter 'max_batch_size' must be an integer.")]
    [InlineData("""{"parameters":{"model":"models:/iris/9"}}""", "Cannot load model 'iris'")]
    [InlineData("""{"parameters":""", "Malformed JSON")]
    public async Task Load_BadPlan_Answers400WithTheReasonAndKeepsServing(string json, string message)
    {
        var (status, body) = await LoadAsync(json);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(message, body.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal("1", (await InferAsync()).Version);
    }

    [Fact]
    public async Task Load_ServerWithoutToken_Answers403()
    {
        using var repository = ServingServer.CreateRepository();
        using var rollout = new ModelRollout(repository, (_, _, _) => throw new InvalidOperationException("not reached"));
        await using var app = ServingServer.Build(new ServingOptions { Port = 0, GrpcPort = -1 }, repository, web => web.MapRepositoryApi(rollout, new ModelOptions(), token: null));
        await app.StartAsync(Ct);
        using var http = new HttpClient { BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()) };

        using var response = await http.PostAsync("/v2/repository/models/iris/load", new StringContent("""{"parameters":{"model":"x.onnx"}}""", Encoding.UTF8, "application/json"), Ct);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains(RepositoryApi.TokenVariable, await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        await app.StopAsync(Ct);
    }

    private sealed class FloatComparer : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) < 1e-5;

        public int GetHashCode(float obj) => 0;
    }
}
