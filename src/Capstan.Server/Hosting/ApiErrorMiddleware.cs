using System.Text.Json;
using Capstan.Core;
using Capstan.Core.Resources;
using Capstan.Server.Mlflow;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Capstan.Server.Hosting;

/// <summary>
/// Turns failures into each API's wire format: MLflow's <c>{"error_code","message"}</c> under the
/// MLflow prefixes, RFC 7807 problem details (with <c>errorCode</c>) everywhere else.
/// </summary>
internal sealed class ApiErrorMiddleware(RequestDelegate next, ILogger<ApiErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer.
        }
        catch (Exception exception) when (!context.Response.HasStarted)
        {
            var (code, message, status) = Classify(exception);
            if (code == ErrorCode.Internal)
            {
                Log.UnhandledException(logger, context.Request.Method, context.Request.Path, exception);
            }

            context.Response.Clear();
            if (exception is ResourceValidationException invalid && !IsMlflowPath(context.Request.Path))
            {
                await WriteValidationProblemAsync(context, invalid);
            }
            else if (IsMlflowPath(context.Request.Path))
            {
                await MlflowRequests.WriteErrorAsync(context, status ?? MlflowRequests.StatusFor(code), ErrorCodes.ToWire(code), message);
            }
            else
            {
                await TypedResults.Problem(
                    detail: message,
                    statusCode: status ?? NativeStatusFor(code),
                    extensions: new Dictionary<string, object?> { ["errorCode"] = ErrorCodes.ToWire(code) })
                    .ExecuteAsync(context);
            }
        }
    }

    /// <summary>A 422 listing every error with its file, line, column and field path.</summary>
    private static Task WriteValidationProblemAsync(HttpContext context, ResourceValidationException invalid) =>
        TypedResults.Problem(
            detail: invalid.Message,
            statusCode: StatusCodes.Status422UnprocessableEntity,
            title: $"{invalid.Errors.Count} error(s) in the resources; nothing was applied",
            extensions: new Dictionary<string, object?>
            {
                ["errorCode"] = ErrorCodes.ToWire(invalid.Code),
                ["errors"] = invalid.Errors.Select(e => new Dictionary<string, object?>
                {
                    ["file"] = e.File,
                    ["line"] = e.Line,
                    ["column"] = e.Column,
                    ["fieldPath"] = e.FieldPath,
                    ["message"] = e.Message,
                }).ToList(),
            })
            .ExecuteAsync(context);

    public static bool IsMlflowPath(PathString path) =>
        path.StartsWithSegments("/api/2.0", StringComparison.Ordinal) || path.StartsWithSegments("/ajax-api/2.0", StringComparison.Ordinal);

    public static int NativeStatusFor(ErrorCode code) => code switch
    {
        ErrorCode.ResourceDoesNotExist => StatusCodes.Status404NotFound,
        ErrorCode.ResourceAlreadyExists or ErrorCode.InvalidState or ErrorCode.Conflict => StatusCodes.Status409Conflict,
        ErrorCode.Internal => StatusCodes.Status500InternalServerError,
        _ => StatusCodes.Status400BadRequest,
    };

    private static (ErrorCode Code, string Message, int? Status) Classify(Exception exception) => exception switch
    {
        CapstanException capstan => (capstan.Code, capstan.Message, null),
        JsonException json => FromJson(json),
        BadHttpRequestException { InnerException: JsonException json } => FromJson(json),
        BadHttpRequestException bad => (ErrorCode.BadRequest, bad.Message, bad.StatusCode),
        _ => (ErrorCode.Internal, "The server failed to process the request.", null),
    };

    private static (ErrorCode, string, int?) FromJson(JsonException exception)
    {
        var field = exception.Path is { Length: > 2 } path && path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : null;

        // The reader's own errors (bad syntax, truncated body) come wrapped; conversion errors do not.
        if (exception.InnerException is JsonException || field is null)
        {
            var where = exception.LineNumber is { } line ? $" (line {line + 1}, byte {exception.BytePositionInLine + 1})" : string.Empty;
            return (ErrorCode.BadRequest, $"Malformed JSON in the request body{where}.", StatusCodes.Status400BadRequest);
        }

        return (ErrorCode.InvalidParameterValue, $"Invalid value for parameter '{field}': expected {Expected(exception.Message)}.", null);
    }

    private static string Expected(string message) =>
        message.Contains("Double", StringComparison.Ordinal) || message.Contains("Single", StringComparison.Ordinal) ? "a number"
        : message.Contains("Int64", StringComparison.Ordinal) || message.Contains("Int32", StringComparison.Ordinal) ? "an integer"
        : message.Contains("Boolean", StringComparison.Ordinal) ? "true or false"
        : message.Contains("List", StringComparison.Ordinal) || message.Contains("[]", StringComparison.Ordinal) ? "a list"
        : message.Contains("String", StringComparison.Ordinal) ? "a string"
        : "an object";
}
