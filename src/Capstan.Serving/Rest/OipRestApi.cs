using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text.Json;
using Capstan.Serving.Inference;
using Capstan.Serving.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Capstan.Serving.Rest;

/// <summary>The Open Inference Protocol v2 over REST: health, server and model metadata, readiness and infer.</summary>
public static class OipRestApi
{
    /// <summary>The binary-data extension's header: how many body bytes are the JSON part.</summary>
    public const string HeaderContentLength = "Inference-Header-Content-Length";

    public const string ServerName = "capstan";

    public static readonly IReadOnlyList<string> Extensions = ["binary_tensor_data", "statistics"];

    public static IEndpointRouteBuilder MapOipRestApi(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var v2 = endpoints.MapGroup("/v2");
        v2.MapGet("", WriteServerMetadata).WithName("OipServerMetadata");
        v2.MapGet("/health/live", () => Results.Ok()).WithName("OipLive");
        v2.MapGet("/health/ready", () => Results.Ok()).WithName("OipReady");
        v2.MapGet("/models/{model}", (HttpContext c, string model, InferenceService s) => WriteModelMetadata(c, s, model, null)).WithName("OipModelMetadata");
        v2.MapGet("/models/{model}/versions/{version}", (HttpContext c, string model, string version, InferenceService s) => WriteModelMetadata(c, s, model, version)).WithName("OipModelVersionMetadata");
        v2.MapGet("/models/{model}/ready", (HttpContext c, string model, InferenceService s) => Ready(c, s, model, null)).WithName("OipModelReady");
        v2.MapGet("/models/{model}/versions/{version}/ready", (HttpContext c, string model, string version, InferenceService s) => Ready(c, s, model, version)).WithName("OipModelVersionReady");
        v2.MapOipStatistics();

        // The hot path as plain request delegates: no per-request service scope or parameter binding.
        var inference = endpoints.ServiceProvider.GetRequiredService<InferenceService>();
        v2.MapPost("/models/{model}/infer", c => InferAsync(c, inference, RouteValue(c, "model"), null)).WithName("OipInfer");
        v2.MapPost("/models/{model}/versions/{version}/infer", c => InferAsync(c, inference, RouteValue(c, "model"), RouteValue(c, "version"))).WithName("OipVersionInfer");
        return endpoints;
    }

    private static string RouteValue(HttpContext context, string name) => (string)context.Request.RouteValues[name]!;

