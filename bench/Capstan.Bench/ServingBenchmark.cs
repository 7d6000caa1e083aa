using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Capstan.Serving.Grpc.V2;
using Capstan.Serving.Hosting;
using Capstan.Serving.Models;
using Capstan.Serving.Rest;
using Capstan.Testing;
using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.OnnxRuntime;

namespace Capstan.Bench;

/// <summary>
/// The inference server against its baselines in the same run: an echo endpoint taking the same
/// payload in the same server, raw in-process ONNX Runtime, batch-1 against dynamic batching,
/// gRPC against REST. Load comes from .NET clients on loopback sharing the machine's cores.
/// </summary>
public static class ServingBenchmark
{
    private const int MlpInputs = 64;

    public static async Task RunAsync(Report report, bool quick)
    {
        var seconds = quick ? 1.5 : 3.0;
        var mlp = OnnxModelBuilder.Mlp(MlpInputs, 1024, 32); // ~100k parameters
        var heavy = OnnxModelBuilder.Heavy(512, 32);
        var overheads = new List<double>(100_000);
        var echoTimes = new List<double>(100_000);

        using var repository = ServingServer.CreateRepository();
        repository.Load("mlp", "1", ModelSource.FromBytes(mlp), new ModelOptions());
        repository.Load("mlp-batched", "1", ModelSource.FromBytes(mlp), new ModelOptions { MaxBatchSize = 64 });
        repository.Load("heavy", "1", ModelSource.FromBytes(heavy), new ModelOptions());
        var app = ServingServer.Build(new ServingOptions { Port = 0, GrpcPort = 0 }, repository, extra =>
        {
            // Measures the time inside the server outside ONNX Runtime, per infer request.
            extra.Use(async (context, next) =>
            {
                var timing = new InferenceTimingFeature();
                context.Features.Set(timing);
                var started = Stopwatch.GetTimestamp();
                await next(context);
                var elapsed = Stopwatch.GetElapsedTime(started).TotalMicroseconds;
                lock (overheads)
                {
                    if (timing.OnnxMicroseconds > 0)
                    {
                        overheads.Add(elapsed - timing.OnnxMicroseconds);
                    }
                    else
                    {
                        echoTimes.Add(elapsed);
                    }
                }
            });

            // The echo baseline: reads the same body and writes it back, in the same server (benchmark host only).
            extra.MapPost("/bench/echo", async context =>
            {
                using var body = new MemoryStream();
                await context.Request.Body.CopyToAsync(body, context.RequestAborted);
                context.Response.ContentType = "application/json";
                context.Response.ContentLength = body.Length;
                await context.Response.Body.WriteAsync(body.GetBuffer().AsMemory(0, (int)body.Length), context.RequestAborted);
            });
        });
        await app.StartAsync();
        try
        {
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = new Uri(addresses[0]) };
            var grpcAddress = new Uri(addresses[1]);
            var row = Enumerable.Range(0, MlpInputs).Select(i => (float)Math.Sin(i)).ToArray();
            var mlpJson = Encoding.UTF8.GetBytes(Json(row, MlpInputs));
            var heavyRow = Enumerable.Range(0, 512).Select(i => (float)Math.Cos(i)).ToArray();
            var heavyJson = Encoding.UTF8.GetBytes(Json(heavyRow, 512));

            // 1. Server overhead at concurrency 1.
            await RestRate(http, "/v2/models/mlp/infer", mlpJson, 1, 0.5);
            lock (overheads)
            {
                overheads.Clear();
            }

            var e2e = new Samples(100_000);
            var until = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
            while (Stopwatch.GetTimestamp() < until)
            {
                var started = Stopwatch.GetTimestamp();
                await Post(http, "/v2/models/mlp/infer", mlpJson);
                e2e.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }

            lock (overheads)
            {
                echoTimes.Clear();
            }

            for (var i = 0; i < 2000; i++)
            {
                await Post(http, "/bench/echo", mlpJson);
            }

            double overheadP50;
            double echoP50;
            lock (overheads)
            {
                overheads.Sort();
                echoTimes.Sort();
                overheadP50 = overheads[overheads.Count / 2];
                echoP50 = echoTimes[echoTimes.Count / 2];
            }

            report.Add("serving: server overhead outside ONNX Runtime, MLP REST, p50", $"{overheadP50:0.0} µs",
                $"echo {echoP50:0.0} µs, round trip {Report.Ms(e2e.Percentile(50))}", "<= 50 µs", overheadP50 <= 50);

            // 2. Small MLP REST vs echo of the same payload.
            const int Clients = 4;
            var echo = await RestRate(http, "/bench/echo", mlpJson, Clients, seconds);
            var mlpRate = await RestRate(http, "/v2/models/mlp/infer", mlpJson, Clients, seconds);
            report.Add($"serving: MLP REST JSON, {Clients} clients", Report.Rate(mlpRate),
                $"echo {Report.Rate(echo)} ({mlpRate / echo:P0})", ">= 70 % of echo", mlpRate >= 0.7 * echo);

            // 3. A model with >= 1 ms of compute vs raw in-process ONNX Runtime, one at a time.
            var (rawRate, rawMs) = RawOnnxRate(heavy, heavyRow, seconds);
            var heavyRate = await RestRate(http, "/v2/models/heavy/infer", heavyJson, 1, seconds);
            report.Add($"serving: {rawMs:0.0} ms model, REST, 1 client", Report.Rate(heavyRate),
                $"raw ORT {Report.Rate(rawRate)} ({heavyRate / rawRate:P0})", ">= 95 % of raw", heavyRate >= 0.95 * rawRate);

            // 4. Dynamic batching at saturation vs batch-1, same MLP.
            const int Saturating = 64;
            var batch1 = await RestRate(http, "/v2/models/mlp/infer", mlpJson, Saturating, seconds);
            var batched = await RestRate(http, "/v2/models/mlp-batched/infer", mlpJson, Saturating, seconds);
            report.Add($"serving: MLP dynamic batching, {Saturating} clients", Report.Rate(batched),
                $"batch-1 {Report.Rate(batch1)} ({batched / batch1:0.0}x)", ">= 4x batch-1", batched >= 4 * batch1);

            // 5. gRPC vs REST, same model and clients.
            var grpcRate = await GrpcRate(grpcAddress, row, Clients, seconds);
            report.Add($"serving: MLP gRPC raw contents, {Clients} clients (a channel each)", Report.Rate(grpcRate),
                $"REST {Report.Rate(mlpRate)} ({grpcRate / mlpRate:0.00}x)", "reported", true);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private static string Json(float[] row, int width) =>
        $$"""{"inputs":[{"name":"x","shape":[1,{{width}}],"datatype":"FP32","data":{{JsonSerializer.Serialize(row)}}}]}""";

    private static async Task Post(HttpClient http, string path, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync(path, content);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        await response.Content.CopyToAsync(Stream.Null);
    }

    private static async Task<double> RestRate(HttpClient http, string path, byte[] body, int clients, double seconds)
    {
        var count = 0L;
        var until = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
        {
            while (Stopwatch.GetTimestamp() < until)
            {
                await Post(http, path, body);
                Interlocked.Increment(ref count);
            }
        })));
        return count / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    private static async Task<double> GrpcRate(Uri address, float[] row, int clients, double seconds)
    {
        var bytes = new byte[row.Length * 4];
        Buffer.BlockCopy(row, 0, bytes, 0, bytes.Length);
        var request = new ModelInferRequest { ModelName = "mlp" };
        var tensor = new ModelInferRequest.Types.InferInputTensor { Name = "x", Datatype = "FP32" };
        tensor.Shape.Add([1, row.Length]);
        request.Inputs.Add(tensor);
        request.RawInputContents.Add(ByteString.CopyFrom(bytes));

        // One channel (one HTTP/2 connection) per client, as REST gets one connection per client.
        var channels = Enumerable.Range(0, clients).Select(_ => GrpcChannel.ForAddress(address)).ToArray();
        try
        {
            var stubs = channels.Select(c => new GRPCInferenceService.GRPCInferenceServiceClient(c)).ToArray();
            foreach (var stub in stubs)
            {
                await stub.ModelInferAsync(request);
            }

            var count = 0L;
            var until = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
            var started = Stopwatch.GetTimestamp();
            await Task.WhenAll(stubs.Select(stub => Task.Run(async () =>
            {
                while (Stopwatch.GetTimestamp() < until)
                {
                    await stub.ModelInferAsync(request);
                    Interlocked.Increment(ref count);
                }
            })));
            return count / Stopwatch.GetElapsedTime(started).TotalSeconds;
        }
        finally
        {
            foreach (var channel in channels)
            {
                channel.Dispose();
            }
        }
    }

    private static (double Rate, double Ms) RawOnnxRate(byte[] model, float[] row, double seconds)
    {
        using var sessionOptions = LoadedModel.CreateCpuSessionOptions(new ModelOptions());
        using var session = new InferenceSession(model, sessionOptions);
        using var options = new RunOptions();
        using var input = OrtValue.CreateTensorValueFromMemory(row, [1, row.Length]);
        for (var i = 0; i < 5; i++)
        {
            using var warm = session.Run(options, ["x"], [input], ["y"]);
        }

        var count = 0L;
        var started = Stopwatch.GetTimestamp();
        var until = started + (long)(seconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < until)
        {
            using var results = session.Run(options, ["x"], [input], ["y"]);
            count++;
        }

        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        return (count / elapsed, elapsed * 1000 / count);
    }
}
