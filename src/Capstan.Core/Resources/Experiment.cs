using System.Text.Json.Serialization;

namespace Capstan.Core.Resources;

/// <summary>
/// A hyperparameter search over a TrainJob template, in the shape of Katib's <c>Experiment</c>
/// (<c>kubeflow.org/v1beta1</c>): an objective, a search algorithm, a search space of parameters, trial
/// counts, optional median early stopping, and a trial template whose <c>${trialParameters.name}</c>
/// placeholders each trial fills with its suggestion. Beyond Katib, <c>objective.objectives</c> declares
/// several objectives, each with its own direction, and the status then carries their Pareto front.
/// The C# name keeps it apart from the tracking store's experiments (<see cref="Tracking.Experiment"/>);
/// its kind is <c>Experiment</c>.
/// </summary>
public sealed class TuningExperiment : Resource<ExperimentSpec, ExperimentStatus>
{
    public const string KindName = "Experiment";

    /// <summary>Katib's default number of trials run at once.</summary>
    public const int DefaultParallelTrialCount = 3;

    public TuningExperiment()
    {
        Kind = KindName;
    }

    public override void ApplyDefaults()
    {
        base.ApplyDefaults();
        ExperimentValidation.ApplyDefaults(this);
    }

    public override void Validate(ResourceValidation validation)
    {
        base.Validate(validation);
        ExperimentValidation.Validate(this, validation);
    }
}

public sealed class ExperimentSpec
{
    public ObjectiveSpec? Objective { get; set; }

    /// <summary>The search algorithm; default <c>random</c>.</summary>
    public AlgorithmSpec? Algorithm { get; set; }

    public IList<ParameterSpec>? Parameters { get; set; }

    /// <summary>Trials run at once; default 3 (Katib's).</summary>
    public int? ParallelTrialCount { get; set; }

    /// <summary>Trials started in all, failed and early-stopped ones included; without it the search runs until the goal or until the space is exhausted.</summary>
    public int? MaxTrialCount { get; set; }

    /// <summary>Failed trials tolerated: one more fails the experiment (Katib's rule). Without it, any number.</summary>
    public int? MaxFailedTrialCount { get; set; }

    public EarlyStoppingSpec? EarlyStopping { get; set; }

    /// <summary>Whether a finished experiment resumes when its spec changes (a larger maxTrialCount); default LongRunning.</summary>
    public ResumePolicy? ResumePolicy { get; set; }

    public TrialTemplate? TrialTemplate { get; set; }
}

public enum ObjectiveType
{
    [JsonStringEnumMemberName("minimize")]
    Minimize,

    [JsonStringEnumMemberName("maximize")]
    Maximize,
}

/// <summary>How a trial's value of a metric is read from its history (Katib's metric strategies).</summary>
public enum MetricStrategyType
{
    [JsonStringEnumMemberName("min")]
    Min,

    [JsonStringEnumMemberName("max")]
    Max,

    [JsonStringEnumMemberName("latest")]
    Latest,
}

/// <summary>Katib's resume policies; FromVolume is accepted and behaves as LongRunning.</summary>
public enum ResumePolicy
{
    Never,
    LongRunning,
    FromVolume,
}

public sealed class ObjectiveSpec
{
    /// <summary>The direction of <see cref="ObjectiveMetricName"/>.</summary>
    public ObjectiveType? Type { get; set; }

    /// <summary>The experiment succeeds as soon as a trial's objective reaches this value.</summary>
    public double? Goal { get; set; }

    public string? ObjectiveMetricName { get; set; }

    /// <summary>Metrics recorded for each trial besides the objective.</summary>
    public IList<string>? AdditionalMetricNames { get; set; }

    /// <summary>Per metric, which value of its history counts; default min when minimizing, max when maximizing.</summary>
    public IList<MetricStrategy>? MetricStrategies { get; set; }

    /// <summary>
    /// Multi-objective search (which Katib lacks): every metric optimised, each in its own direction. The first is the
    /// primary one (<see cref="ObjectiveMetricName"/>, <see cref="Type"/> and <see cref="Goal"/> refer to it); the status
    /// carries the Pareto front of the trials.
    /// </summary>
    public IList<ObjectiveMetric>? Objectives { get; set; }
}

public sealed class ObjectiveMetric
{
    public string? MetricName { get; set; }

    public ObjectiveType? Type { get; set; }
}

public sealed class MetricStrategy
{
    public string? Name { get; set; }

    public MetricStrategyType? Value { get; set; }
}

public sealed class AlgorithmSpec
{
    /// <summary>Katib's names: random, grid, sobol, tpe, multivariate-tpe, bayesianoptimization, cmaes, hyperband, ...</summary>
    public string? AlgorithmName { get; set; }

    public IList<AlgorithmSetting>? AlgorithmSettings { get; set; }
}

public sealed class AlgorithmSetting
{
    public string? Name { get; set; }

    [ScalarText]
    public string? Value { get; set; }
}

public enum ParameterType
{
    [JsonStringEnumMemberName("double")]
    Double,

    [JsonStringEnumMemberName("int")]
    Int,

    [JsonStringEnumMemberName("discrete")]
    Discrete,

