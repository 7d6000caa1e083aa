using System.Text.Json.Serialization;

namespace Capstan.Server.Mlflow;

// MLflow's wire messages (mlflow/protos/service.proto, model_registry.proto, mlflow_artifacts.proto),
// with the proto's snake_case names. Every field is nullable so a request can omit it and a response
// omits what MLflow would omit; int64 fields are written as JSON numbers and read from numbers or strings.

internal sealed class KeyValueWire
{
    public string? Key { get; set; }
    public string? Value { get; set; }
}

internal struct MetricWire
{
    public string? Key { get; set; }
    public double? Value { get; set; }
    public long? Timestamp { get; set; }
    public long? Step { get; set; }
}

internal sealed class ExperimentWire
{
    public string? ExperimentId { get; set; }
    public string? Name { get; set; }
    public string? ArtifactLocation { get; set; }
    public string? LifecycleStage { get; set; }
    public long? LastUpdateTime { get; set; }
    public long? CreationTime { get; set; }
    public List<KeyValueWire>? Tags { get; set; }
}

internal sealed class RunInfoWire
{
    public string? RunId { get; set; }
    public string? RunUuid { get; set; }
    public string? RunName { get; set; }
    public string? ExperimentId { get; set; }
    public string? UserId { get; set; }
    public string? Status { get; set; }
    public long? StartTime { get; set; }
    public long? EndTime { get; set; }
    public string? ArtifactUri { get; set; }
    public string? LifecycleStage { get; set; }
}

internal sealed class RunDataWire
{
    public List<MetricWire>? Metrics { get; set; }
    public List<KeyValueWire>? Params { get; set; }
    public List<KeyValueWire>? Tags { get; set; }
}

internal sealed class DatasetWire
{
    public string? Name { get; set; }
    public string? Digest { get; set; }
    public string? SourceType { get; set; }
    public string? Source { get; set; }
    public string? Schema { get; set; }
    public string? Profile { get; set; }
}

internal sealed class DatasetInputWire
{
    public List<KeyValueWire>? Tags { get; set; }
    public DatasetWire? Dataset { get; set; }
}

internal sealed class RunInputsWire
{
    public List<DatasetInputWire>? DatasetInputs { get; set; }
}

internal sealed class RunWire
{
    public RunInfoWire? Info { get; set; }
    public RunDataWire? Data { get; set; }
    public RunInputsWire? Inputs { get; set; }
}

