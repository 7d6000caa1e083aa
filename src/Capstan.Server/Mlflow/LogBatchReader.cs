using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text.Json;
using Capstan.Core;
using Capstan.Core.Tracking;

namespace Capstan.Server.Mlflow;

/// <summary>
/// The ingest hot path: reads a <c>runs/log-batch</c> body with one <see cref="Utf8JsonReader"/> pass
/// straight into Core's <see cref="Metric"/> array. No intermediate wire objects, and metric keys that
/// repeat within a batch (the usual case: a few series, many steps) share one string.
/// Accepts protobuf's JSON mapping: int64 and double fields as numbers or strings, "NaN"/"Infinity".
/// </summary>
internal static class LogBatchReader
{
    private const int MaxCachedKeys = 32;

    public readonly record struct Result(string? RunId, Metric[]? Metrics, Param[]? Params, Tag[]? Tags);

    /// <summary>Buffers the request body from the pipe (already bounded by Kestrel's body size limit) and parses it.</summary>
    public static async ValueTask<Result> ReadAsync(PipeReader body, CancellationToken cancellationToken)
    {
        while (true)
        {
            var read = await body.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (read.IsCompleted || read.IsCanceled)
            {
                try
                {
                    return Parse(read.Buffer);
                }
                finally
                {
                    body.AdvanceTo(read.Buffer.End);
                }
            }

            body.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    public static Result Parse(ReadOnlySequence<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new CapstanException(ErrorCode.BadRequest, "The request body must be a JSON object.");
        }

        string? runId = null;
        Metric[]? metrics = null;
        Param[]? parameters = null;
        Tag[]? tags = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("run_id"u8))
            {
                reader.Read();
                runId = ReadString(ref reader, "run_id");
            }
            else if (reader.ValueTextEquals("metrics"u8))
            {
                reader.Read();
                metrics = ReadMetrics(ref reader);
            }
            else if (reader.ValueTextEquals("params"u8))
            {
                reader.Read();
                parameters = ReadPairs(ref reader, "params", LogBatch.MaxParams, static (key, value) => new Param(key, value));
            }
            else if (reader.ValueTextEquals("tags"u8))
            {
                reader.Read();
                tags = ReadPairs(ref reader, "tags", LogBatch.MaxTags, static (key, value) => new Tag(key, value));
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return new Result(runId, metrics, parameters, tags);
    }

    private static Metric[]? ReadMetrics(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        ExpectArray(ref reader, "metrics");
        var metrics = new List<Metric>(LogBatch.MaxMetrics);
        var keys = new KeyCache();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var index = metrics.Count;
            CheckLimit(index, LogBatch.MaxMetrics, "metrics");
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw Invalid($"metrics[{index}]", "an object");
            }

            string? key = null;
            double? value = null;
            long? timestamp = null;
            long step = 0;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("key"u8))
                {
                    reader.Read();
                    key = reader.TokenType == JsonTokenType.String ? keys.Get(ref reader)
                        : reader.TokenType == JsonTokenType.Null ? null
                        : throw Invalid($"metrics[{index}].key", "a string");
                }
                else if (reader.ValueTextEquals("value"u8))
                {
                    reader.Read();
                    value = ReadDouble(ref reader, index, "value");
                }
                else if (reader.ValueTextEquals("timestamp"u8))
                {
                    reader.Read();
                    timestamp = ReadInt64(ref reader, index, "timestamp");
                }
                else if (reader.ValueTextEquals("step"u8))
                {
                    reader.Read();
                    step = ReadInt64(ref reader, index, "step") ?? 0;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (string.IsNullOrEmpty(key))
            {
                throw Missing($"metrics[{index}].key");
            }

            metrics.Add(new Metric(
                key,
                value ?? throw Missing($"metrics[{index}].value"),
                timestamp ?? throw Missing($"metrics[{index}].timestamp"),
                step));
        }

