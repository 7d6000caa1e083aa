using System.Buffers;
using System.Text;
using System.Text.Json;
using Capstan.Core;

namespace Capstan.Store.Sqlite;

/// <summary>Opaque page tokens: base64 of <c>{"offset":N}</c>, as MLflow's SQL store does.</summary>
internal static class PageToken
{
    public const int DefaultMaxResults = 1000;
    public const int MaxResultsLimit = 50_000;

    public static string Encode(long offset)
    {
        var buffer = new ArrayBufferWriter<byte>(32);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("offset", offset);
            writer.WriteEndObject();
        }

        return Convert.ToBase64String(buffer.WrittenSpan);
    }

    public static long Decode(string? token)
    {
        if (string.IsNullOrEmpty(token))
        {
            return 0;
        }

        try
        {
            using var document = JsonDocument.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(token)));
            if (document.RootElement.TryGetProperty("offset", out var offset) && offset.TryGetInt64(out var value) && value >= 0)
            {
                return value;
            }
        }
        catch (Exception e) when (e is FormatException or JsonException or InvalidOperationException)
        {
        }

        throw CapstanException.Invalid($"Invalid page token '{token}': it was not produced by a previous search.");
    }

    public static void CheckMaxResults(int maxResults, int limit = MaxResultsLimit)
    {
        if (maxResults is < 1 || maxResults > limit)
        {
            throw CapstanException.Invalid($"Invalid value {maxResults} for parameter 'max_results': it must be between 1 and {limit}.");
        }
    }

    /// <summary>The next token when the query, asked for one row more than a page, got it.</summary>
    public static string? Next(long offset, int maxResults, int rowsRead) =>
        rowsRead > maxResults ? Encode(offset + maxResults) : null;
}
