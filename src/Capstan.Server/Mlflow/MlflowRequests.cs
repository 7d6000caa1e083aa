using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Capstan.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Capstan.Server.Mlflow;

/// <summary>Reads MLflow request messages from a JSON body or, for GET, from the query string.</summary>
internal static class MlflowRequests
{
    private static readonly byte[] s_emptyObject = "{}"u8.ToArray();

    /// <summary>Fields that are repeated in the protos, so a query string may list them several times.</summary>
    private static readonly HashSet<string> s_repeatedFields = new(StringComparer.Ordinal)
    {
        "order_by", "experiment_ids", "stages",
    };

    public static async ValueTask<T> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> typeInfo)
        where T : class, new()
    {
        var request = context.Request;
        if (!HttpMethods.IsGet(request.Method) && HasBody(context))
        {
            return await JsonSerializer.DeserializeAsync(request.Body, typeInfo, context.RequestAborted).ConfigureAwait(false)
                ?? throw new CapstanException(ErrorCode.BadRequest, "The request body must be a JSON object, not null.");
        }

        return request.Query.Count == 0 ? new T() : FromQuery(request.Query, typeInfo);
    }

    private static bool HasBody(HttpContext context) =>
        context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? context.Request.ContentLength > 0;

    private static T FromQuery<T>(IQueryCollection query, JsonTypeInfo<T> typeInfo)
    {
        // Protobuf's JSON mapping reads numbers from strings too, so the query becomes a JSON object of strings.
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var (key, values) in query)
            {
                if (s_repeatedFields.Contains(key))
                {
                    writer.WriteStartArray(key);
                    foreach (var value in values)
                    {
                        writer.WriteStringValue(value);
                    }

                    writer.WriteEndArray();
                }
                else
                {
                    writer.WriteString(key, values.Count > 0 ? values[0] : null);
                }
            }

            writer.WriteEndObject();
        }

        return JsonSerializer.Deserialize(buffer.WrittenSpan, typeInfo)!;
    }

    public static string Required(string? value, string field) =>
        string.IsNullOrEmpty(value)
            ? throw CapstanException.Invalid($"Missing value for required parameter '{field}'. See the API docs for more information about request parameters.")
            : value;

    public static T Required<T>(T? value, string field)
        where T : struct =>
        value ?? throw CapstanException.Invalid($"Missing value for required parameter '{field}'. See the API docs for more information about request parameters.");

    public static int MaxResults(long? value, int defaultValue, string field = "max_results") => value switch
    {
        null => defaultValue,
        < 1 or > int.MaxValue => throw CapstanException.Invalid($"Invalid value {value} for parameter '{field}': it must be a positive integer."),
        _ => (int)value.Value,
    };

    public static Task WriteAsync<T>(HttpContext context, T value, JsonTypeInfo<T> typeInfo) =>
        context.Response.WriteAsJsonAsync(value, typeInfo, contentType: "application/json", context.RequestAborted);

    /// <summary>MLflow answers a successful write with an empty object.</summary>
    public static Task WriteEmptyAsync(HttpContext context)
    {
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = s_emptyObject.Length;
        return context.Response.Body.WriteAsync(s_emptyObject, context.RequestAborted).AsTask();
    }

    public static Task WriteErrorAsync(HttpContext context, int status, string errorCode, string message)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(
            new ErrorResponse { ErrorCode = errorCode, Message = message },
            MlflowJsonContext.Default.ErrorResponse,
            contentType: "application/json",
            context.RequestAborted);
    }

    /// <summary>MLflow's HTTP status for an error code: not-found is 404, server faults 500, the rest 400.</summary>
    public static int StatusFor(ErrorCode code) => code switch
    {
        ErrorCode.ResourceDoesNotExist => StatusCodes.Status404NotFound,
        ErrorCode.Conflict => StatusCodes.Status409Conflict,
        ErrorCode.Internal => StatusCodes.Status500InternalServerError,
        _ => StatusCodes.Status400BadRequest,
    };
}
