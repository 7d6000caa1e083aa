using Capstan.Core;
using Capstan.Core.Tracking;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Capstan.Server.Api;

// Bodies of the native API that have no Core record of their own.

/// <summary>PATCH /api/v1/experiments/{id}.</summary>
public sealed record ExperimentRename(string Name);

/// <summary>PUT .../tags/{key}.</summary>
public sealed record TagValue(string Value);

/// <summary>POST /api/v1/runs/{id}/inputs.</summary>
public sealed record RunInputs(IReadOnlyList<DatasetInput> Datasets);

/// <summary>PATCH /api/v1/models/{name} and .../versions/{version}.</summary>
public sealed record DescriptionUpdate(string? Description);

/// <summary>POST /api/v1/models/{name}/rename.</summary>
public sealed record ModelRename(string NewName);

/// <summary>PUT /api/v1/models/{name}/aliases/{alias}.</summary>
public sealed record AliasTarget(long Version);

internal static class NativeRequests
{
    /// <summary>Documents the problem-details answers every native endpoint can give.</summary>
    public static RouteGroupBuilder WithNativeErrors(this RouteGroupBuilder group) => group
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status404NotFound)
        .ProducesProblem(StatusCodes.Status409Conflict);

    /// <summary>A body the client left out, or a required field it left empty, is a 400.</summary>
    public static T Body<T>(T? body)
        where T : class =>
        body ?? throw new CapstanException(ErrorCode.BadRequest, "A JSON request body is required.");

    public static string Required(string? value, string field) =>
        string.IsNullOrWhiteSpace(value) ? throw CapstanException.Invalid($"Missing value for required field '{field}'.") : value;

    public static ViewType ParseViewType(string? value) =>
        string.IsNullOrEmpty(value) ? ViewType.ActiveOnly
        : Enum.TryParse<ViewType>(value, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed) ? parsed
        : throw CapstanException.Invalid($"Invalid viewType '{value}': expected ActiveOnly, DeletedOnly or All.");
}
