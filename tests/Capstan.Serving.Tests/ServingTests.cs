using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Capstan.Serving.Grpc.V2;
using Capstan.Serving.Models;
using Capstan.Testing;
using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.ML.OnnxRuntime;

namespace Capstan.Serving.Tests;

public sealed class ServingTests
{
    private const int MlpInputs = 64;
    private const int MlpOutputs = 32;
    private static readonly byte[] s_mlp = OnnxModelBuilder.Mlp(MlpInputs, 256, MlpOutputs);

    private static ModelOptions Options(int maxBatch = 1, int queue = 1024, int maxLatencyMs = 0) =>
        new() { MaxBatchSize = maxBatch, QueueCapacity = queue, MaxLatency = TimeSpan.FromMilliseconds(maxLatencyMs) };

    private static float[] Row(int seed, int width = MlpInputs)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, width).Select(_ => (float)random.NextDouble())];
    }

    private static float[] RunDirect(byte[] model, float[] input, long rows)
    {
        using var session = new InferenceSession(model);
        using var value = OrtValue.CreateTensorValueFromMemory(input, [rows, input.Length / rows]);
        using var results = session.Run(new RunOptions(), ["x"], [value], ["y"]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static string InferJson(string data, long rows, string name = "x", string datatype = "FP32", int width = MlpInputs, string? extra = null) =>
        $$"""{"id":"req-1","inputs":[{"name":"{{name}}","shape":[{{rows}},{{width}}],"datatype":"{{datatype}}","data":{{data}}}]{{extra}}}""";

    private static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(HttpClient client, string path, string json)
    {
        using var response = await client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    private static float[] Floats(JsonElement output) => [.. output.GetProperty("data").EnumerateArray().Select(e => e.GetSingle())];

    [Fact]
    public async Task ModelMetadata_FromGraph_NamesDatatypesAndDynamicShapes()
    {
        await using var host = await ServingHost.StartAsync(r => r.Load("mlp", "3", ModelSource.FromBytes(s_mlp), Options()));
        var body = JsonDocument.Parse(await host.Rest.GetStringAsync("/v2/models/mlp")).RootElement;
        Assert.Equal("mlp", body.GetProperty("name").GetString());
        Assert.Equal("onnxruntime_onnx", body.GetProperty("platform").GetString());
        Assert.Equal(["3"], body.GetProperty("versions").EnumerateArray().Select(v => v.GetString()));
        var input = body.GetProperty("inputs")[0];
        Assert.Equal("x", input.GetProperty("name").GetString());
        Assert.Equal("FP32", input.GetProperty("datatype").GetString());
        Assert.Equal([-1L, MlpInputs], input.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal([-1L, MlpOutputs], body.GetProperty("outputs")[0].GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal("cpu", body.GetProperty("parameters").GetProperty("execution_provider").GetString());
        Assert.Equal(HttpStatusCode.OK, (await host.Rest.GetAsync("/v2/models/mlp/versions/3/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await host.Rest.GetAsync("/v2/health/ready")).StatusCode);
        Assert.Contains("binary_tensor_data", await host.Rest.GetStringAsync("/v2"));
    }

    [Fact]
    public async Task Infer_FlatAndNestedData_EqualsOnnxRuntimeRunDirectly()
    {
        await using var host = await ServingHost.StartAsync(r => r.Load("mlp", "1", ModelSource.FromBytes(s_mlp), Options()));
        var input = Row(1).Concat(Row(2)).ToArray();
        var expected = RunDirect(s_mlp, input, 2);
        var flat = JsonSerializer.Serialize(input);
        var nested = JsonSerializer.Serialize(new[] { Row(1), Row(2) });

        foreach (var data in new[] { flat, nested })
        {
            var (status, body) = await PostAsync(host.Rest, "/v2/models/mlp/infer", InferJson(data, 2));
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal("req-1", body.GetProperty("id").GetString());
            Assert.Equal("1", body.GetProperty("model_version").GetString());
            var output = body.GetProperty("outputs")[0];
            Assert.Equal([2L, MlpOutputs], output.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
            Assert.Equal(expected, Floats(output));
        }
    }

    [Theory]
    [InlineData(OnnxModelBuilder.Int64, "INT64", "[1,-2,9007199254740993]", "[1,-2,9007199254740993]")]
    [InlineData(OnnxModelBuilder.Double, "FP64", "[0.1,2.5,-3]", "[0.1,2.5,-3]")]
    [InlineData(OnnxModelBuilder.Bool, "BOOL", "[true,false,true]", "[true,false,true]")]
    [InlineData(OnnxModelBuilder.Float16, "FP16", "[0.5,1.5,-2]", "[0.5,1.5,-2]")]
    [InlineData(OnnxModelBuilder.BFloat16, "BF16", "[0.5,1.5,-2]", "[0.5,1.5,-2]")]

    // BF16 from JSON numbers rounds to nearest even: pi down to 3.140625, 1+2^-8 (a tie) to 1, 1e-40 to 2^-133 (the least subnormal).
    [InlineData(OnnxModelBuilder.BFloat16, "BF16", "[3.14159,1.00390625,1e-40]", "[3.140625,1,9.1835E-41]")]
    [InlineData(OnnxModelBuilder.Int8, "INT8", "[-128,0,127]", "[-128,0,127]")]
    [InlineData(OnnxModelBuilder.Uint8, "UINT8", "[0,1,255]", "[0,1,255]")]
    public async Task Infer_IdentityModel_RoundTripsEachDatatype(int elemType, string datatype, string data, string expected)
    {
        await using var host = await ServingHost.StartAsync(r => r.Load("id", "1", ModelSource.FromBytes(OnnxModelBuilder.Identity(elemType)), Options()));
        var (status, body) = await PostAsync(host.Rest, "/v2/models/id/infer", InferJson(data, 1, datatype: datatype, width: 3));
        Assert.Equal(HttpStatusCode.OK, status);
        var output = body.GetProperty("outputs")[0];
        Assert.Equal(datatype, output.GetProperty("datatype").GetString());
        Assert.Equal(expected, output.GetProperty("data").GetRawText());
    }

    [Fact]
    public async Task Infer_GraphDeclaringAWrongOutputShape_AnswersWhatTheRunProduced()
    {
        // The graph says y is [2,3]; the run makes y as big as x. The server hands ONNX Runtime a [2,3] buffer for
        // the first request, which the run rejects; it must answer from an allocating run, and keep doing so.
        var model = OnnxModelBuilder.Identity(OnnxModelBuilder.Float, 3, declaredOutput: [2, 3]);
        await using var host = await ServingHost.StartAsync(r => r.Load("id", "1", ModelSource.FromBytes(model), Options()));
        foreach (var rows in new[] { 4, 2, 1, 4 })
        {
            var input = Row(rows, rows * 3);
            var (status, body) = await PostAsync(host.Rest, "/v2/models/id/infer", InferJson(JsonSerializer.Serialize(input), rows, width: 3));
            Assert.Equal(HttpStatusCode.OK, status);
            var output = body.GetProperty("outputs")[0];
            Assert.Equal([rows, 3L], output.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
            Assert.Equal(input, Floats(output));
        }
    }

    [Fact]
    public async Task Infer_BinaryDataExtension_RoundTripsInputsAndOutputs()
    {
        await using var host = await ServingHost.StartAsync(r => r.Load("mlp", "1", ModelSource.FromBytes(s_mlp), Options()));
        var input = Row(7);
        var header = $$$"""{"inputs":[{"name":"x","shape":[1,{{{MlpInputs}}}],"datatype":"FP32","parameters":{"binary_data_size":{{{input.Length * 4}}}}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}""";
        var headerBytes = Encoding.UTF8.GetBytes(header);
        var body = new byte[headerBytes.Length + (input.Length * 4)];
        headerBytes.CopyTo(body, 0);
        Buffer.BlockCopy(input, 0, body, headerBytes.Length, input.Length * 4);
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.Add("Inference-Header-Content-Length", headerBytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));

        using var response = await host.Rest.PostAsync("/v2/models/mlp/infer", content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var jsonLength = int.Parse(response.Headers.GetValues("Inference-Header-Content-Length").Single(), System.Globalization.CultureInfo.InvariantCulture);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        var json = JsonDocument.Parse(bytes.AsMemory(0, jsonLength)).RootElement;
        var size = json.GetProperty("outputs")[0].GetProperty("parameters").GetProperty("binary_data_size").GetInt32();
        Assert.Equal(MlpOutputs * 4, size);
        var output = new float[MlpOutputs];
        Buffer.BlockCopy(bytes, jsonLength, output, 0, size);
        Assert.Equal(RunDirect(s_mlp, input, 1), output);
    }

    [Fact]
    public async Task GrpcInfer_TypedAndRawContents_EqualsRest()
    {
        await using var host = await ServingHost.StartAsync(r => r.Load("mlp", "1", ModelSource.FromBytes(s_mlp), Options()));
        var input = Row(3);
        var (_, restBody) = await PostAsync(host.Rest, "/v2/models/mlp/infer", InferJson(JsonSerializer.Serialize(input), 1));
        var rest = Floats(restBody.GetProperty("outputs")[0]);

        using var channel = GrpcChannel.ForAddress(host.GrpcAddress);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        Assert.True((await client.ServerLiveAsync(new ServerLiveRequest())).Live);
        Assert.True((await client.ModelReadyAsync(new ModelReadyRequest { Name = "mlp" })).Ready);
        var metadata = await client.ModelMetadataAsync(new ModelMetadataRequest { Name = "mlp" });
        Assert.Equal("FP32", metadata.Inputs[0].Datatype);
        Assert.Equal("cpu", metadata.Parameters["execution_provider"].StringParam); // as REST metadata says
        Assert.Equal("1", metadata.Parameters["version"].StringParam);

        var typed = new ModelInferRequest { ModelName = "mlp", Id = "g1" };
        var tensor = new ModelInferRequest.Types.InferInputTensor { Name = "x", Datatype = "FP32", Contents = new InferTensorContents() };
        tensor.Shape.Add([1, MlpInputs]);
        tensor.Contents.Fp32Contents.Add(input);
        typed.Inputs.Add(tensor);
        var typedResponse = await client.ModelInferAsync(typed);
        Assert.Equal("g1", typedResponse.Id);
        Assert.Equal(rest, typedResponse.Outputs[0].Contents.Fp32Contents.ToArray());

        var raw = new ModelInferRequest { ModelName = "mlp" };
        var rawTensor = new ModelInferRequest.Types.InferInputTensor { Name = "x", Datatype = "FP32" };
        rawTensor.Shape.Add([1, MlpInputs]);
        raw.Inputs.Add(rawTensor);
        var bytes = new byte[input.Length * 4];
        Buffer.BlockCopy(input, 0, bytes, 0, bytes.Length);
        raw.RawInputContents.Add(ByteString.CopyFrom(bytes));
        var rawResponse = await client.ModelInferAsync(raw);
        var output = new float[MlpOutputs];
        Buffer.BlockCopy(rawResponse.RawOutputContents[0].ToByteArray(), 0, output, 0, MlpOutputs * 4);
        Assert.Equal(rest, output);

        var missing = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(async () => await client.ModelInferAsync(new ModelInferRequest { ModelName = "nope" }));
        Assert.Equal(global::Grpc.Core.StatusCode.NotFound, missing.StatusCode);
        var bad = new ModelInferRequest { ModelName = "mlp" };
        var wrong = new ModelInferRequest.Types.InferInputTensor { Name = "z", Datatype = "FP32" };
        wrong.Shape.Add([1, 1]);
        wrong.Contents = new InferTensorContents();
        wrong.Contents.Fp32Contents.Add(1f);
        bad.Inputs.Add(wrong);
        var invalid = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(async () => await client.ModelInferAsync(bad));
        Assert.Equal(global::Grpc.Core.StatusCode.InvalidArgument, invalid.StatusCode);
        Assert.Contains("'z'", invalid.Status.Detail);
    }

    [Fact]
    public async Task GrpcInfer_Bf16_RawContentsRoundTripAndTypedContentsAreRefused()
    {
        await using var host = await ServingHost.StartAsync(r => r.Load("id", "1", ModelSource.FromBytes(OnnxModelBuilder.Identity(OnnxModelBuilder.BFloat16)), Options()));
        using var channel = GrpcChannel.ForAddress(host.GrpcAddress);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        Assert.Equal("BF16", (await client.ModelMetadataAsync(new ModelMetadataRequest { Name = "id" })).Outputs[0].Datatype);

        // 1.0, -2.5 and 3.140625 as bfloat16 bits, little-endian.
        byte[] bits = [0x80, 0x3F, 0x20, 0xC0, 0x49, 0x40];
        var raw = new ModelInferRequest { ModelName = "id" };
        var tensor = new ModelInferRequest.Types.InferInputTensor { Name = "x", Datatype = "BF16" };
        tensor.Shape.Add([1, 3]);
        raw.Inputs.Add(tensor);
        raw.RawInputContents.Add(ByteString.CopyFrom(bits));
        var response = await client.ModelInferAsync(raw);
        Assert.Equal("BF16", response.Outputs[0].Datatype);
        Assert.Equal(bits, response.RawOutputContents[0].ToByteArray());

        var typed = new ModelInferRequest { ModelName = "id" };
        var typedTensor = new ModelInferRequest.Types.InferInputTensor { Name = "x", Datatype = "BF16", Contents = new InferTensorContents() };
        typedTensor.Shape.Add([1, 3]);
        typedTensor.Contents.Fp32Contents.Add([1f, -2.5f, 3.140625f]);
        typed.Inputs.Add(typedTensor);
        var refused = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(async () => await client.ModelInferAsync(typed));
        Assert.Equal(global::Grpc.Core.StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("raw_input_contents", refused.Status.Detail);
    }

    [Theory]
    [InlineData("""{"inputs":[{"name":"wrong","shape":[1,64],"datatype":"FP32","data":[]}]}""", "'wrong'")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1,63],"datatype":"FP32","data":DATA63}]}""", "'x' has shape [1,63]")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1,64],"datatype":"INT64","data":DATA64}]}""", "'x' has datatype INT64")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1,64],"datatype":"FP32","data":[1,2,3]}]}""", "'x' has 3 elements")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1,64],"datatype":"FP32","data":["a"]}]}""", "'x': element 0")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1,64],"datatype":"FLOAT","data":[]}]}""", "'x': 'datatype' must be one of")]
    [InlineData("""{"inputs":[{"name":"x","shape":[1,64],"datatype":"FP32","data":[1,2""", "Malformed JSON")]
    [InlineData("""{"inputs":[]}""", "no 'inputs'")]
    public async Task Infer_BadInput_Returns400NamingTheProblem(string json, string expected)
    {
        await using var host = await ServingHost.StartAsync(r => r.Load("mlp", "1", ModelSource.FromBytes(s_mlp), Options()));
        json = json.Replace("DATA63", JsonSerializer.Serialize(new int[63]), StringComparison.Ordinal).Replace("DATA64", JsonSerializer.Serialize(new int[64]), StringComparison.Ordinal);
        var (status, body) = await PostAsync(host.Rest, "/v2/models/mlp/infer", json);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(expected, body.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Infer_UnknownModelOrVersion_Returns404()
    {
        await using var host = await ServingHost.StartAsync(r => r.Load("mlp", "1", ModelSource.FromBytes(s_mlp), Options()));
        var json = InferJson(JsonSerializer.Serialize(Row(1)), 1);
        Assert.Equal(HttpStatusCode.NotFound, (await PostAsync(host.Rest, "/v2/models/nope/infer", json)).Status);
        var (status, body) = await PostAsync(host.Rest, "/v2/models/mlp/versions/9/infer", json);
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("version 9", body.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await host.Rest.GetAsync("/v2/models/nope")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await host.Rest.GetAsync("/v2/models/nope/ready")).StatusCode);
    }

    [Fact]
    public async Task HotSwap_UnderConcurrentLoad_FailsNoRequest()
    {
        var other = OnnxModelBuilder.Mlp(MlpInputs, 256, MlpOutputs, seed: 9);
        await using var host = await ServingHost.StartAsync(r => r.Load("mlp", "1", ModelSource.FromBytes(s_mlp), Options(maxBatch: 8)));
        var json = InferJson(JsonSerializer.Serialize(Row(1)), 1);
        using var stop = new CancellationTokenSource();
        var failures = 0;
        var completed = 0;
        var clients = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var response = await host.Rest.PostAsync("/v2/models/mlp/infer", new StringContent(json, Encoding.UTF8, "application/json"));
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    Interlocked.Increment(ref failures);
                }

                Interlocked.Increment(ref completed);
            }
        })).ToArray();

        // At least 10 swaps, and on until the clients have completed enough requests to overlap them (a loaded
        // machine may take longer for the first requests than for the swaps).
        var swapping = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 10 || (Volatile.Read(ref completed) <= 40 && swapping.Elapsed < TimeSpan.FromSeconds(30)); i++)
        {
            host.Repository.Load("mlp", "1", ModelSource.FromBytes(i % 2 == 0 ? other : s_mlp), Options(maxBatch: 8));
            host.Repository.Load("mlp", "2", ModelSource.FromBytes(other), Options(maxBatch: 8));
            host.Repository.Unload("mlp", "2");
            await Task.Delay(20);
        }

        stop.Cancel();
        await Task.WhenAll(clients);
        Assert.Equal(0, failures);
        Assert.True(completed > 10, $"only {completed} requests completed");
    }

    [Fact]
    public async Task Batching_ConcurrentRequests_RunAsBatchesAndALoneRequestIsNotDelayed()
    {
        // About 1 ms a run: long enough that requests sent together find the model busy and queue.
        var heavy = OnnxModelBuilder.Heavy(512, 16);
        await using var host = await ServingHost.StartAsync(r => r.Load("heavy", "1", ModelSource.FromBytes(heavy), Options(maxBatch: 16, maxLatencyMs: 300)));
        var json = InferJson(JsonSerializer.Serialize(Row(1, 512)), 1, width: 512);

        // Warm up, then time a lone request: maxLatency (300 ms) must not apply to it.
        await PostAsync(host.Rest, "/v2/models/heavy/infer", json);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var (status, _) = await PostAsync(host.Rest, "/v2/models/heavy/infer", json);
        watch.Stop();
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(watch.ElapsedMilliseconds < 150, $"a lone request took {watch.ElapsedMilliseconds} ms");

        var results = await Task.WhenAll(Enumerable.Range(0, 32).Select(_ => PostAsync(host.Rest, "/v2/models/heavy/infer", json)));
        Assert.All(results, r => Assert.Equal(HttpStatusCode.OK, r.Status));
        var expected = Floats(results[0].Body.GetProperty("outputs")[0]);
        Assert.All(results, r => Assert.Equal(expected, Floats(r.Body.GetProperty("outputs")[0])));

        var metrics = await host.Rest.GetStringAsync("/metrics");
        var batches = ParseMetric(metrics, "capstan_inference_batch_size_count");
        var rows = ParseMetric(metrics, "capstan_inference_batch_size_sum");
        Assert.True(rows / batches > 1, $"{rows} rows ran in {batches} batches: no batching happened");
    }

    [Fact]
    public async Task Batching_ConcurrentRequestsOfDifferentSizes_EachGetsItsOwnRows()
    {
        // Runs of a few ms, so requests arriving together find the model busy and queue into batches.
        const int Width = 512;
        var heavy = OnnxModelBuilder.Heavy(Width, 8);
        await using var host = await ServingHost.StartAsync(r => r.Load("heavy", "1", ModelSource.FromBytes(heavy), Options(maxBatch: 16, maxLatencyMs: 20)));
        var inputs = Enumerable.Range(0, 48)
            .Select(i => (Rows: 1 + (i % 3), Data: Enumerable.Range(0, 1 + (i % 3)).SelectMany(r => Row((100 * i) + r, Width)).ToArray()))
            .ToArray();
        var results = await Task.WhenAll(inputs.Select((input, i) => PostAsync(
            host.Rest,
            "/v2/models/heavy/infer",
            $$"""{"id":"req-{{i}}","inputs":[{"name":"x","shape":[{{input.Rows}},{{Width}}],"datatype":"FP32","data":{{JsonSerializer.Serialize(input.Data)}}}]}""")));

        for (var i = 0; i < inputs.Length; i++)
        {
            Assert.Equal(HttpStatusCode.OK, results[i].Status);
            Assert.Equal($"req-{i}", results[i].Body.GetProperty("id").GetString());
            var output = results[i].Body.GetProperty("outputs")[0];
            Assert.Equal([inputs[i].Rows, Width], output.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()));
            var expected = RunDirect(heavy, inputs[i].Data, inputs[i].Rows);
            var actual = Floats(output);
            Assert.Equal(expected.Length, actual.Length);
            for (var j = 0; j < expected.Length; j++)
            {
                // A batched run may take another GEMM kernel than a run of one request: equal up to float rounding.
                Assert.Equal(expected[j], actual[j], 1e-4f);
            }
        }

        var metrics = await host.Rest.GetStringAsync("/metrics");
        var batches = ParseMetric(metrics, "capstan_inference_batch_size_count");
        var rows = ParseMetric(metrics, "capstan_inference_batch_size_sum");
        Assert.Equal(inputs.Sum(i => i.Rows), rows);
        Assert.True(batches < inputs.Length, $"{inputs.Length} requests ran in {batches} runs: no batching happened");
    }

    [Fact]
    public async Task Infer_QueueFull_Returns429WithRetryAfter()
    {
        var heavy = OnnxModelBuilder.Heavy(512, 32);
        await using var host = await ServingHost.StartAsync(r => r.Load("heavy", "1", ModelSource.FromBytes(heavy), Options(maxBatch: 1, queue: 1)));
        var json = InferJson(JsonSerializer.Serialize(Enumerable.Range(0, 64).Select(_ => Row(1, 512)).ToArray()), 64, width: 512); // tens of ms per run
        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            using var response = await host.Rest.PostAsync("/v2/models/heavy/infer", new StringContent(json, Encoding.UTF8, "application/json"));
            return (response.StatusCode, response.Headers.RetryAfter, Body: await response.Content.ReadAsStringAsync());
        }));
        Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.OK);
        var rejected = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(rejected);
        Assert.All(rejected, r => Assert.NotNull(r.RetryAfter));
        Assert.Contains("queued", rejected[0].Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Infer_PastRequestTimeout_Returns503AndTheModelKeepsServing()
    {
        var heavy = OnnxModelBuilder.Heavy(512, 32);
        var options = new ModelOptions { MaxBatchSize = 8, RequestTimeout = TimeSpan.FromMilliseconds(1) };
        await using var host = await ServingHost.StartAsync(r => r.Load("heavy", "1", ModelSource.FromBytes(heavy), options));
        var json = InferJson(JsonSerializer.Serialize(Enumerable.Range(0, 64).Select(_ => Row(1, 512)).ToArray()), 64, width: 512); // ~1 GFLOP: far past 1 ms

        using var response = await host.Rest.PostAsync("/v2/models/heavy/infer", new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Contains("did not answer within", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The abandoned run still holds the session; swapping in a patient version serves normally.
        host.Repository.Load("heavy", "1", ModelSource.FromBytes(heavy), options with { RequestTimeout = TimeSpan.FromSeconds(30) });
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(host.Rest, "/v2/models/heavy/infer", json)).Status);
    }

    [Fact]
    public async Task Metrics_AfterRequests_ParseAsPrometheusTextWithRequestCounters()
    {
        await using var host = await ServingHost.StartAsync(r => r.Load("mlp", "1", ModelSource.FromBytes(s_mlp), Options()));
        var json = InferJson(JsonSerializer.Serialize(Row(1)), 1);
        await PostAsync(host.Rest, "/v2/models/mlp/infer", json);
        await PostAsync(host.Rest, "/v2/models/mlp/infer", json);
        await PostAsync(host.Rest, "/v2/models/mlp/infer", """{"inputs":[{"name":"q","shape":[1],"datatype":"FP32","data":[1]}]}""");
        var text = await host.Rest.GetStringAsync("/metrics");
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            Assert.Matches(@"^(# (HELP|TYPE) \w+ .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_]\w*=""[^""]*"",?)*\})? -?[0-9.eE+\-]+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [+-]?Inf|.* NaN)$", line);
        }

        Assert.Equal(2, ParseMetric(text, "capstan_inference_requests_total{model=\"mlp\",version=\"1\",outcome=\"success\"}"));
        Assert.Equal(1, ParseMetric(text, "capstan_inference_requests_total{model=\"mlp\",version=\"1\",outcome=\"invalid\"}"));
        Assert.Contains("capstan_inference_queue_depth", text, StringComparison.Ordinal);
        Assert.Contains("capstan_inference_request_duration_seconds_bucket", text, StringComparison.Ordinal);
    }

    private static double ParseMetric(string text, string series)
    {
        var line = text.Split('\n').First(l => l.StartsWith(series + " ", StringComparison.Ordinal) || (l.StartsWith(series + "{", StringComparison.Ordinal) && !series.Contains('{', StringComparison.Ordinal)));
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
