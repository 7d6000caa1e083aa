using System.Net;
using System.Text;
using System.Text.Json;
using Capstan.Serving.Grpc.V2;
using Capstan.Serving.Models;
using Capstan.Testing;
using Grpc.Core;
using Grpc.Net.Client;

namespace Capstan.Serving.Tests;

/// <summary>Triton's statistics extension against a real server: counts, times and batch sizes after real requests.</summary>
public sealed class StatisticsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static StringContent Rows(int rows) => new(
        $$"""{"inputs":[{"name":"x","shape":[{{rows}},4],"datatype":"FP32","data":[{{string.Join(",", Enumerable.Repeat("1,2,3,4", rows))}}]}]}""",
        Encoding.UTF8,
        "application/json");

    private static long Ns(JsonElement stat, string name) => stat.GetProperty(name).GetProperty("ns").GetInt64();

    private static long Count(JsonElement stat, string name) => stat.GetProperty(name).GetProperty("count").GetInt64();

    [Fact]
    public async Task Stats_AfterRequests_CountInferencesRunsFailuresAndTimesPerBatchSize()
    {
        await using var host = await ServingHost.StartAsync(r =>
        {
            r.Load("mlp", "1", ModelSource.FromBytes(OnnxModelBuilder.Mlp(4, 8, 3)), new ModelOptions());
            r.Load("batched", "2", ModelSource.FromBytes(OnnxModelBuilder.Mlp(4, 8, 3)), new ModelOptions { MaxBatchSize = 8, MaxLatency = TimeSpan.FromMilliseconds(5) });
        });
        Assert.Contains("statistics", await host.Rest.GetStringAsync("/v2", Ct), StringComparison.Ordinal);
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        foreach (var rows in new[] { 1, 2, 1 })
        {
            using var ok = await host.Rest.PostAsync("/v2/models/mlp/infer", Rows(rows), Ct);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using (var bad = await host.Rest.PostAsync("/v2/models/mlp/infer", new StringContent("""{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}""", Encoding.UTF8, "application/json"), Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }

        var after = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await Task.WhenAll(Enumerable.Range(0, 16).Select(async _ =>
        {
            using var response = await host.Rest.PostAsync("/v2/models/batched/infer", Rows(1), Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }));

        var one = JsonDocument.Parse(await host.Rest.GetStringAsync("/v2/models/mlp/versions/1/stats", Ct)).RootElement.GetProperty("model_stats");
        var mlp = Assert.Single(one.EnumerateArray());
        Assert.Equal(("mlp", "1"), (mlp.GetProperty("name").GetString(), mlp.GetProperty("version").GetString()));
        Assert.Equal(4, mlp.GetProperty("inference_count").GetInt64()); // rows, as Triton counts them
        Assert.Equal(3, mlp.GetProperty("execution_count").GetInt64());
        Assert.InRange(mlp.GetProperty("last_inference").GetInt64(), before - 5, after + 5);
        var stats = mlp.GetProperty("inference_stats");
        Assert.Equal((3, 1), (Count(stats, "success"), Count(stats, "fail")));
        Assert.True(Ns(stats, "fail") > 0);
        Assert.Equal(3, Count(stats, "compute_infer"));
        Assert.True(Ns(stats, "compute_infer") > 0);
        Assert.True(Ns(stats, "success") >= Ns(stats, "compute_input") + Ns(stats, "compute_infer") + Ns(stats, "compute_output"));
        var batches = mlp.GetProperty("batch_stats").EnumerateArray().ToDictionary(b => b.GetProperty("batch_size").GetInt64(), b => Count(b, "compute_infer"));
        Assert.Equal(new Dictionary<long, long> { [1] = 2, [2] = 1 }, batches);

        // Every model: the batching one ran its 16 one-row requests in as many runs or fewer, and its batch sizes add up.
        var all = JsonDocument.Parse(await host.Rest.GetStringAsync("/v2/models/stats", Ct)).RootElement.GetProperty("model_stats").EnumerateArray().ToList();
        Assert.Equal(["batched", "mlp"], all.Select(m => m.GetProperty("name").GetString()));
        var batched = all[0];
        Assert.Equal(16, batched.GetProperty("inference_count").GetInt64());
        Assert.InRange(batched.GetProperty("execution_count").GetInt64(), 1, 16);
        Assert.Equal(16, batched.GetProperty("batch_stats").EnumerateArray().Sum(b => b.GetProperty("batch_size").GetInt64() * Count(b, "compute_infer")));
        Assert.Equal(batched.GetProperty("execution_count").GetInt64(), batched.GetProperty("batch_stats").EnumerateArray().Sum(b => Count(b, "compute_infer")));

        using var missing = await host.Rest.GetAsync("/v2/models/nope/stats", Ct);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("nope", JsonDocument.Parse(await missing.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stats_OverGrpc_ModelStatisticsAnswersTheSameCountsAsRest()
    {
        await using var host = await ServingHost.StartAsync(r =>
        {
            r.Load("mlp", "1", ModelSource.FromBytes(OnnxModelBuilder.Mlp(4, 8, 3)), new ModelOptions());
            r.Load("mlp", "2", ModelSource.FromBytes(OnnxModelBuilder.Mlp(4, 8, 3)), new ModelOptions());
        });
        foreach (var (version, rows) in new[] { ("1", 3), ("2", 1), ("2", 2) })
        {
            using var ok = await host.Rest.PostAsync($"/v2/models/mlp/versions/{version}/infer", Rows(rows), Ct);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using var channel = GrpcChannel.ForAddress(host.GrpcAddress);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        Assert.Contains("statistics", (await client.ServerMetadataAsync(new ServerMetadataRequest(), cancellationToken: Ct)).Extensions);

        var both = await client.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "mlp" }, cancellationToken: Ct);
        Assert.Equal(["1", "2"], both.ModelStats.Select(m => m.Version));
        var v2 = both.ModelStats[1];
        Assert.Equal((3UL, 2UL), (v2.InferenceCount, v2.ExecutionCount));
        Assert.Equal(2UL, v2.InferenceStats.Success.Count);
        Assert.True(v2.InferenceStats.ComputeInfer.Ns > 0);
        Assert.Equal(new Dictionary<ulong, ulong> { [1] = 1, [2] = 1 }, v2.BatchStats.ToDictionary(b => b.BatchSize, b => b.ComputeInfer.Count));

        // The same figures as the REST extension gives.
        var rest = JsonDocument.Parse(await host.Rest.GetStringAsync("/v2/models/mlp/versions/1/stats", Ct)).RootElement.GetProperty("model_stats")[0];
        var v1 = Assert.Single((await client.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "mlp", Version = "1" }, cancellationToken: Ct)).ModelStats);
        Assert.Equal(rest.GetProperty("inference_count").GetUInt64(), v1.InferenceCount);
        Assert.Equal(rest.GetProperty("last_inference").GetUInt64(), v1.LastInference);
        Assert.Equal((ulong)Ns(rest.GetProperty("inference_stats"), "compute_infer"), v1.InferenceStats.ComputeInfer.Ns);
        Assert.Equal(2, (await client.ModelStatisticsAsync(new ModelStatisticsRequest(), cancellationToken: Ct)).ModelStats.Count); // empty name: every model

        var missing = await Assert.ThrowsAsync<RpcException>(async () => await client.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "mlp", Version = "9" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.Contains("9", missing.Status.Detail, StringComparison.Ordinal);
    }
}
