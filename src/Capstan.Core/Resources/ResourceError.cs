using System.Globalization;

namespace Capstan.Core.Resources;

/// <summary>
/// One thing wrong with a resource, where it is: <c>job.yaml:12:7: spec.resources.limits.cpu: message</c>.
/// Line and column are 1-based; 0 when the resource did not come from a file (an API request).
/// </summary>
public sealed record ResourceError(string File, int Line, int Column, string FieldPath, string Message)
{
    public override string ToString()
    {
        var where = Line > 0 ? string.Create(CultureInfo.InvariantCulture, $"{File}:{Line}:{Column}") : File;
        return FieldPath.Length > 0 ? $"{where}: {FieldPath}: {Message}" : $"{where}: {Message}";
    }
}

/// <summary>Every problem found in a set of resources; nothing runs until the list is empty.</summary>
public sealed class ResourceValidationException(IReadOnlyList<ResourceError> errors)
    : Exception(string.Join('\n', errors))
{
    public IReadOnlyList<ResourceError> Errors { get; } = errors;

    /// <summary>How an API surface reports it.</summary>
    public ErrorCode Code => ErrorCode.InvalidParameterValue;
}