    private static async Task WriteServerMetadata(HttpContext context)
    {
        context.Response.ContentType = "application/json";
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("name"u8, ServerName);
            writer.WriteString("version"u8, typeof(OipRestApi).Assembly.GetName().Version?.ToString() ?? "0");
            writer.WriteStartArray("extensions"u8);
            foreach (var extension in Extensions)
            {
                writer.WriteStringValue(extension);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }

    private static async Task WriteModelMetadata(HttpContext context, InferenceService service, string model, string? version)
    {
        ModelMetadata metadata;
        try
        {
            metadata = service.GetMetadata(model, version);
        }
        catch (InferenceException ex)
        {
            await WriteErrorAsync(context, ex);
            return;
        }

        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("name"u8, metadata.Name);
            writer.WriteStartArray("versions"u8);
            foreach (var v in service.Repository.VersionsOf(metadata.Name))
            {
                writer.WriteStringValue(v);
            }

            writer.WriteEndArray();
            writer.WriteString("platform"u8, ModelMetadata.Platform);
            WriteTensors(writer, "inputs"u8, metadata.Inputs);
            WriteTensors(writer, "outputs"u8, metadata.Outputs);
            writer.WriteStartObject("parameters"u8);
            writer.WriteString("version"u8, metadata.Version);
            writer.WriteString("execution_provider"u8, metadata.ExecutionProvider);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        context.Response.ContentType = "application/json";
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }

    private static void WriteTensors(Utf8JsonWriter writer, ReadOnlySpan<byte> property, IReadOnlyList<TensorMetadata> tensors)
    {
        writer.WriteStartArray(property);
        foreach (var tensor in tensors)
        {
            writer.WriteStartObject();
            writer.WriteString("name"u8, tensor.Name);
            writer.WriteString("datatype"u8, tensor.Datatype.Name());
            writer.WriteStartArray("shape"u8);
            foreach (var dim in tensor.Shape)
            {
                writer.WriteNumberValue(dim);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    private static Task Ready(HttpContext context, InferenceService service, string model, string? version)
    {
        context.Response.StatusCode = service.IsReady(model, version) ? StatusCodes.Status200OK : StatusCodes.Status404NotFound;
        return Task.CompletedTask;
    }

    private static async Task InferAsync(HttpContext context, InferenceService service, string model, string? version)
    {
        var body = await ReadBodyAsync(context.Request.BodyReader, context.Request.ContentLength, context.RequestAborted);
        try
        {
            var jsonLength = body.Length;
            if (context.Request.Headers.TryGetValue(HeaderContentLength, out var header))
            {
                if (!int.TryParse(header.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out jsonLength) || jsonLength > body.Length)
                {
                    await WriteErrorAsync(context, InferenceException.Invalid($"{HeaderContentLength} '{header}' is not a length within the {body.Length}-byte body."));
                    return;
                }
            }

            InferRequest request;
            try
            {
                request = OipJsonRequestReader.Read(body.Span[..jsonLength], body.Span[jsonLength..]);
            }
            catch (InferenceException ex)
            {
                await WriteErrorAsync(context, ex);
                return;
            }

            using (request)
            {
                InferResponse response;
                try
                {
                    response = await service.InferAsync(model, version, request, context.RequestAborted);
                }
                catch (InferenceException ex)
                {
                    await WriteErrorAsync(context, ex);
                    return;
                }

                using (response)
                {
                    context.Features.Get<InferenceTimingFeature>()?.Record(response.OnnxMicroseconds);
                    await WriteResponseAsync(context, request, response);
                }
            }
        }
        finally
        {
            body.Dispose();
        }
    }

    private static async Task WriteResponseAsync(HttpContext context, InferRequest request, InferResponse response)
    {
        var json = new PooledBufferWriter();
        try
        {
            var anyBinary = OipJsonResponseWriter.Write(json, request, response);
            var jsonLength = json.WrittenCount;
            if (anyBinary)
            {
                foreach (var output in response.Outputs)
                {
                    if (OipJsonResponseWriter.IsBinary(request, output.Name))
                    {
                        OipJsonResponseWriter.WriteBinary(json, output);
                    }
                }

                context.Response.Headers[HeaderContentLength] = jsonLength.ToString(CultureInfo.InvariantCulture);
                context.Response.ContentType = "application/octet-stream";
            }
            else
            {
                context.Response.ContentType = "application/json";
            }

            context.Response.ContentLength = json.WrittenCount;
            await context.Response.Body.WriteAsync(json.WrittenMemory, context.RequestAborted);
        }
        finally
        {
            json.Dispose();
        }
    }

    internal static async Task WriteErrorAsync(HttpContext context, InferenceException error)
    {
        context.Response.StatusCode = error.Kind switch
        {
            InferenceErrorKind.NotFound => StatusCodes.Status404NotFound,
            InferenceErrorKind.QueueFull => StatusCodes.Status429TooManyRequests,
            InferenceErrorKind.Timeout or InferenceErrorKind.Unavailable => StatusCodes.Status503ServiceUnavailable,
            _ => StatusCodes.Status400BadRequest,
        };
        if (error.Kind is InferenceErrorKind.QueueFull or InferenceErrorKind.Timeout or InferenceErrorKind.Unavailable)
        {
            context.Response.Headers.RetryAfter = "1";
        }

        context.Response.ContentType = "application/json";
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("error"u8, error.Message);
            writer.WriteEndObject();
        }

        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }

    private const long MaxPresizedBody = 1 << 20;

    /// <summary>Reads the whole body into one pooled buffer.</summary>
    private static async Task<PooledBufferWriter> ReadBodyAsync(PipeReader reader, long? contentLength, CancellationToken cancellationToken)
    {
        // Sized from Content-Length up front (bounded, so a lying header cannot reserve much), not grown by doubling and copying.
        var body = new PooledBufferWriter(contentLength is > 0 and <= MaxPresizedBody ? (int)contentLength.Value : 4096);
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            foreach (var segment in result.Buffer)
            {
                body.Write(segment.Span);
            }

            reader.AdvanceTo(result.Buffer.End);

            // With a Content-Length, stop as soon as it is all here rather than waiting for one more read to say so.
            if (result.IsCompleted || (contentLength is { } length && body.WrittenCount >= length))
            {
                return body;
            }
        }
    }
}

/// <summary>An <see cref="IBufferWriter{T}"/> over an <see cref="ArrayPool{T}"/> buffer.</summary>
internal sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private byte[] _buffer;

    public PooledBufferWriter(int initialCapacity = 4096) => _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(initialCapacity, 1));

    public int WrittenCount { get; private set; }

    public int Length => WrittenCount;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, WrittenCount);

    public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, WrittenCount);

    public void Advance(int count) => WrittenCount += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(WrittenCount);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(WrittenCount);
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Ensure(int sizeHint)
    {
        var needed = WrittenCount + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length)
        {
            return;
        }

        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
        _buffer.AsSpan(0, WrittenCount).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }
}

/// <summary>
/// Opt-in per request: middleware that sets this feature learns how long ONNX Runtime's Run took,
/// so the time the server spends outside the model can be measured (the serving benchmark does).
/// </summary>
public sealed class InferenceTimingFeature
{
    public double OnnxMicroseconds { get; private set; }

    internal void Record(double microseconds) => OnnxMicroseconds = microseconds;
}