internal sealed class FileInfoWire
{
    public string? Path { get; set; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public bool IsDir { get; set; }

    public long? FileSize { get; set; }
}

internal sealed class AliasWire
{
    public string? Alias { get; set; }
    public string? Version { get; set; }
}

internal sealed class ModelVersionWire
{
    public string? Name { get; set; }
    public string? Version { get; set; }
    public long? CreationTimestamp { get; set; }
    public long? LastUpdatedTimestamp { get; set; }
    public string? UserId { get; set; }
    public string? CurrentStage { get; set; }
    public string? Description { get; set; }
    public string? Source { get; set; }
    public string? RunId { get; set; }
    public string? Status { get; set; }
    public string? StatusMessage { get; set; }
    public List<KeyValueWire>? Tags { get; set; }
    public string? RunLink { get; set; }
    public List<string>? Aliases { get; set; }
}

internal sealed class RegisteredModelWire
{
    public string? Name { get; set; }
    public long? CreationTimestamp { get; set; }
    public long? LastUpdatedTimestamp { get; set; }
    public string? Description { get; set; }
    public List<ModelVersionWire>? LatestVersions { get; set; }
    public List<KeyValueWire>? Tags { get; set; }
    public List<AliasWire>? Aliases { get; set; }
}

// Requests. One message per family: the endpoints of a family read different subsets of the fields.

internal sealed class ExperimentRequest
{
    public string? ExperimentId { get; set; }
    public string? ExperimentName { get; set; }
    public string? Name { get; set; }
    public string? NewName { get; set; }
    public string? ArtifactLocation { get; set; }
    public List<KeyValueWire>? Tags { get; set; }
    public string? Key { get; set; }
    public string? Value { get; set; }
    public long? MaxResults { get; set; }
    public string? PageToken { get; set; }
    public string? Filter { get; set; }
    public List<string>? OrderBy { get; set; }
    public string? ViewType { get; set; }
}

internal sealed class RunRequest
{
    public string? RunId { get; set; }
    public string? RunUuid { get; set; }
    public string? ExperimentId { get; set; }
    public string? UserId { get; set; }
    public string? RunName { get; set; }
    public long? StartTime { get; set; }
    public long? EndTime { get; set; }
    public string? Status { get; set; }
    public List<KeyValueWire>? Tags { get; set; }
    public string? Key { get; set; }
    public string? Value { get; set; }
    public List<DatasetInputWire>? Datasets { get; set; }
    public string? MetricKey { get; set; }
    public string? Path { get; set; }
    public long? MaxResults { get; set; }
    public string? PageToken { get; set; }
}

/// <summary>runs/log-metric, the hot single-point path.</summary>
internal sealed class LogMetricRequest
{
    public string? RunId { get; set; }
    public string? RunUuid { get; set; }
    public string? Key { get; set; }
    public double? Value { get; set; }
    public long? Timestamp { get; set; }
    public long? Step { get; set; }
}

internal sealed class SearchRunsRequest
{
    public List<string>? ExperimentIds { get; set; }
    public string? Filter { get; set; }
    public string? RunViewType { get; set; }
    public long? MaxResults { get; set; }
    public List<string>? OrderBy { get; set; }
    public string? PageToken { get; set; }
}

internal sealed class RegistryRequest
{
    public string? Name { get; set; }
    public string? NewName { get; set; }
    public string? Description { get; set; }
    public List<KeyValueWire>? Tags { get; set; }
    public string? Key { get; set; }
    public string? Value { get; set; }
    public string? Alias { get; set; }
    public long? Version { get; set; }
    public List<string>? Stages { get; set; }
    public string? Source { get; set; }
    public string? RunId { get; set; }
    public string? RunLink { get; set; }
    public string? Filter { get; set; }
    public long? MaxResults { get; set; }
    public List<string>? OrderBy { get; set; }
    public string? PageToken { get; set; }
}

// Responses.

internal sealed class ErrorResponse
{
    public string? ErrorCode { get; set; }
    public string? Message { get; set; }
}

internal sealed class CreateExperimentResponse
{
    public string? ExperimentId { get; set; }
}

internal sealed class ExperimentResponse
{
    public ExperimentWire? Experiment { get; set; }
}

internal sealed class SearchExperimentsResponse
{
    public List<ExperimentWire>? Experiments { get; set; }
    public string? NextPageToken { get; set; }
}

internal sealed class RunResponse
{
    public RunWire? Run { get; set; }
}

internal sealed class UpdateRunResponse
{
    public RunInfoWire? RunInfo { get; set; }
}

internal sealed class SearchRunsResponse
{
    public List<RunWire>? Runs { get; set; }
    public string? NextPageToken { get; set; }
}

internal sealed class MetricHistoryResponse
{
    public List<MetricWire>? Metrics { get; set; }
    public string? NextPageToken { get; set; }
}

internal sealed class ListArtifactsResponse
{
    public string? RootUri { get; set; }
    public List<FileInfoWire>? Files { get; set; }
    public string? NextPageToken { get; set; }
}

internal sealed class RegisteredModelResponse
{
    public RegisteredModelWire? RegisteredModel { get; set; }
}

internal sealed class SearchRegisteredModelsResponse
{
    public List<RegisteredModelWire>? RegisteredModels { get; set; }
    public string? NextPageToken { get; set; }
}

internal sealed class ModelVersionResponse
{
    public ModelVersionWire? ModelVersion { get; set; }
}

internal sealed class ModelVersionsResponse
{
    public List<ModelVersionWire>? ModelVersions { get; set; }
    public string? NextPageToken { get; set; }
}

internal sealed class DownloadUriResponse
{
    public string? ArtifactUri { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    NumberHandling = JsonNumberHandling.AllowReadingFromString | JsonNumberHandling.AllowNamedFloatingPointLiterals,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
    AllowTrailingCommas = true)]
[JsonSerializable(typeof(ExperimentRequest))]
[JsonSerializable(typeof(RunRequest))]
[JsonSerializable(typeof(LogMetricRequest))]
[JsonSerializable(typeof(SearchRunsRequest))]
[JsonSerializable(typeof(RegistryRequest))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(CreateExperimentResponse))]
[JsonSerializable(typeof(ExperimentResponse))]
[JsonSerializable(typeof(SearchExperimentsResponse))]
[JsonSerializable(typeof(RunResponse))]
[JsonSerializable(typeof(UpdateRunResponse))]
[JsonSerializable(typeof(SearchRunsResponse))]
[JsonSerializable(typeof(MetricHistoryResponse))]
[JsonSerializable(typeof(ListArtifactsResponse))]
[JsonSerializable(typeof(RegisteredModelResponse))]
[JsonSerializable(typeof(SearchRegisteredModelsResponse))]
[JsonSerializable(typeof(ModelVersionResponse))]
[JsonSerializable(typeof(ModelVersionsResponse))]
[JsonSerializable(typeof(DownloadUriResponse))]
internal sealed partial class MlflowJsonContext : JsonSerializerContext;
