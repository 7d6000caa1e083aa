namespace Capstan.Core.Tracking;

/// <summary>Run status, with MLflow's meaning (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED).</summary>
public enum RunStatus
{
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

public enum LifecycleStage
{
    Active,
    Deleted,
}

/// <summary>Which lifecycle stages a search returns (MLflow's ViewType).</summary>
public enum ViewType
{
    ActiveOnly,
    DeletedOnly,
    All,
}

public sealed record Tag(string Key, string Value);

public sealed record Param(string Key, string Value);

/// <summary>One point of a metric series. <see cref="Timestamp"/> is Unix milliseconds.</summary>
public readonly record struct Metric(string Key, double Value, long Timestamp, long Step);

public sealed record Experiment(
    string ExperimentId,
    string Name,
    string ArtifactLocation,
    LifecycleStage LifecycleStage,
    long CreationTime,
    long LastUpdateTime,
    IReadOnlyList<Tag> Tags);

public sealed record RunInfo(
    string RunId,
    string ExperimentId,
    string RunName,
    string UserId,
    RunStatus Status,
    long StartTime,
    long? EndTime,
    string ArtifactUri,
    LifecycleStage LifecycleStage);

/// <summary>A run's params, tags and the latest value of each metric.</summary>
public sealed record RunData(IReadOnlyList<Metric> Metrics, IReadOnlyList<Param> Params, IReadOnlyList<Tag> Tags);

/// <summary>A data set a run consumed, identified by its digest (MLflow's Dataset).</summary>
public sealed record Dataset(string Name, string Digest, string SourceType, string Source, string? Schema = null, string? Profile = null);

public sealed record DatasetInput(Dataset Dataset, IReadOnlyList<Tag> Tags);

public sealed record Run(RunInfo Info, RunData Data, IReadOnlyList<DatasetInput> Inputs);

public sealed record NewExperiment(string Name, string? ArtifactLocation = null, IReadOnlyList<Tag>? Tags = null);

public sealed record NewRun(
    string ExperimentId,
    string? RunName = null,
    string? UserId = null,
    long? StartTime = null,
    IReadOnlyList<Tag>? Tags = null);

/// <summary>Fields of a run that may change after creation; null leaves a field as it is.</summary>
public sealed record RunUpdate(RunStatus? Status = null, long? EndTime = null, string? RunName = null);

/// <summary>Metrics, params and tags logged together, atomically.</summary>
public sealed record LogBatch(IReadOnlyList<Metric>? Metrics = null, IReadOnlyList<Param>? Params = null, IReadOnlyList<Tag>? Tags = null)
{
    /// <summary>MLflow's log-batch limits.</summary>
    public const int MaxMetrics = 1000;
    public const int MaxParams = 100;
    public const int MaxTags = 100;
    public const int MaxItems = 1000;
}

public sealed record ExperimentSearch(
    string? Filter = null,
    ViewType ViewType = ViewType.ActiveOnly,
    int MaxResults = 1000,
    IReadOnlyList<string>? OrderBy = null,
    string? PageToken = null);

public sealed record RunSearch(
    IReadOnlyList<string> ExperimentIds,
    string? Filter = null,
    ViewType ViewType = ViewType.ActiveOnly,
    int MaxResults = 1000,
    IReadOnlyList<string>? OrderBy = null,
    string? PageToken = null);

/// <summary>One page of results; <see cref="NextPageToken"/> is null on the last page.</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? NextPageToken);