        return [.. metrics];
    }

    private static T[]? ReadPairs<T>(ref Utf8JsonReader reader, string field, int limit, Func<string, string, T> create)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        ExpectArray(ref reader, field);
        var items = new List<T>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var index = items.Count;
            CheckLimit(index, limit, field);
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw Invalid($"{field}[{index}]", "an object");
            }

            string? key = null;
            string? value = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("key"u8))
                {
                    reader.Read();
                    key = ReadString(ref reader, $"{field}[{index}].key");
                }
                else if (reader.ValueTextEquals("value"u8))
                {
                    reader.Read();
                    value = ReadString(ref reader, $"{field}[{index}].value");
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            items.Add(create(string.IsNullOrEmpty(key) ? throw Missing($"{field}[{index}].key") : key, value ?? string.Empty));
        }

        return [.. items];
    }

    /// <summary>Stops reading at the first item over MLflow's limit, so an oversized body costs no more than a full one.</summary>
    private static void CheckLimit(int count, int limit, string field)
    {
        if (count >= limit)
        {
            throw CapstanException.Invalid(
                $"A batch logging request can contain at most {limit} {field}, but got more. Split the batch.");
        }
    }

    private static void ExpectArray(ref Utf8JsonReader reader, string field)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw Invalid(field, "a list");
        }
    }

    private static string? ReadString(ref Utf8JsonReader reader, string field) => reader.TokenType switch
    {
        JsonTokenType.String => reader.GetString(),
        JsonTokenType.Null => null,
        _ => throw Invalid(field, "a string"),
    };

    private static double? ReadDouble(ref Utf8JsonReader reader, int index, string name)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Number when reader.TryGetDouble(out var number):
                return number;
            case JsonTokenType.String:
                var text = reader.GetString();
                return text switch
                {
                    "NaN" => double.NaN,
                    "Infinity" => double.PositiveInfinity,
                    "-Infinity" => double.NegativeInfinity,
                    _ when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) => parsed,
                    _ => throw Invalid($"metrics[{index}].{name}", "a number"),
                };
            case JsonTokenType.Null:
                return null;
            default:
                throw Invalid($"metrics[{index}].{name}", "a number");
        }
    }

    private static long? ReadInt64(ref Utf8JsonReader reader, int index, string name)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Number when reader.TryGetInt64(out var number):
                return number;
            case JsonTokenType.Number when reader.TryGetDouble(out var real) && real == Math.Floor(real) && Math.Abs(real) < 9.2e18:
                return (long)real;
            case JsonTokenType.String when long.TryParse(reader.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed):
                return parsed;
            case JsonTokenType.Null:
                return null;
            default:
                throw Invalid($"metrics[{index}].{name}", "an integer");
        }
    }

    private static CapstanException Invalid(string field, string expected) =>
        CapstanException.Invalid($"Invalid value for parameter '{field}': expected {expected}.");

    private static CapstanException Missing(string field) =>
        CapstanException.Invalid($"Missing value for required parameter '{field}'.");

    /// <summary>The distinct metric keys seen so far in one batch, so each is decoded once.</summary>
    private struct KeyCache
    {
        private byte[][]? _utf8;
        private string[]? _strings;
        private int _count;

        public string Get(ref Utf8JsonReader reader)
        {
            if (reader.HasValueSequence || reader.ValueIsEscaped)
            {
                return reader.GetString()!;
            }

            var span = reader.ValueSpan;
            for (var i = 0; i < _count; i++)
            {
                if (span.SequenceEqual(_utf8![i]))
                {
                    return _strings![i];
                }
            }

            var value = reader.GetString()!;
            if (_count < MaxCachedKeys)
            {
                _utf8 ??= new byte[MaxCachedKeys][];
                _strings ??= new string[MaxCachedKeys];
                _utf8[_count] = span.ToArray();
                _strings[_count] = value;
                _count++;
            }

            return value;
        }
    }
}