    [JsonStringEnumMemberName("categorical")]
    Categorical,
}

public enum Distribution
{
    [JsonStringEnumMemberName("uniform")]
    Uniform,

    [JsonStringEnumMemberName("logUniform")]
    LogUniform,

    [JsonStringEnumMemberName("normal")]
    Normal,

    [JsonStringEnumMemberName("logNormal")]
    LogNormal,
}

public sealed class ParameterSpec
{
    public string? Name { get; set; }

    public ParameterType? ParameterType { get; set; }

    public FeasibleSpace? FeasibleSpace { get; set; }
}

/// <summary>Where a parameter's values lie. As in Katib the bounds are text (<c>"0.01"</c>); plain numbers are accepted too.</summary>
public sealed class FeasibleSpace
{
    [ScalarText]
    public string? Min { get; set; }

    [ScalarText]
    public string? Max { get; set; }

    /// <summary>The values of a discrete or categorical parameter.</summary>
    [ScalarText]
    public IList<string>? List { get; set; }

    /// <summary>The grid step of a double or int parameter.</summary>
    [ScalarText]
    public string? Step { get; set; }

    /// <summary>Default uniform.</summary>
    public Distribution? Distribution { get; set; }
}

public sealed class EarlyStoppingSpec
{
    /// <summary><c>medianstop</c>, Katib's only early-stopping algorithm.</summary>
    public string? AlgorithmName { get; set; }

    /// <summary>medianstop: <c>min_trials_required</c> (default 3) and <c>start_step</c> (default 4).</summary>
    public IList<AlgorithmSetting>? AlgorithmSettings { get; set; }
}

public sealed class TrialTemplate
{
    /// <summary>The names the trial spec's placeholders use, each referring to a search parameter; default one per parameter under its own name.</summary>
    public IList<TrialParameterSpec>? TrialParameters { get; set; }

    /// <summary>The TrainJob spec each trial runs, with <c>${trialParameters.name}</c> placeholders in any text field.</summary>
    public TrainJobSpec? TrialSpec { get; set; }

    /// <summary>Katib's: the container the metrics come from. Kept for files brought over; Capstan reads the trial's run.</summary>
    public string? PrimaryContainerName { get; set; }
}

public sealed class TrialParameterSpec
{
    public string? Name { get; set; }

    public string? Description { get; set; }

    /// <summary>The search parameter (<c>parameters[].name</c>) whose value fills the placeholder.</summary>
    public string? Reference { get; set; }
}

public enum ExperimentPhase
{
    Created,
    Running,
    Restarting,
    Succeeded,
    Failed,
}

/// <summary>What a trial came to, as Katib names a trial's conditions.</summary>
public enum TrialPhase
{
    Pending,
    Running,
    Succeeded,
    Failed,
    EarlyStopped,
    Killed,
    MetricsUnavailable,
}

public sealed class ExperimentStatus : ResourceStatus
{
    public ExperimentPhase? Phase { get; set; }

    public DateTimeOffset? StartTime { get; set; }

    public DateTimeOffset? CompletionTime { get; set; }

    /// <summary>The parent tracking run; every trial's run is nested under it (<c>mlflow.parentRunId</c>).</summary>
    public string? RunId { get; set; }

    /// <summary>Trials created so far.</summary>
    public int? Trials { get; set; }

    public int? TrialsPending { get; set; }

    public int? TrialsRunning { get; set; }

    public int? TrialsSucceeded { get; set; }

    public int? TrialsFailed { get; set; }

    public int? TrialsEarlyStopped { get; set; }

    public int? TrialsKilled { get; set; }

    /// <summary>The best succeeded trial by the (primary) objective.</summary>
    public TrialResult? CurrentOptimalTrial { get; set; }

    /// <summary>Multi-objective only: the succeeded trials no other trial beats on every objective.</summary>
    public IList<TrialResult>? ParetoFront { get; set; }

    /// <summary>Every trial, in creation order: its parameters, what became of it and its observation.</summary>
    public IList<TrialResult>? TrialResults { get; set; }
}

public sealed class TrialResult
{
    /// <summary>The trial's TrainJob.</summary>
    public string? Name { get; set; }

    /// <summary>The trial's number, from 1.</summary>
    public int? Index { get; set; }

    public TrialPhase? Phase { get; set; }

    /// <summary>Why the trial ended as it did (the TrainJob's failure reason, the early-stopping rule).</summary>
    public string? Reason { get; set; }

    public string? Message { get; set; }

    public string? RunId { get; set; }

    public IList<ParameterAssignment>? ParameterAssignments { get; set; }

    public Observation? Observation { get; set; }

    /// <summary>How many times the trial was created again after its TrainJob was lost.</summary>
    public int? Reruns { get; set; }
}

public sealed class ParameterAssignment
{
    public string? Name { get; set; }

    public string? Value { get; set; }
}

public sealed class Observation
{
    public IList<ObservedMetric>? Metrics { get; set; }
}

/// <summary>Katib's observed metric: the smallest, largest and last value of a trial's series.</summary>
public sealed class ObservedMetric
{
    public string? Name { get; set; }

    public double? Min { get; set; }

    public double? Max { get; set; }

    public double? Latest { get; set; }
}
