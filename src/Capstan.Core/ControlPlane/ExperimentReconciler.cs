using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;
using Engine = Capstan.Tuning;

namespace Capstan.Core.ControlPlane;

/// <summary>
/// Drives an Experiment (<see cref="TuningExperiment"/>): one idempotent pass per experiment key, like
/// <see cref="TrainJobReconciler"/>, and as blind to the runtime. The search state is rebuilt from the store on every
/// pass — the trials are TrainJobs labelled with the experiment, their parameters in an annotation, their objective
/// values in their runs' metrics — so a restarted control plane keeps the completed trials, re-adopts the running ones
/// (the TrainJob reconciler does) and runs again the ones whose TrainJob was lost.
/// A pass creates the parent tracking run, mirrors each trial's TrainJob into the status, reads the objective of each
/// finished trial (per metric strategy), stops a running trial the median rule condemns, ends the experiment on its goal,
/// on maxTrialCount or past maxFailedTrialCount, and otherwise asks the search algorithm for as many new trials as
/// parallelTrialCount leaves room for.
/// </summary>
public sealed class ExperimentReconciler(
    IResourceStore resources,
    IWorkloadRuntime runtime,
    IMetadataStore metadata,
    TimeProvider time,
    ExperimentReconcilerOptions? options = null)
{
    public const string ExperimentLabel = "capstan.dev/experiment";
    public const string TrialIndexAnnotation = "capstan.dev/trial-index";
    public const string TrialParametersAnnotation = "capstan.dev/trial-parameters";
    public const string ExperimentUidAnnotation = "capstan.dev/experiment-uid";
    public const string ExperimentTag = "capstan.experiment";
    public const string ExperimentUidTag = "capstan.experiment.uid";
    public const string TrialTag = "capstan.trial";
    public const string BestTrialTag = "capstan.experiment.best_trial";

    public const string ConditionCreated = "Created";
    public const string ConditionRunning = "Running";
    public const string ConditionRestarting = "Restarting";
    public const string ConditionSucceeded = "Succeeded";
    public const string ConditionFailed = "Failed";

    public const string ReasonGoalReached = "GoalReached";
    public const string ReasonMaxTrialsReached = "MaxTrialsReached";
    public const string ReasonMaxFailedTrialsReached = "MaxFailedTrialsReached";
    public const string ReasonSearchSpaceExhausted = "SearchSpaceExhausted";
    public const string ReasonNoTrialSucceeded = "NoTrialSucceeded";
    public const string ReasonInvalidSpec = "InvalidSpec";
    public const string ReasonEarlyStopped = "EarlyStopped";
    public const string ReasonMetricsUnavailable = "MetricsUnavailable";

    private readonly ExperimentReconcilerOptions _options = options ?? new ExperimentReconcilerOptions();

    // Finished runs' objective series do not change: read each once per process.
    private readonly ConcurrentDictionary<string, IReadOnlyList<Engine.IntermediateValue>> _finishedSeries = new(StringComparer.Ordinal);

    /// <summary>The name of trial <paramref name="index"/> (from 1) of an experiment.</summary>
    public static string TrialName(string experiment, int index) => string.Create(CultureInfo.InvariantCulture, $"{experiment}-trial-{index}");

    /// <summary>The experiment key (<c>namespace/name</c>) a TrainJob belongs to, or null for a job that is no trial.</summary>
    public static string? ExperimentKeyOf(Resource job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return job.Metadata.Labels?.TryGetValue(ExperimentLabel, out var name) == true
            ? TrainJobReconciler.Key(job.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace, name)
            : null;
    }

    /// <summary>Brings the experiment with <paramref name="key"/> one step on. A missing experiment is left alone.</summary>
    public async Task<ReconcileResult> ReconcileAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var ns = key[..slash];
        if (await resources.FindAsync(TuningExperiment.KindName, ns, key[(slash + 1)..], cancellationToken).ConfigureAwait(false) is not TuningExperiment experiment)
        {
            return ReconcileResult.Done;
        }

        var status = experiment.Status ??= new ExperimentStatus();
        if (status.Phase is ExperimentPhase.Succeeded or ExperimentPhase.Failed)
        {
            if (!ExperimentProgress.Resumable(experiment))
            {
                // Trials it stopped end after it did: their runs say Killed, not Failed.
                await MarkStoppedRunsAsync(experiment, cancellationToken).ConfigureAwait(false);
                return ReconcileResult.Done;
            }

            status.Phase = ExperimentPhase.Restarting;
            status.CompletionTime = null;
            SetCondition(status, ConditionSucceeded, ConditionStatus.False, "Resumed", "The spec changed", experiment.Metadata.Generation);
            SetCondition(status, ConditionRestarting, ConditionStatus.True, "SpecChanged", $"Resuming for maxTrialCount {experiment.Spec.MaxTrialCount}", experiment.Metadata.Generation);
            experiment = await WriteStatusAsync(experiment, cancellationToken).ConfigureAwait(false);
            await resources.RecordEventAsync(experiment, ResourceEventType.Normal, "Resumed", $"Resuming: maxTrialCount is now {experiment.Spec.MaxTrialCount}", cancellationToken).ConfigureAwait(false);
            status = experiment.Status!;

            // The parent run is open again while the new trials nest under it; it ends again with the experiment.
            if (status.RunId is { } parentRunId)
            {
                await metadata.UpdateRunAsync(parentRunId, new RunUpdate(RunStatus.Running), cancellationToken).ConfigureAwait(false);
            }
        }

        Engine.ISearchAlgorithm algorithm;
        Engine.IEarlyStoppingRule? earlyStopping;
        try
        {
            var errors = ResourceValidation.Validate(experiment, "experiment");
            if (errors.Count > 0)
            {
                return await FinishAsync(experiment, [], false, ReasonInvalidSpec, string.Join("; ", errors.Select(e => $"{e.FieldPath}: {e.Message}")), cancellationToken).ConfigureAwait(false);
            }

            algorithm = TuningSearch.Algorithm(experiment);
            earlyStopping = TuningSearch.EarlyStopping(experiment.Spec);
        }
        catch (Engine.TuningSpecException e)
        {
            return await FinishAsync(experiment, [], false, ReasonInvalidSpec, e.Message, cancellationToken).ConfigureAwait(false);
        }

        if (status.RunId is null)
        {
            var run = await CreateParentRunAsync(experiment, cancellationToken).ConfigureAwait(false);
            status.RunId = run.Info.RunId;
            status.Phase = ExperimentPhase.Created;
            status.StartTime = time.GetUtcNow();
            status.Trials = 0;
            status.Message = "Experiment created";
            SetCondition(status, ConditionCreated, ConditionStatus.True, "ExperimentCreated", $"Tracking into run {run.Info.RunId}", experiment.Metadata.Generation);
            experiment = await WriteStatusAsync(experiment, cancellationToken).ConfigureAwait(false);
            await resources.RecordEventAsync(experiment, ResourceEventType.Normal, "Created", $"Parent run {run.Info.RunId}; searching with {algorithm.Name}", cancellationToken).ConfigureAwait(false);
            status = experiment.Status!;
        }

        var objectives = algorithm.Objectives;
        var trials = await LoadTrialsAsync(experiment, algorithm.Space, cancellationToken).ConfigureAwait(false);
        var requeue = (TimeSpan?)null;

        // Mirror each trial's TrainJob; re-run the lost ones.
        foreach (var trial in trials)
        {
            var wait = await ObserveTrialAsync(experiment, trial, cancellationToken).ConfigureAwait(false);
            requeue = Min(requeue, wait);
        }

        if (earlyStopping is not null)
        {
            foreach (var trial in trials.Where(t => t.Result.Phase == TrialPhase.Running && t.Job is not null).ToList())
            {
                await ConsiderStoppingAsync(experiment, trial, trials, earlyStopping, cancellationToken).ConfigureAwait(false);
            }

            if (trials.Any(t => t.Result.Phase is TrialPhase.Running))
            {
                requeue = Min(requeue, _options.EarlyStoppingInterval);
            }
        }

        var history = trials.Select(t => t.ToEngine(objectives)).ToList();
        var results = trials.Select(t => t.Result).ToList();
        var spec = experiment.Spec;

        // A trial being stopped still holds its slot (and its CPUs) until its TrainJob has ended.
        var stopping = trials.Count(t => t.Result.Phase is TrialPhase.EarlyStopped or TrialPhase.Killed && t.Job?.Status?.Phase is not (null or TrainJobPhase.Succeeded or TrainJobPhase.Failed));
        var counts = ExperimentProgress.Count(results);
        var active = counts.Pending + counts.Running + stopping;
        if (ExperimentProgress.Ending(spec, objectives, results, active) is { } end)
        {
            return await FinishAsync(experiment, trials, end.Succeeded, end.Reason, end.Message, cancellationToken).ConfigureAwait(false);
        }

        var room = ExperimentProgress.Room(spec, active, trials.Count);
        if (room > 0)
        {
            var batch = algorithm.Suggest(history, room);
            foreach (var suggestion in batch.Suggestions)
            {
                var index = trials.Count == 0 ? 1 : trials.Max(t => t.Index) + 1;
                var trial = await CreateTrialAsync(experiment, index, suggestion.Parameters.ToStrings(), 0, cancellationToken).ConfigureAwait(false);
                trials.Add(trial);
            }

            if (batch.Exhausted && batch.Suggestions.Count == 0 && active == 0)
            {
                var exhausted = ExperimentProgress.Exhausted([.. trials.Select(t => t.Result)]);
                return await FinishAsync(experiment, trials, exhausted.Succeeded, exhausted.Reason, exhausted.Message, cancellationToken).ConfigureAwait(false);
            }
        }

        await WriteProgressAsync(experiment, trials, objectives, cancellationToken).ConfigureAwait(false);
        return requeue is { } delay ? ReconcileResult.After(delay) : ReconcileResult.Done;
    }

    /// <summary>A deleted experiment: deletes its trials' TrainJobs, which stops whatever of them still runs.</summary>
    public async Task DeleteTrialsAsync(Resource experiment, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        var ns = experiment.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;
        var jobs = await resources.ListAsync(TrainJob.KindName, ns, new Dictionary<string, string> { [ExperimentLabel] = experiment.Metadata.Name! }, cancellationToken).ConfigureAwait(false);
        foreach (var job in jobs.Where(j => BelongsTo(j, experiment)))
        {
            try
            {
                await resources.DeleteAsync(TrainJob.KindName, ns, job.Metadata.Name!, cancellationToken).ConfigureAwait(false);
            }
            catch (CapstanException e) when (e.Code == ErrorCode.ResourceDoesNotExist)
            {
                // Deleted meanwhile.
            }
        }
    }

    /// <summary>True when the job is a trial of this very experiment, not of an earlier one of the same name.</summary>
    private static bool BelongsTo(Resource job, Resource experiment) =>
        experiment.Metadata.Uid is not { Length: > 0 } uid
        || job.Metadata.Annotations?.TryGetValue(ExperimentUidAnnotation, out var owner) != true
        || owner == uid;

    private Task<Run> CreateParentRunAsync(TuningExperiment experiment, CancellationToken cancellationToken) =>
        FindOrCreateParentRunAsync(metadata, experiment, time.GetUtcNow(), cancellationToken);

    /// <summary>
    /// The parent tracking run an Experiment's trial runs nest under (through the trial TrainJobs' parent-run annotation),
    /// found again by the experiment's uid tag or created. The local control plane and the operator both use it.
    /// </summary>
    public static async Task<Run> FindOrCreateParentRunAsync(IMetadataStore metadata, TuningExperiment experiment, DateTimeOffset startTime, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(experiment);
        var trackingName = experiment.Spec.TrialTemplate?.TrialSpec?.Experiment ?? experiment.Metadata.Name!;
        var tracking = await metadata.GetOrCreateExperimentAsync(trackingName, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (experiment.Metadata.Uid is { Length: > 0 } uid)
        {
            var existing = await metadata.SearchRunsAsync(
                new RunSearch([tracking.ExperimentId], $"tags.`{ExperimentUidTag}` = '{uid}'", MaxResults: 1),
                cancellationToken).ConfigureAwait(false);
            if (existing.Items.Count > 0)
            {
                return existing.Items[0];
            }
        }

        var spec = experiment.Spec;
        var name = experiment.Metadata.Name!;
        return await metadata.CreateRunAsync(
            new NewRun(
                tracking.ExperimentId,
                RunName: name,
                StartTime: startTime.ToUnixTimeMilliseconds(),
                Tags:
                [
                    new Tag(ExperimentTag, TrainJobReconciler.Key(experiment)),
                    new Tag(ExperimentUidTag, experiment.Metadata.Uid ?? ""),
                    new Tag(TrainJobReconciler.RunNameTag, name),
                    new Tag("capstan.experiment.algorithm", spec.Algorithm?.AlgorithmName ?? "random"),
                    new Tag("capstan.experiment.objective", string.Join(", ", TuningSearch.Objectives(spec).Select(o => $"{o.Direction.ToString().ToLowerInvariant()} {o.Name}"))),
                ]),
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The trials: every TrainJob with the experiment's label, and the recorded ones whose TrainJob is gone.</summary>
    private async Task<List<ExperimentTrial>> LoadTrialsAsync(TuningExperiment experiment, Engine.SearchSpace space, CancellationToken cancellationToken)
    {
        var ns = experiment.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;
        var jobs = (await resources.ListAsync(TrainJob.KindName, ns, new Dictionary<string, string> { [ExperimentLabel] = experiment.Metadata.Name! }, cancellationToken).ConfigureAwait(false))
            .OfType<TrainJob>()
            .Where(j => BelongsTo(j, experiment))
            .ToDictionary(j => j.Metadata.Name!, StringComparer.Ordinal);
        return ExperimentProgress.MatchTrials(experiment, jobs, space);
    }

    /// <summary>Brings one trial's result up to date with its TrainJob; returns when to look again, if sooner than an event would.</summary>
    private async Task<TimeSpan?> ObserveTrialAsync(TuningExperiment experiment, ExperimentTrial trial, CancellationToken cancellationToken)
    {
        var result = trial.Result;
        if (IsTerminal(result.Phase))
        {
            if (result.Phase is TrialPhase.EarlyStopped or TrialPhase.Killed && trial.Job?.Status?.RunId is { } stoppedRun && trial.Job.Status.Phase is TrainJobPhase.Failed)
            {
                await MarkRunKilledAsync(stoppedRun, cancellationToken).ConfigureAwait(false);
            }

            return null;
        }

        if (trial.Job is not { } job)
        {
            // Lost: the trial was recorded but its TrainJob is gone (deleted, or never written before a crash). Run it again.
            trial.Job = await RecreateAsync(experiment, trial, "its TrainJob was not found", cancellationToken).ConfigureAwait(false);
            return null;
        }

        var jobStatus = job.Status;
        result.RunId = jobStatus?.RunId ?? result.RunId;
        switch (jobStatus?.Phase)
        {
            case null or TrainJobPhase.Pending or TrainJobPhase.Queued:
                result.Phase = TrialPhase.Pending;
                result.Message = jobStatus?.Message;
                return null;
            case TrainJobPhase.Running:
                result.Phase = TrialPhase.Running;
                result.Message = jobStatus.Message;
                return null;
            case TrainJobPhase.Failed:
                var failed = jobStatus.Conditions?.FirstOrDefault(c => c.Type == TrainJobReconciler.ConditionFailed);
                if (failed?.Reason == WorkloadReasons.Lost && (result.Reruns ?? 0) < _options.MaxReruns)
                {
                    await resources.DeleteAsync(TrainJob.KindName, job.Metadata.Namespace!, job.Metadata.Name!, cancellationToken).ConfigureAwait(false);
                    trial.Job = await RecreateAsync(experiment, trial, "its processes were lost with the control plane", cancellationToken).ConfigureAwait(false);
                    return null;
                }

                result.Phase = TrialPhase.Failed;
                result.Reason = failed?.Reason ?? "Failed";
                result.Message = jobStatus.Message;
                result.Observation = await ObserveAsync(experiment.Spec, result.RunId, cancellationToken).ConfigureAwait(false);
                await LogTrialParamsAsync(trial, cancellationToken).ConfigureAwait(false);
                await resources.RecordEventAsync(experiment, ResourceEventType.Warning, "TrialFailed", $"Trial {trial.Name} failed ({result.Reason}): {result.Message}", cancellationToken).ConfigureAwait(false);
                return null;
            default:
                var observation = await ObserveAsync(experiment.Spec, result.RunId, cancellationToken).ConfigureAwait(false);
                result.Observation = observation;
                if (trial.Values(TuningSearch.Objectives(experiment.Spec)) is null)
                {
                    // Metrics printed last may still be on their way into the run: give them a moment before giving up.
                    // Counted from when the TrainJob was seen to succeed: an adopted trial may have ended long before, while no one was listening.
                    var succeededAt = jobStatus.Conditions?.FirstOrDefault(c => c.Type == TrainJobReconciler.ConditionSucceeded)?.LastTransitionTime;
                    var since = time.GetUtcNow() - (succeededAt ?? jobStatus.CompletionTime ?? time.GetUtcNow());
                    if (since < _options.MetricsGracePeriod)
                    {
                        result.Phase = TrialPhase.Running;
                        result.Message = "Succeeded; waiting for its metrics";
                        return _options.MetricsGracePeriod - since;
                    }

                    // Lines printed while no control plane was listening (a restart) never reached the run: read them from the log.
                    if (await BackfillFromLogAsync(experiment.Spec, job, result.RunId, cancellationToken).ConfigureAwait(false))
                    {
                        result.Observation = await ObserveAsync(experiment.Spec, result.RunId, cancellationToken).ConfigureAwait(false);
                    }
                }

                if (trial.Values(TuningSearch.Objectives(experiment.Spec)) is null)
                {
                    var missing = string.Join(", ", TuningSearch.Objectives(experiment.Spec).Select(o => o.Name));
                    result.Phase = TrialPhase.MetricsUnavailable;
                    result.Reason = ReasonMetricsUnavailable;
                    result.Message = $"The trial succeeded but reported no {missing}";
                    await resources.RecordEventAsync(experiment, ResourceEventType.Warning, ReasonMetricsUnavailable, $"Trial {trial.Name}: {result.Message}", cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    result.Phase = TrialPhase.Succeeded;
                    result.Reason = "Succeeded";
                    result.Message = jobStatus.Message;
                    await resources.RecordEventAsync(experiment, ResourceEventType.Normal, "TrialSucceeded", $"Trial {trial.Name} succeeded: {Describe(result.Observation)}", cancellationToken).ConfigureAwait(false);
                }

                await LogTrialParamsAsync(trial, cancellationToken).ConfigureAwait(false);
                return null;
        }
    }

    /// <summary>Logs into the run the series of every objective or additional metric the trial printed as <c>name=value</c> but the run lacks.</summary>
    private async Task<bool> BackfillFromLogAsync(ExperimentSpec spec, TrainJob job, string? runId, CancellationToken cancellationToken)
    {
        if (runId is null || job.Status?.Attempts is not { } attempt || attempt < 1)
        {
            return false;
        }

        var run = await metadata.GetRunAsync(runId, cancellationToken).ConfigureAwait(false);
        var wanted = MetricNames(spec).Where(name => !run.Data.Metrics.Any(m => m.Key == name)).ToHashSet(StringComparer.Ordinal);
        if (wanted.Count == 0)
        {
            return false;
        }

        var parser = new StdoutMetrics();
        var found = new List<Metric>();
        var timestamp = time.GetUtcNow().ToUnixTimeMilliseconds();
        var multiReplica = (job.Spec.Replicas ?? 1) > 1;
        await foreach (var line in runtime.ReadLogsAsync(TrainJobWorkloads.WorkloadId(job, attempt), follow: false, cancellationToken).ConfigureAwait(false))
        {
            // Rank 0's lines only, as the runtime reports metrics.
            var text = multiReplica ? (line.StartsWith("[0] ", StringComparison.Ordinal) ? line[4..] : null) : line;
            if (text is not null)
            {
                found.AddRange(parser.Parse(text, timestamp).Where(m => wanted.Contains(m.Key)));
            }
        }

        foreach (var chunk in found.Chunk(LogBatch.MaxMetrics))
        {
            await metadata.LogBatchAsync(runId, new LogBatch(Metrics: chunk), cancellationToken).ConfigureAwait(false);
        }

        return found.Count > 0;
    }

    private async Task ConsiderStoppingAsync(TuningExperiment experiment, ExperimentTrial trial, List<ExperimentTrial> trials, Engine.IEarlyStoppingRule rule, CancellationToken cancellationToken)
    {
        var objectives = TuningSearch.Objectives(experiment.Spec);
        if (trial.Result.RunId is not { } runId || trial.Job is not { } job)
        {
            return;
        }

        trial.Intermediate = await SeriesAsync(runId, objectives[0].Name, finished: false, cancellationToken).ConfigureAwait(false);
        if (trial.Intermediate.Count == 0)
        {
            return;
        }

        // The rule compares against the completed trials' series: each is read once and kept.
        var history = new List<Engine.Trial>();
        foreach (var other in trials)
        {
            if (other.Result.Phase == TrialPhase.Succeeded && other.Result.RunId is { } otherRun && other.Intermediate is null)
            {
                other.Intermediate = await SeriesAsync(otherRun, objectives[0].Name, finished: true, cancellationToken).ConfigureAwait(false);
            }

            history.Add(other.ToEngine(objectives));
        }

        var decision = rule.ShouldStop(trial.ToEngine(objectives), trial.Intermediate.Max(v => v.Step), history);
        if (!decision.Stop)
        {
            return;
        }

        // Record the decision first: a pass that dies after stopping the workload still knows why the trial ended.
        trial.Result.Phase = TrialPhase.EarlyStopped;
        trial.Result.Reason = ReasonEarlyStopped;
        trial.Result.Message = decision.Reason;
        trial.Result.Observation = await ObserveAsync(experiment.Spec, runId, cancellationToken).ConfigureAwait(false);
        await WriteProgressAsync(experiment, trials, objectives, cancellationToken).ConfigureAwait(false);
        await StopJobAsync(job, cancellationToken).ConfigureAwait(false);
        await resources.RecordEventAsync(job, ResourceEventType.Normal, ReasonEarlyStopped, $"Stopped by {rule.Name}: {decision.Reason}", cancellationToken).ConfigureAwait(false);
        await resources.RecordEventAsync(experiment, ResourceEventType.Normal, "TrialEarlyStopped", $"Trial {trial.Name}: {decision.Reason}", cancellationToken).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<Engine.IntermediateValue>> SeriesAsync(string runId, string metric, bool finished, CancellationToken cancellationToken)
    {
        var cacheKey = runId + "\n" + metric;
        if (finished && _finishedSeries.TryGetValue(cacheKey, out var cached))
        {
            return cached;
        }

        var history = await metadata.GetMetricHistoryAsync(runId, metric, cancellationToken: cancellationToken).ConfigureAwait(false);
        IReadOnlyList<Engine.IntermediateValue> series = [.. history.Items.OrderBy(m => m.Step).ThenBy(m => m.Timestamp).Select(m => new Engine.IntermediateValue(m.Step, m.Value))];
        if (finished)
        {
            _finishedSeries[cacheKey] = series;
        }

        return series;
    }

    /// <summary>Katib's observation of a run: min, max and latest of each objective and additional metric.</summary>
    private async Task<Observation?> ObserveAsync(ExperimentSpec spec, string? runId, CancellationToken cancellationToken)
    {
        if (runId is null)
        {
            return null;
        }

        var metrics = new List<ObservedMetric>();
        foreach (var name in MetricNames(spec))
        {
            var history = await metadata.GetMetricHistoryAsync(runId, name, cancellationToken: cancellationToken).ConfigureAwait(false);
            var values = history.Items.Where(m => !double.IsNaN(m.Value)).ToList();
            if (values.Count == 0)
            {
                continue;
            }

            var latest = values.OrderBy(m => m.Step).ThenBy(m => m.Timestamp).Last();
            metrics.Add(new ObservedMetric { Name = name, Min = values.Min(m => m.Value), Max = values.Max(m => m.Value), Latest = latest.Value });
        }

        return metrics.Count == 0 ? null : new Observation { Metrics = metrics };
    }

    private static IEnumerable<string> MetricNames(ExperimentSpec spec) =>
        TuningSearch.Objectives(spec).Select(o => o.Name).Concat(spec.Objective?.AdditionalMetricNames ?? []).Distinct(StringComparer.Ordinal);

    /// <summary>The trial's parameters as its run's params, once it has ended; a value the training code logged itself is left as it is.</summary>
    private async Task LogTrialParamsAsync(ExperimentTrial trial, CancellationToken cancellationToken)
    {
        if (trial.Result.RunId is not { } runId)
        {
            return;
        }

        foreach (var (name, value) in trial.Parameters.ToStrings())
        {
            try
            {
                await metadata.LogBatchAsync(runId, new LogBatch(Params: [new Param(name, value)]), cancellationToken).ConfigureAwait(false);
            }
            catch (CapstanException e) when (e.Code == ErrorCode.InvalidParameterValue)
            {
                // The training code logged this param with its own spelling of the value.
            }
        }
    }

    private async Task MarkStoppedRunsAsync(TuningExperiment experiment, CancellationToken cancellationToken)
    {
        var ns = experiment.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;
        foreach (var trial in experiment.Status?.TrialResults ?? [])
        {
            if (trial is { Phase: TrialPhase.EarlyStopped or TrialPhase.Killed, RunId: { } runId, Name: { } name }
                && await resources.FindAsync(TrainJob.KindName, ns, name, cancellationToken).ConfigureAwait(false) is TrainJob { Status.Phase: TrainJobPhase.Failed })
            {
                await MarkRunKilledAsync(runId, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task MarkRunKilledAsync(string runId, CancellationToken cancellationToken)
    {
        var run = await metadata.GetRunAsync(runId, cancellationToken).ConfigureAwait(false);
        if (run.Info.Status == RunStatus.Failed)
        {
            await metadata.UpdateRunAsync(runId, new RunUpdate(RunStatus.Killed), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<ExperimentTrial> CreateTrialAsync(TuningExperiment experiment, int index, IReadOnlyDictionary<string, string> parameters, int reruns, CancellationToken cancellationToken)
    {
        var name = TrialName(experiment.Metadata.Name!, index);
        var job = BuildTrialJob(experiment, name, index, parameters);
        TrainJob created;
        try
        {
            created = (TrainJob)await resources.CreateAsync(job, cancellationToken).ConfigureAwait(false);
        }
        catch (CapstanException e) when (e.Code == ErrorCode.ResourceAlreadyExists)
        {
            var existing = await resources.GetAsync(TrainJob.KindName, job.Metadata.Namespace!, name, cancellationToken).ConfigureAwait(false);
            if (ExperimentKeyOf(existing) != TrainJobReconciler.Key(experiment))
            {
                throw CapstanException.Invalid($"trial {name} cannot be created: a TrainJob of that name exists and belongs to no experiment {experiment.Metadata.Name}");
            }

            if (!BelongsTo(existing, experiment))
            {
                // A trial of an earlier experiment of the same name, still being deleted: make room and try again.
                await resources.DeleteAsync(TrainJob.KindName, job.Metadata.Namespace!, name, cancellationToken).ConfigureAwait(false);
                throw new CapstanException(ErrorCode.Conflict, $"trial {name} of an earlier experiment {experiment.Metadata.Name} was in the way; deleted it");
            }

            created = (TrainJob)existing;
        }

        var values = string.Join(", ", parameters.Select(p => $"{p.Key}={p.Value}"));
        await resources.RecordEventAsync(experiment, ResourceEventType.Normal, reruns > 0 ? "TrialRerun" : "TrialCreated", $"Trial {name}: {values}", cancellationToken).ConfigureAwait(false);
        var space = TuningSearch.Space(experiment.Spec);
        return new ExperimentTrial(experiment.Spec, name, index, space.Parse(parameters), new TrialResult
        {
            Name = name,
            Index = index,
            Phase = TrialPhase.Pending,
            Reruns = reruns == 0 ? null : reruns,
            ParameterAssignments = [.. parameters.Select(p => new ParameterAssignment { Name = p.Key, Value = p.Value })],
        }, created);
    }

    private async Task<TrainJob> RecreateAsync(TuningExperiment experiment, ExperimentTrial trial, string why, CancellationToken cancellationToken)
    {
        var reruns = (trial.Result.Reruns ?? 0) + 1;
        var recreated = await CreateTrialAsync(experiment, trial.Index, trial.Parameters.ToStrings(), reruns, cancellationToken).ConfigureAwait(false);
        trial.Result.Reruns = reruns;
        trial.Result.Phase = TrialPhase.Pending;
        trial.Result.RunId = null;
        trial.Result.Message = $"Running again: {why}";
        return recreated.Job!;
    }

    /// <summary>The trial's TrainJob: the template with its placeholders filled, labelled, annotated and nested under the parent run.</summary>
    public static TrainJob BuildTrialJob(TuningExperiment experiment, string name, int index, IReadOnlyDictionary<string, string> parameters)
    {
        var template = experiment.Spec.TrialTemplate!;
        var byTrialName = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var trialParameter in template.TrialParameters ?? [])
        {
            if (trialParameter.Name is { } trialName && trialParameter.Reference is { } reference && parameters.TryGetValue(reference, out var value))
            {
                byTrialName[trialName] = value;
            }
        }

        var ns = experiment.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;
        var meta = new Dictionary<string, string>(StringComparer.Ordinal) { ["Name"] = name, ["Namespace"] = ns };
        var spec = TrialTemplates.Expand(template.TrialSpec!, byTrialName, meta);
        spec.Experiment ??= experiment.Metadata.Name;

        // The values also reach the process as parameters: ${params.x} and the CAPSTAN_PARAM_X variables.
        var jobParams = spec.Params ??= new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (trialName, value) in byTrialName)
        {
            jobParams[trialName] = value;
        }

        var labels = new Dictionary<string, string>(experiment.Metadata.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal)
        {
            [ExperimentLabel] = experiment.Metadata.Name!,
        };
        var annotations = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [TrialIndexAnnotation] = index.ToString(CultureInfo.InvariantCulture),
            [TrialParametersAnnotation] = JsonSerializer.Serialize(parameters),
        };
        if (experiment.Metadata.Uid is { Length: > 0 } uid)
        {
            annotations[ExperimentUidAnnotation] = uid;
        }

        if (experiment.Status?.RunId is { } parentRunId)
        {
            annotations[TrainJobReconciler.ParentRunAnnotation] = parentRunId;
        }

        return new TrainJob
        {
            Metadata = new ResourceMetadata { Name = name, Namespace = ns, Labels = labels, Annotations = annotations },
            Spec = spec,
        };
    }

    private async Task StopJobAsync(TrainJob job, CancellationToken cancellationToken)
    {
        if (job.Status?.Attempts is { } attempts and > 0)
        {
            await runtime.StopAsync(TrainJobWorkloads.WorkloadId(job, attempts), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Ends the experiment: stops what still runs (as Killed trials), closes the parent run and records why.</summary>
    private async Task<ReconcileResult> FinishAsync(TuningExperiment experiment, List<ExperimentTrial> trials, bool succeeded, string reason, string message, CancellationToken cancellationToken)
    {
        var objectives = SafeObjectives(experiment.Spec);
        foreach (var trial in trials.Where(t => t.Result.Phase is TrialPhase.Pending or TrialPhase.Running))
        {
            trial.Result.Phase = TrialPhase.Killed;
            trial.Result.Reason = reason;
            trial.Result.Message = "Stopped: the experiment ended";
        }

        var status = experiment.Status!;
        status.Phase = succeeded ? ExperimentPhase.Succeeded : ExperimentPhase.Failed;
        status.CompletionTime = time.GetUtcNow();
        status.Message = message;
        Summarize(status, trials, objectives);
        SetCondition(status, ConditionRestarting, ConditionStatus.False, reason, message, experiment.Metadata.Generation);
        SetCondition(status, ConditionRunning, ConditionStatus.False, reason, message, experiment.Metadata.Generation);
        SetCondition(status, succeeded ? ConditionSucceeded : ConditionFailed, ConditionStatus.True, reason, message, experiment.Metadata.Generation);
        experiment = await WriteStatusAsync(experiment, cancellationToken).ConfigureAwait(false);
        foreach (var trial in trials.Where(t => t.Result.Phase == TrialPhase.Killed && t.Job is not null))
        {
            await StopJobAsync(trial.Job!, cancellationToken).ConfigureAwait(false);
        }

        if (status.RunId is { } runId)
        {
            await LogBestAsync(experiment, runId, cancellationToken).ConfigureAwait(false);
            await metadata.UpdateRunAsync(runId, new RunUpdate(succeeded ? RunStatus.Finished : RunStatus.Failed, time.GetUtcNow().ToUnixTimeMilliseconds()), cancellationToken).ConfigureAwait(false);
        }

        await resources.RecordEventAsync(experiment, succeeded ? ResourceEventType.Normal : ResourceEventType.Warning, reason, message, cancellationToken).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    private static IReadOnlyList<Engine.Objective> SafeObjectives(ExperimentSpec spec) => TuningSearch.Objectives(spec);

    /// <summary>The parent run gets the best trial's objective values as its metrics and the trial's name as a tag.</summary>
    private async Task LogBestAsync(TuningExperiment experiment, string runId, CancellationToken cancellationToken)
    {
        if (experiment.Status?.CurrentOptimalTrial is not { Name: { } best } optimal)
        {
            return;
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var objectives = SafeObjectives(experiment.Spec);
        var metrics = objectives
            .Select(o => (o.Name, Value: Value(experiment.Spec, optimal.Observation, o.Name)))
            .Where(m => m.Value is not null)
            .Select(m => new Metric(m.Name, m.Value!.Value, now, experiment.Status.Trials ?? 0))
            .ToList();
        await metadata.LogBatchAsync(runId, new LogBatch(Metrics: metrics, Tags: [new Tag(BestTrialTag, best)]), cancellationToken).ConfigureAwait(false);
    }

    private async Task WriteProgressAsync(TuningExperiment experiment, List<ExperimentTrial> trials, IReadOnlyList<Engine.Objective> objectives, CancellationToken cancellationToken)
    {
        var status = experiment.Status!;
        var optimalBefore = status.CurrentOptimalTrial?.Name;
        Summarize(status, trials, objectives);
        status.Message = ExperimentProgress.ProgressMessage(experiment.Spec, status);
        if (status.Phase is not ExperimentPhase.Running && (status.Trials ?? 0) > 0)
        {
            status.Phase = ExperimentPhase.Running;
            SetCondition(status, ConditionRestarting, ConditionStatus.False, "Running", "Trials running", experiment.Metadata.Generation);
            SetCondition(status, ConditionRunning, ConditionStatus.True, "ExperimentRunning", "Experiment is running", experiment.Metadata.Generation);
        }

        var written = await WriteStatusAsync(experiment, cancellationToken).ConfigureAwait(false);
        experiment.Metadata.ResourceVersion = written.Metadata.ResourceVersion;
        if (status.CurrentOptimalTrial is { Name: { } best } && best != optimalBefore && status.RunId is { } runId)
        {
            await LogBestAsync(experiment, runId, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Counts, the optimal trial, the Pareto front and the trial list, from the trials' results.</summary>
    private static void Summarize(ExperimentStatus status, List<ExperimentTrial> trials, IReadOnlyList<Engine.Objective> objectives) =>
        ExperimentProgress.Summarize(status, [.. trials.Select(t => t.Result)], [.. trials.Select(t => t.ToEngine(objectives))], objectives);

    private static bool IsTerminal(TrialPhase? phase) => ExperimentProgress.IsTerminal(phase);

    /// <summary>The value of <paramref name="metric"/> in an observation, by the metric's strategy.</summary>
    public static double? Value(ExperimentSpec spec, Observation? observation, string metric) => ExperimentProgress.Value(spec, observation, metric);

    private static string Describe(Observation? observation) =>
        observation?.Metrics is { Count: > 0 } metrics
            ? string.Join(", ", metrics.Select(m => $"{m.Name}={Format(m.Latest ?? double.NaN)}"))
            : "no metrics";

    private static string Format(double value) => ExperimentProgress.Format(value);

    private static TimeSpan? Min(TimeSpan? a, TimeSpan? b) => a is null ? b : b is null ? a : a < b ? a : b;

    private async Task<TuningExperiment> WriteStatusAsync(TuningExperiment experiment, CancellationToken cancellationToken)
    {
        experiment.Status!.ObservedGeneration = experiment.Metadata.Generation;
        return (TuningExperiment)await resources.UpdateStatusAsync(experiment, cancellationToken).ConfigureAwait(false);
    }

    private bool SetCondition(ExperimentStatus status, string type, ConditionStatus value, string? reason, string? message, long? generation) =>
        status.SetCondition(type, value, reason, message, generation, time.GetUtcNow());
}
