using System.Text.Json;
using Capstan.Core.Tracking;
using Microsoft.AspNetCore.Http;

namespace Capstan.Server.Mlflow;

/// <summary>
/// Writes the large MLflow responses (runs with their data, metric histories) straight to the
/// response pipe with a <see cref="Utf8JsonWriter"/>: no intermediate wire objects per metric, and the
/// output is flushed in chunks so a 100,000-point history never sits whole in memory.
/// Field names and omission rules match <see cref="MlflowJsonContext"/>'s messages.
/// </summary>
internal static class MlflowResponseWriter
{
    private const int FlushThreshold = 32 * 1024;

    private static readonly JsonEncodedText s_run = JsonEncodedText.Encode("run");
    private static readonly JsonEncodedText s_runs = JsonEncodedText.Encode("runs");
    private static readonly JsonEncodedText s_info = JsonEncodedText.Encode("info");
    private static readonly JsonEncodedText s_data = JsonEncodedText.Encode("data");
    private static readonly JsonEncodedText s_inputs = JsonEncodedText.Encode("inputs");
    private static readonly JsonEncodedText s_datasetInputs = JsonEncodedText.Encode("dataset_inputs");
    private static readonly JsonEncodedText s_dataset = JsonEncodedText.Encode("dataset");
    private static readonly JsonEncodedText s_runId = JsonEncodedText.Encode("run_id");
    private static readonly JsonEncodedText s_runUuid = JsonEncodedText.Encode("run_uuid");
    private static readonly JsonEncodedText s_runName = JsonEncodedText.Encode("run_name");
    private static readonly JsonEncodedText s_experimentId = JsonEncodedText.Encode("experiment_id");
    private static readonly JsonEncodedText s_userId = JsonEncodedText.Encode("user_id");
    private static readonly JsonEncodedText s_status = JsonEncodedText.Encode("status");
    private static readonly JsonEncodedText s_startTime = JsonEncodedText.Encode("start_time");
    private static readonly JsonEncodedText s_endTime = JsonEncodedText.Encode("end_time");
    private static readonly JsonEncodedText s_artifactUri = JsonEncodedText.Encode("artifact_uri");
    private static readonly JsonEncodedText s_lifecycleStage = JsonEncodedText.Encode("lifecycle_stage");
    private static readonly JsonEncodedText s_metrics = JsonEncodedText.Encode("metrics");
    private static readonly JsonEncodedText s_params = JsonEncodedText.Encode("params");
    private static readonly JsonEncodedText s_tags = JsonEncodedText.Encode("tags");
    private static readonly JsonEncodedText s_key = JsonEncodedText.Encode("key");
    private static readonly JsonEncodedText s_value = JsonEncodedText.Encode("value");
    private static readonly JsonEncodedText s_timestamp = JsonEncodedText.Encode("timestamp");
    private static readonly JsonEncodedText s_step = JsonEncodedText.Encode("step");
    private static readonly JsonEncodedText s_name = JsonEncodedText.Encode("name");
    private static readonly JsonEncodedText s_digest = JsonEncodedText.Encode("digest");
    private static readonly JsonEncodedText s_sourceType = JsonEncodedText.Encode("source_type");
    private static readonly JsonEncodedText s_source = JsonEncodedText.Encode("source");
    private static readonly JsonEncodedText s_schema = JsonEncodedText.Encode("schema");
    private static readonly JsonEncodedText s_profile = JsonEncodedText.Encode("profile");
    private static readonly JsonEncodedText s_nextPageToken = JsonEncodedText.Encode("next_page_token");

    public static async Task WriteRunAsync(HttpContext context, Run run)
    {
        var writer = Start(context);
        await using (writer.ConfigureAwait(false))
        {
            writer.WriteStartObject();
            writer.WritePropertyName(s_run);
            WriteRun(writer, run);
            writer.WriteEndObject();
            await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
        }
    }

    public static Task WriteRunsAsync(HttpContext context, Page<Run> page) => WritePageAsync(context, page, s_runs, WriteRun);

    public static Task WriteMetricHistoryAsync(HttpContext context, Page<Metric> page) => WritePageAsync(context, page, s_metrics, static (w, m) => WriteMetric(w, m));

    /// <summary>Writes <c>{"name": [items...], "next_page_token": ...}</c>, flushing in chunks so large pages stream.</summary>
    private static async Task WritePageAsync<T>(HttpContext context, Page<T> page, JsonEncodedText name, Action<Utf8JsonWriter, T> writeItem)
    {
        var writer = Start(context);
        await using (writer.ConfigureAwait(false))
        {
            writer.WriteStartObject();
            if (page.Items.Count > 0)
            {
                writer.WriteStartArray(name);
                foreach (var item in page.Items)
                {
                    writeItem(writer, item);
                    if (writer.BytesPending > FlushThreshold)
                    {
                        await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
                    }
                }

                writer.WriteEndArray();
            }

            WriteToken(writer, page.NextPageToken);
            writer.WriteEndObject();
            await writer.FlushAsync(context.RequestAborted).ConfigureAwait(false);
        }
    }

