namespace Capstan.Core;

/// <summary>What went wrong, in the terms every API surface maps to its own wire format.</summary>
public enum ErrorCode
{
    InvalidParameterValue,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    InvalidState,
    BadRequest,
    Internal,

    /// <summary>Optimistic concurrency lost: the object changed since the caller read it (HTTP 409).</summary>
    Conflict,
}

/// <summary>
/// A failure a caller can act on: bad input, a missing or duplicate resource, a wrong state.
/// The message says what was wrong and is safe to return to the client.
/// </summary>
public sealed class CapstanException(ErrorCode code, string message) : Exception(message)
{
    public ErrorCode Code { get; } = code;

    public static CapstanException NotFound(string message) => new(ErrorCode.ResourceDoesNotExist, message);

    public static CapstanException Invalid(string message) => new(ErrorCode.InvalidParameterValue, message);

    public static CapstanException AlreadyExists(string message) => new(ErrorCode.ResourceAlreadyExists, message);

    /// <summary>Kubernetes' answer to a write based on a stale resourceVersion.</summary>
    public static CapstanException Conflict(string what) =>
        new(ErrorCode.Conflict, $"Operation cannot be fulfilled on {what}: the object has been modified; please apply your changes to the latest version and try again");
}

/// <summary>The wire names of <see cref="ErrorCode"/>, as MLflow's <c>error_code</c> spells them.</summary>
public static class ErrorCodes
{
    public static string ToWire(ErrorCode code) => code switch
    {
        ErrorCode.InvalidParameterValue => "INVALID_PARAMETER_VALUE",
        ErrorCode.ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
        ErrorCode.ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
        ErrorCode.InvalidState => "INVALID_STATE",
        ErrorCode.BadRequest => "BAD_REQUEST",
        ErrorCode.Conflict => "ABORTED",
        _ => "INTERNAL_ERROR",
    };

    public static ErrorCode FromWire(string? code) => code switch
    {
        "INVALID_PARAMETER_VALUE" => ErrorCode.InvalidParameterValue,
        "RESOURCE_DOES_NOT_EXIST" => ErrorCode.ResourceDoesNotExist,
        "RESOURCE_ALREADY_EXISTS" => ErrorCode.ResourceAlreadyExists,
        "INVALID_STATE" => ErrorCode.InvalidState,
        "BAD_REQUEST" => ErrorCode.BadRequest,
        "ABORTED" => ErrorCode.Conflict,
        _ => ErrorCode.Internal,
    };
}
