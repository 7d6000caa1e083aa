using System.Text.Json;
using System.Text.Json.Serialization;

namespace Capstan.Core;

/// <summary>The JSON conventions of Capstan's native API: camelCase names, enums as strings, nulls omitted.</summary>
public static class CapstanJson
{
    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        };
        options.Converters.Add(new JsonStringEnumConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