    private static Utf8JsonWriter Start(HttpContext context)
    {
        context.Response.ContentType = "application/json";
        return new Utf8JsonWriter(context.Response.BodyWriter);
    }

    private static void WriteToken(Utf8JsonWriter writer, string? token)
    {
        if (!string.IsNullOrEmpty(token))
        {
            writer.WriteString(s_nextPageToken, token);
        }
    }

    private static void WriteRun(Utf8JsonWriter writer, Run run)
    {
        writer.WriteStartObject();

        var info = run.Info;
        writer.WriteStartObject(s_info);
        writer.WriteString(s_runId, info.RunId);
        writer.WriteString(s_runUuid, info.RunId);
        WriteOptional(writer, s_runName, info.RunName);
        writer.WriteString(s_experimentId, info.ExperimentId);
        WriteOptional(writer, s_userId, info.UserId);
        writer.WriteString(s_status, MlflowMapping.ToWire(info.Status));
        writer.WriteNumber(s_startTime, info.StartTime);
        if (info.EndTime is { } endTime)
        {
            writer.WriteNumber(s_endTime, endTime);
        }

        writer.WriteString(s_artifactUri, info.ArtifactUri);
        writer.WriteString(s_lifecycleStage, MlflowMapping.ToWire(info.LifecycleStage));
        writer.WriteEndObject();

        writer.WriteStartObject(s_data);
        if (run.Data.Metrics is { Count: > 0 } metrics)
        {
            writer.WriteStartArray(s_metrics);
            foreach (var metric in metrics)
            {
                WriteMetric(writer, metric);
            }

            writer.WriteEndArray();
        }

        if (run.Data.Params is { Count: > 0 } parameters)
        {
            writer.WriteStartArray(s_params);
            foreach (var param in parameters)
            {
                WriteKeyValue(writer, param.Key, param.Value);
            }

            writer.WriteEndArray();
        }

        WriteTags(writer, run.Data.Tags);
        writer.WriteEndObject();

        writer.WriteStartObject(s_inputs);
        if (run.Inputs is { Count: > 0 } inputs)
        {
            writer.WriteStartArray(s_datasetInputs);
            foreach (var input in inputs)
            {
                writer.WriteStartObject();
                WriteTags(writer, input.Tags);
                writer.WriteStartObject(s_dataset);
                writer.WriteString(s_name, input.Dataset.Name);
                writer.WriteString(s_digest, input.Dataset.Digest);
                writer.WriteString(s_sourceType, input.Dataset.SourceType);
                writer.WriteString(s_source, input.Dataset.Source);
                WriteOptional(writer, s_schema, input.Dataset.Schema);
                WriteOptional(writer, s_profile, input.Dataset.Profile);
                writer.WriteEndObject();
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static void WriteTags(Utf8JsonWriter writer, IReadOnlyList<Tag>? tags)
    {
        if (tags is { Count: > 0 })
        {
            writer.WriteStartArray(s_tags);
            foreach (var tag in tags)
            {
                WriteKeyValue(writer, tag.Key, tag.Value);
            }

            writer.WriteEndArray();
        }
    }

    private static void WriteKeyValue(Utf8JsonWriter writer, string key, string value)
    {
        writer.WriteStartObject();
        writer.WriteString(s_key, key);
        writer.WriteString(s_value, value);
        writer.WriteEndObject();
    }

    private static void WriteMetric(Utf8JsonWriter writer, in Metric metric)
    {
        writer.WriteStartObject();
        writer.WriteString(s_key, metric.Key);
        if (double.IsFinite(metric.Value))
        {
            writer.WriteNumber(s_value, metric.Value);
        }
        else
        {
            // Protobuf's JSON mapping spells non-finite doubles as strings.
            writer.WriteString(s_value, double.IsNaN(metric.Value) ? "NaN" : metric.Value > 0 ? "Infinity" : "-Infinity");
        }

        writer.WriteNumber(s_timestamp, metric.Timestamp);
        writer.WriteNumber(s_step, metric.Step);
        writer.WriteEndObject();
    }

    private static void WriteOptional(Utf8JsonWriter writer, JsonEncodedText name, string? value)
    {
        if (value is not null)
        {
            writer.WriteString(name, value);
        }
    }
}
