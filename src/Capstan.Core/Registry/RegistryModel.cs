using Capstan.Core.Tracking;

namespace Capstan.Core.Registry;

public enum ModelVersionStatus
{
    PendingRegistration,
    FailedRegistration,
    Ready,
}

public sealed record ModelAlias(string Alias, long Version);

/// <summary>A model's input and output schema, as JSON (MLflow's column- or tensor-spec lists).</summary>
public sealed record ModelSignature(string? Inputs, string? Outputs);

public sealed record RegisteredModel(
    string Name,
    long CreationTimestamp,
    long LastUpdatedTimestamp,
    string? Description,
    IReadOnlyList<Tag> Tags,
    IReadOnlyList<ModelAlias> Aliases,
    IReadOnlyList<ModelVersion> LatestVersions);

public sealed record ModelVersion(
    string Name,
    long Version,
    long CreationTimestamp,
    long LastUpdatedTimestamp,
    string? Description,
    string? UserId,
    string CurrentStage,
    string Source,
    string? RunId,
    string? RunLink,
    ModelVersionStatus Status,
    string? StatusMessage,
    IReadOnlyList<Tag> Tags,
    IReadOnlyList<string> Aliases,
    ModelSignature? Signature);

public sealed record NewRegisteredModel(string Name, string? Description = null, IReadOnlyList<Tag>? Tags = null);

public sealed record NewModelVersion(
    string Name,
    string Source,
    string? RunId = null,
    string? RunLink = null,
    string? Description = null,
    IReadOnlyList<Tag>? Tags = null,
    ModelSignature? Signature = null,
    string? UserId = null);

/// <summary>Search over registered models or model versions (MLflow's registry filter grammar).</summary>
public sealed record RegistrySearch(
    string? Filter = null,
    int MaxResults = 100,
    IReadOnlyList<string>? OrderBy = null,
    string? PageToken = null);
