using Capstan.Core.Registry;
using Capstan.Core.Tracking;

namespace Capstan.Core.Storage;

/// <summary>
/// The tracking and registry operations. Implemented by the embedded SQLite store, and by the
/// HTTP client for a remote server, so the CLI and training code work the same against either.
/// Failures a caller can act on are <see cref="CapstanException"/>s.
/// Times are Unix milliseconds.
/// </summary>
public interface IMetadataStore
{
    // Experiments
    Task<Experiment> CreateExperimentAsync(NewExperiment experiment, CancellationToken cancellationToken = default);
    Task<Experiment> GetExperimentAsync(string experimentId, CancellationToken cancellationToken = default);
    Task<Experiment> GetExperimentByNameAsync(string name, CancellationToken cancellationToken = default);
    Task<Page<Experiment>> SearchExperimentsAsync(ExperimentSearch search, CancellationToken cancellationToken = default);
    Task RenameExperimentAsync(string experimentId, string newName, CancellationToken cancellationToken = default);
    Task DeleteExperimentAsync(string experimentId, CancellationToken cancellationToken = default);
    Task RestoreExperimentAsync(string experimentId, CancellationToken cancellationToken = default);
    Task SetExperimentTagAsync(string experimentId, string key, string value, CancellationToken cancellationToken = default);

    // Runs
    Task<Run> CreateRunAsync(NewRun run, CancellationToken cancellationToken = default);
    Task<Run> GetRunAsync(string runId, CancellationToken cancellationToken = default);
    Task<RunInfo> UpdateRunAsync(string runId, RunUpdate update, CancellationToken cancellationToken = default);
    Task DeleteRunAsync(string runId, CancellationToken cancellationToken = default);
    Task RestoreRunAsync(string runId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Logs metrics, params and tags in one transaction. Params are write-once: re-logging the same
    /// value is fine, a different value is <see cref="ErrorCode.InvalidParameterValue"/>.
    /// Batches over <see cref="LogBatch"/>'s limits are rejected whole.
    /// </summary>
    Task LogBatchAsync(string runId, LogBatch batch, CancellationToken cancellationToken = default);
    Task DeleteTagAsync(string runId, string key, CancellationToken cancellationToken = default);
    Task LogInputsAsync(string runId, IReadOnlyList<DatasetInput> inputs, CancellationToken cancellationToken = default);
    Task<Page<Run>> SearchRunsAsync(RunSearch search, CancellationToken cancellationToken = default);

    /// <summary>Every point of one metric, ordered by step then timestamp.</summary>
    Task<Page<Metric>> GetMetricHistoryAsync(string runId, string key, int maxResults = 100_000, string? pageToken = null, CancellationToken cancellationToken = default);

    // Registered models
    Task<RegisteredModel> CreateRegisteredModelAsync(NewRegisteredModel model, CancellationToken cancellationToken = default);
    Task<RegisteredModel> GetRegisteredModelAsync(string name, CancellationToken cancellationToken = default);
    Task<Page<RegisteredModel>> SearchRegisteredModelsAsync(RegistrySearch search, CancellationToken cancellationToken = default);
    Task<RegisteredModel> UpdateRegisteredModelAsync(string name, string? description, CancellationToken cancellationToken = default);
    Task<RegisteredModel> RenameRegisteredModelAsync(string name, string newName, CancellationToken cancellationToken = default);
    Task DeleteRegisteredModelAsync(string name, CancellationToken cancellationToken = default);
    Task SetRegisteredModelTagAsync(string name, string key, string value, CancellationToken cancellationToken = default);
    Task DeleteRegisteredModelTagAsync(string name, string key, CancellationToken cancellationToken = default);

    // Model versions
    Task<ModelVersion> CreateModelVersionAsync(NewModelVersion version, CancellationToken cancellationToken = default);
    Task<ModelVersion> GetModelVersionAsync(string name, long version, CancellationToken cancellationToken = default);
    Task<ModelVersion> UpdateModelVersionAsync(string name, long version, string? description, CancellationToken cancellationToken = default);
    Task DeleteModelVersionAsync(string name, long version, CancellationToken cancellationToken = default);
    Task<Page<ModelVersion>> SearchModelVersionsAsync(RegistrySearch search, CancellationToken cancellationToken = default);

    /// <summary>The newest version per stage (all stages when <paramref name="stages"/> is empty).</summary>
    Task<IReadOnlyList<ModelVersion>> GetLatestVersionsAsync(string name, IReadOnlyList<string>? stages = null, CancellationToken cancellationToken = default);
    Task SetModelVersionTagAsync(string name, long version, string key, string value, CancellationToken cancellationToken = default);
    Task DeleteModelVersionTagAsync(string name, long version, string key, CancellationToken cancellationToken = default);

    // Aliases
    Task SetAliasAsync(string name, string alias, long version, CancellationToken cancellationToken = default);
    Task DeleteAliasAsync(string name, string alias, CancellationToken cancellationToken = default);
    Task<ModelVersion> GetModelVersionByAliasAsync(string name, string alias, CancellationToken cancellationToken = default);
}
