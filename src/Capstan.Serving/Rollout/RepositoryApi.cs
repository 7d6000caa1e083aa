using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Capstan.Serving.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Capstan.Serving.Rollout;

/// <summary>
/// The model repository extension of the protocol (Triton's <c>v2/repository</c>): <c>POST /v2/repository/index</c> lists
/// the loaded versions, <c>POST /v2/repository/models/{name}/load</c> rolls a model to a new plan, its parameters being
/// <c>model</c>, <c>canary_model</c>, <c>canary_traffic_percent</c>, <c>max_batch_size</c>, <c>max_latency_ms</c> and
/// <c>timeout_seconds</c>. Loading changes what the server runs, so it needs the bearer token the server was started with;
/// without one configured the endpoint answers 403.
/// </summary>
public static class RepositoryApi
{
    /// <summary>The variable <c>capstan serve</c> reads the repository token from (the control plane sets it for the servers it starts).</summary>
    public const string TokenVariable = "CAPSTAN_SERVING_TOKEN";

    public static IEndpointRouteBuilder MapRepositoryApi(this IEndpointRouteBuilder endpoints, ModelRollout rollout, ModelOptions baseOptions, string? token)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(rollout);
        var repository = endpoints.MapGroup("/v2/repository");
        repository.MapPost("/index", (HttpContext context) => WriteIndexAsync(context, rollout.Repository)).WithName("OipRepositoryIndex");
        repository.MapPost("/models/{model}/load", (HttpContext context, string model) => LoadAsync(context, rollout, baseOptions, token, model)).WithName("OipRepositoryLoad");
        return endpoints;
    }

    private static async Task WriteIndexAsync(HttpContext context, ModelRepository repository)
    {
        await WriteJsonAsync(context, StatusCodes.Status200OK, writer =>
        {
            writer.WriteStartArray();
            foreach (var name in repository.ModelNames.Order(StringComparer.Ordinal))
            {
                var traffic = repository.TrafficOf(name);
                foreach (var version in repository.VersionsOf(name))
                {
                    writer.WriteStartObject();
                    writer.WriteString("name"u8, name);
                    writer.WriteString("version"u8, version);
                    writer.WriteString("state"u8, "READY");
                    writer.WriteNumber("traffic_percent"u8, traffic.FirstOrDefault(t => t.Version == version)?.Percent ?? 0);
                    writer.WriteEndObject();
                }
            }

            writer.WriteEndArray();
        });
    }

    private static async Task LoadAsync(HttpContext context, ModelRollout rollout, ModelOptions baseOptions, string? token, string model)
    {
        if (string.IsNullOrEmpty(token))
        {
            await WriteErrorAsync(context, StatusCodes.Status403Forbidden, $"Loading models is off: start the server with {TokenVariable} set to allow it.");
            return;
        }

        if (!Authorized(context.Request.Headers.Authorization.ToString(), token))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await WriteErrorAsync(context, StatusCodes.Status401Unauthorized, "Loading models needs the server's bearer token.");
            return;
        }

        ServingPlan plan;
        try
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            plan = ReadPlan(body.RootElement, model, baseOptions);
        }
        catch (JsonException ex)
        {
            await WriteErrorAsync(context, StatusCodes.Status400BadRequest, $"Malformed JSON: {ex.Message}");
            return;
        }
        catch (FormatException ex)
        {
            await WriteErrorAsync(context, StatusCodes.Status400BadRequest, ex.Message);
            return;
        }

        IReadOnlyList<ServedVersion> served;
        try
        {
            served = await rollout.ApplyAsync(plan, context.RequestAborted);
        }
        catch (Exception ex) when (ex is InvalidOperationException or Core.CapstanException or IOException)
        {
            await WriteErrorAsync(context, StatusCodes.Status400BadRequest, $"Cannot load model '{model}': {ex.Message}");
            return;
        }

        await WriteJsonAsync(context, StatusCodes.Status200OK, writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("name"u8, model);
            writer.WriteStartArray("traffic"u8);
            foreach (var version in served)
            {
                writer.WriteStartObject();
                writer.WriteString("tag"u8, version.Tag);
                writer.WriteString("model"u8, version.Model);
                writer.WriteString("version"u8, version.Version);
                writer.WriteNumber("percent"u8, version.Percent);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        });
    }

    private static ServingPlan ReadPlan(JsonElement root, string model, ModelOptions baseOptions)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("parameters", out var parameters) || parameters.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException("The body must be an object with 'parameters' (model, canary_model, canary_traffic_percent, ...).");
        }

        var reference = String(parameters, "model") ?? throw new FormatException("Parameter 'model' is required: a file, models:/NAME/VERSION or models:/NAME@ALIAS.");
        var options = baseOptions;
        if (Integer(parameters, "max_batch_size") is { } maxBatch)
        {
            options = options with { MaxBatchSize = Math.Max(1, maxBatch) };
        }

        if (Integer(parameters, "max_latency_ms") is { } latency)
        {
            options = options with { MaxLatency = TimeSpan.FromMilliseconds(Math.Max(0, latency)) };
        }

        if (Integer(parameters, "timeout_seconds") is { } timeout)
        {
            options = options with { RequestTimeout = TimeSpan.FromSeconds(Math.Max(1, timeout)) };
        }

        var percent = Integer(parameters, "canary_traffic_percent") ?? 0;
        if (percent is < 0 or > 100)
        {
            throw new FormatException($"Parameter 'canary_traffic_percent' must be between 0 and 100, got {percent}.");
        }

        return new ServingPlan { ModelName = model, Model = reference, Canary = String(parameters, "canary_model"), CanaryTrafficPercent = percent, Options = options };
    }

    private static string? String(JsonElement parameters, string name) =>
        !parameters.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null ? null
        : value.ValueKind == JsonValueKind.String ? value.GetString()
        : throw new FormatException($"Parameter '{name}' must be a string.");

    private static int? Integer(JsonElement parameters, string name) =>
        !parameters.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null ? null
        : value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) ? number
        : throw new FormatException($"Parameter '{name}' must be an integer.");

    private static bool Authorized(string header, string token)
    {
        const string Scheme = "Bearer ";
        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var given = Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim());
        return CryptographicOperations.FixedTimeEquals(given, Encoding.UTF8.GetBytes(token));
    }

    private static Task WriteErrorAsync(HttpContext context, int status, string message) =>
        WriteJsonAsync(context, status, writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("error"u8, message);
            writer.WriteEndObject();
        });

    private static async Task WriteJsonAsync(HttpContext context, int status, Action<Utf8JsonWriter> write)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer);
        }

        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }
}
