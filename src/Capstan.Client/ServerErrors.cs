using System.Net;
using System.Text.Json;
using Capstan.Core;
using Capstan.Core.Resources;

namespace Capstan.Client;

/// <summary>
/// Turns a server's problem details (or MLflow error, or any non-success answer) back into the
/// exception the embedded store would have thrown: a <see cref="CapstanException"/> with the same code,
/// or a <see cref="ResourceValidationException"/> with every error of a 422.
/// </summary>
internal static class ServerErrors
{
    public static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        string text;
        try
        {
            text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            text = string.Empty;
        }

        string? wire = null;
        string? message = null;
        if (text.Length > 0 && text.TrimStart().StartsWith('{'))
        {
            try
            {
                using var document = JsonDocument.Parse(text);
                var root = document.RootElement;
                wire = ReadString(root, "errorCode") ?? ReadString(root, "error_code");
                message = ReadString(root, "detail") ?? ReadString(root, "message") ?? ReadString(root, "title");
                if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
                {
                    throw new ResourceValidationException([.. errors.EnumerateArray().Select(ReadError)]);
                }
            }
            catch (JsonException)
            {
                // Not JSON after all: fall back to the status code below.
            }
        }

        var code = wire is not null ? ErrorCodes.FromWire(wire) : FromStatus(response.StatusCode);
        message ??= text.Length > 0 && text.Length <= 500 ? text : $"The server answered {(int)response.StatusCode} {response.ReasonPhrase}.";
        throw new CapstanException(code, message);
    }

    private static ResourceError ReadError(JsonElement error) => new(
        ReadString(error, "file") ?? "",
        error.TryGetProperty("line", out var line) && line.TryGetInt32(out var l) ? l : 0,
        error.TryGetProperty("column", out var column) && column.TryGetInt32(out var c) ? c : 0,
        ReadString(error, "fieldPath") ?? "",
        ReadString(error, "message") ?? "");

    private static string? ReadString(JsonElement root, string name) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    private static ErrorCode FromStatus(HttpStatusCode status) => status switch
    {
        HttpStatusCode.NotFound => ErrorCode.ResourceDoesNotExist,
        HttpStatusCode.Conflict => ErrorCode.ResourceAlreadyExists,
        HttpStatusCode.BadRequest or HttpStatusCode.UnprocessableEntity => ErrorCode.InvalidParameterValue,
        _ => ErrorCode.Internal,
    };
}
