using System.Buffers;
using System.Text.Json;
using Capstan.Serving.Inference;
using Capstan.Serving.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Capstan.Serving.Rest;

/// <summary>
/// Triton's statistics extension over REST, which tritonclient's <c>get_inference_statistics</c> and perf_analyzer read:
/// <c>GET /v2/models[/{m}[/versions/{v}]]/stats</c> answers <c>{"model_stats": [...]}</c> for every loaded version that
/// matches, with counts and cumulative nanoseconds since each version loaded.
/// </summary>
internal static class OipStatisticsApi
{
    public static void MapOipStatistics(this RouteGroupBuilder v2)
    {
        v2.MapGet("/models/stats", (HttpContext c, InferenceService s) => WriteAsync(c, s, null, null)).WithName("OipStatistics");
        v2.MapGet("/models/{model}/stats", (HttpContext c, string model, InferenceService s) => WriteAsync(c, s, model, null)).WithName("OipModelStatistics");
        v2.MapGet("/models/{model}/versions/{version}/stats", (HttpContext c, string model, string version, InferenceService s) => WriteAsync(c, s, model, version)).WithName("OipModelVersionStatistics");
    }

    private static async Task WriteAsync(HttpContext context, InferenceService service, string? model, string? version)
    {
        IReadOnlyList<(ModelMetadata Metadata, ModelStatistics Statistics)> found;
        try
        {
            found = service.Repository.StatisticsOf(model, version);
        }
        catch (InferenceException ex)
        {
            await OipRestApi.WriteErrorAsync(context, ex);
            return;
        }

        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("model_stats"u8);
            foreach (var (metadata, statistics) in found)
            {
                Write(writer, metadata, statistics);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        context.Response.ContentType = "application/json";
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }

    private static void Write(Utf8JsonWriter writer, ModelMetadata metadata, ModelStatistics statistics)
    {
        writer.WriteStartObject();
        writer.WriteString("name"u8, metadata.Name);
        writer.WriteString("version"u8, metadata.Version);
        writer.WriteNumber("last_inference"u8, statistics.LastInference);
        writer.WriteNumber("inference_count"u8, statistics.InferenceCount);
        writer.WriteNumber("execution_count"u8, statistics.ExecutionCount);
        writer.WriteStartObject("inference_stats"u8);
        Duration(writer, "success"u8, statistics.Success);
        Duration(writer, "fail"u8, statistics.Fail);
        Duration(writer, "queue"u8, statistics.Queue);
        Duration(writer, "compute_input"u8, statistics.ComputeInput);
        Duration(writer, "compute_infer"u8, statistics.ComputeInfer);
        Duration(writer, "compute_output"u8, statistics.ComputeOutput);
        writer.WriteEndObject();
        writer.WriteStartArray("batch_stats"u8);
        foreach (var batch in statistics.Batches)
        {
            writer.WriteStartObject();
            writer.WriteNumber("batch_size"u8, batch.BatchSize);
            Duration(writer, "compute_input"u8, batch.ComputeInput);
            Duration(writer, "compute_infer"u8, batch.ComputeInfer);
            Duration(writer, "compute_output"u8, batch.ComputeOutput);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void Duration(Utf8JsonWriter writer, ReadOnlySpan<byte> name, DurationStat stat)
    {
        writer.WriteStartObject(name);
        writer.WriteNumber("count"u8, stat.Count);
        writer.WriteNumber("ns"u8, stat.Nanoseconds);
        writer.WriteEndObject();
    }
}
