using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Cluster;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Engine = Capstan.Tuning;
using Metric = Capstan.Core.Tracking.Metric;
using RunStatus = Capstan.Core.Tracking.RunStatus;
using RunUpdate = Capstan.Core.Tracking.RunUpdate;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>
/// Runs Experiment custom resources: each trial is a TrainJob custom resource (which <see cref="TrainJobController"/>
/// runs as a Job) built from the trial template as the local control plane builds it
/// (<see cref="ExperimentReconciler.BuildTrialJob"/>: <c>${trialParameters.x}</c> substituted, the
/// <c>capstan.dev/experiment</c> label, the index and parameters in annotations), owned by the Experiment so deleting it
/// garbage-collects the trials. Up to parallelTrialCount run at once, up to maxTrialCount in all. A trial's outcome is
/// its TrainJob's phase; its objective comes from the <c>name=value</c> lines its rank-0 pod printed
/// (<see cref="TrialMetrics"/>). The next parameters come from the same seeded Capstan.Tuning algorithm as locally, fed
/// the history rebuilt on every pass from the trial TrainJobs that exist and the results recorded in the status, so a
/// restarted operator or a new leader goes on where the last one stopped, creating no trial twice. When to end and
/// what the status says (counts, optimal trial, conditions Created/Running/Succeeded/Failed) is
/// <see cref="ExperimentProgress"/>, shared with the local loop. Status goes through the status subresource, checked on
/// the resourceVersion read: a 409 re-reads and redoes the pass.
/// Early stopping reads a running trial's log every <see cref="OperatorOptions.ExperimentPollInterval"/>; a trial it
/// stops, like one still running when the experiment ends, is stopped by deleting its TrainJob once the status records
/// why, and holds its slot until the TrainJob is gone.
/// Not yet on a cluster: resuming a finished experiment whose maxTrialCount was raised, and the tracking runs the local
/// loop nests its trials under.
/// </summary>
public sealed class ExperimentController(IKubernetes client, OperatorOptions options, ClusterEvents events, ILogger logger)
{
    /// <summary>The trial's index as a label too, so <c>kubectl get tj -l capstan.dev/trial-index=3</c> finds it.</summary>
    public const string TrialIndexLabel = ExperimentReconciler.TrialIndexAnnotation;

    private const string Plural = "experiments";
    private const string TrainJobs = "trainjobs";

    private static readonly JsonSerializerOptions s_json = ResourceSerializer.JsonOptions;
    private readonly TrialMetrics _metrics = new(client);

    // A completed trial's series does not change: read from its pod once per process (and again after a restart).
    private readonly ConcurrentDictionary<string, IReadOnlyList<Engine.IntermediateValue>> _finishedSeries = new(StringComparer.Ordinal);

    public Task RunAsync(CancellationToken cancellationToken)
    {
        var queue = new WorkQueue(options.QueueCapacity, options.RetryBaseDelay, options.RetryMaxDelay);
        queue.ReportTo(options.Metrics, TuningExperiment.KindName);
        return queue.RunAsync([WatchExperimentsAsync(queue, cancellationToken), WatchTrialsAsync(queue, cancellationToken)], ReconcileAsync, options.Workers, logger, cancellationToken);
    }

    private async Task WatchExperimentsAsync(WorkQueue queue, CancellationToken cancellationToken)
    {
        await foreach (var (_, obj) in CustomObjects(Plural, labelSelector: null).RunAsync(cancellationToken).ConfigureAwait(false))
        {
            await queue.AddAsync(TrainJobController.Key(obj["metadata"]?["namespace"]?.GetValue<string>(), obj["metadata"]?["name"]?.GetValue<string>()), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The trials (TrainJobs with the <c>capstan.dev/experiment</c> label), each waking its Experiment when its status moves.</summary>
    private async Task WatchTrialsAsync(WorkQueue queue, CancellationToken cancellationToken)
    {
        await foreach (var (_, obj) in CustomObjects(TrainJobs, ExperimentReconciler.ExperimentLabel).RunAsync(cancellationToken).ConfigureAwait(false))
        {
            if (obj["metadata"]?["labels"]?[ExperimentReconciler.ExperimentLabel]?.GetValue<string>() is { } experiment)
            {
                await queue.AddAsync(TrainJobController.Key(obj["metadata"]?["namespace"]?.GetValue<string>(), experiment), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private ListWatch<JsonObject> CustomObjects(string plural, string? labelSelector) => new(
        plural,
        async ct =>
        {
            var list = CustomResources.ToNode(options.Namespace is { } ns
                ? await client.CustomObjects.ListNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, ns, plural, labelSelector: labelSelector, cancellationToken: ct).ConfigureAwait(false)
                : await client.CustomObjects.ListCustomObjectForAllNamespacesAsync(CustomResources.Group, CustomResources.Version, plural, labelSelector: labelSelector, cancellationToken: ct).ConfigureAwait(false));
            return (list["items"]?.AsArray().Select(i => i!.AsObject()) ?? [], list["metadata"]?["resourceVersion"]?.GetValue<string>() ?? "");
        },
        (version, onError, ct) => TrainJobController.Objects(options.Namespace is { } ns
            ? client.CustomObjects.WatchListNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, ns, plural, labelSelector: labelSelector, resourceVersion: version, onError: onError, cancellationToken: ct)
            : client.CustomObjects.WatchListCustomObjectForAllNamespacesAsync(CustomResources.Group, CustomResources.Version, plural, labelSelector: labelSelector, resourceVersion: version, onError: onError, cancellationToken: ct)),
        CustomResources.ResourceVersionOf,
        options.WatchRetryDelay,
        logger);

    /// <summary>One pass over one Experiment; returns when to look again if nothing else will wake it.</summary>
    public async Task<TimeSpan?> ReconcileAsync(string key, CancellationToken cancellationToken)
    {
        var (ns, name) = TrainJobController.Split(key);
        JsonObject raw;
        try
        {
            raw = CustomResources.ToNode(await client.CustomObjects.GetNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, ns, Plural, name, cancellationToken).ConfigureAwait(false));
        }
        catch (HttpOperationException e) when (CustomResources.IsNotFound(e))
        {
            return null; // Deleted: the garbage collector deletes its trials, whose Jobs go with them.
        }

        if (CustomResources.DeletionTimestamp(raw) is not null)
        {
            return null;
        }

        // Defaults as the stores apply them (trialParameters named after the parameters, ...): kubectl applies none.
        var experiment = (TuningExperiment)CustomResources.ToResource(raw);
        experiment.ApplyDefaults();
        var before = Snapshot(raw);
        var status = experiment.Status ??= new ExperimentStatus();
        if (ExperimentProgress.Resumable(experiment))
        {
            // maxTrialCount raised after the experiment reached it: go on from the trials it has (written with this pass's status).
            var now = DateTimeOffset.UtcNow;
            status.Phase = ExperimentPhase.Restarting;
            status.CompletionTime = null;
            status.SetCondition(ExperimentReconciler.ConditionSucceeded, ConditionStatus.False, "Resumed", "The spec changed", experiment.Metadata.Generation, now);
            status.SetCondition(ExperimentReconciler.ConditionRestarting, ConditionStatus.True, "SpecChanged", $"Resuming for maxTrialCount {experiment.Spec.MaxTrialCount}", experiment.Metadata.Generation, now);
            await RecordAsync(raw, EventTypes.Normal, "Resumed", $"Resuming: maxTrialCount is now {experiment.Spec.MaxTrialCount}", cancellationToken).ConfigureAwait(false);
            await ReopenParentRunAsync(raw, experiment, now, cancellationToken).ConfigureAwait(false);
        }
        else if (status.Phase is ExperimentPhase.Succeeded or ExperimentPhase.Failed)
        {
            // What the end stopped goes, even when the pass that ended the experiment failed before deleting it.
            try
            {
                var ended = await LoadTrialsAsync(experiment, TuningSearch.Space(experiment.Spec), cancellationToken).ConfigureAwait(false);
                await StopAsync(ended.Where(Stopping), cancellationToken).ConfigureAwait(false);
            }
            catch (Engine.TuningSpecException)
            {
                // Ended on an invalid spec: it never created a trial.
            }

            // The parent run is still ended if the API was down when the experiment finished.
            if (TrackedRun.EndPending(status))
            {
                var retry = await EndParentRunAsync(raw, experiment, pending: true, cancellationToken).ConfigureAwait(false);
                await WriteStatusAsync(raw, before, experiment, cancellationToken).ConfigureAwait(false);
                return retry;
            }

            return null;
        }

        Engine.ISearchAlgorithm algorithm;
        Engine.IEarlyStoppingRule? earlyStopping;
        try
        {
            var errors = ResourceValidation.Validate(experiment, "experiment");
            if (errors.Count > 0)
            {
                return await FinishAsync(raw, experiment, [], new ExperimentEnd(false, ExperimentReconciler.ReasonInvalidSpec, string.Join("; ", errors.Select(e => $"{e.FieldPath}: {e.Message}"))), cancellationToken).ConfigureAwait(false);
            }

            algorithm = TuningSearch.Algorithm(experiment);
            earlyStopping = TuningSearch.EarlyStopping(experiment.Spec);
        }
        catch (Engine.TuningSpecException e)
        {
            return await FinishAsync(raw, experiment, [], new ExperimentEnd(false, ExperimentReconciler.ReasonInvalidSpec, e.Message), cancellationToken).ConfigureAwait(false);
        }

        var generation = experiment.Metadata.Generation;
        if (status.Phase is null)
        {
            var now = DateTimeOffset.UtcNow;
            status.Phase = ExperimentPhase.Created;
            status.StartTime = now;
            status.Trials = 0;
            status.Message = "Experiment created";
            status.SetCondition(ExperimentReconciler.ConditionCreated, ConditionStatus.True, "ExperimentCreated", $"Searching with {algorithm.Name}", generation, now);
            await RecordAsync(raw, EventTypes.Normal, "Created", $"Searching with {algorithm.Name}", cancellationToken).ConfigureAwait(false);
        }

        // The parent run the trials' runs nest under, as locally (the trial TrainJobs carry it in an annotation).
        if (options.Tracking is { } tracking && status.RunId is null)
        {
            try
            {
                var parent = await ExperimentReconciler.FindOrCreateParentRunAsync(tracking, experiment, status.StartTime ?? DateTimeOffset.UtcNow, cancellationToken).ConfigureAwait(false);
                status.RunId = parent.Info.RunId;
                await RecordAsync(raw, EventTypes.Normal, "RunCreated", $"Parent run {parent.Info.RunId}", cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                await RecordAsync(raw, EventTypes.Warning, "TrackingUnavailable", $"No parent run: the Capstan API at {options.Render.ApiUrl} did not answer ({e.Message})", cancellationToken).ConfigureAwait(false);
            }
        }

        var objectives = algorithm.Objectives;
        var trials = await LoadTrialsAsync(experiment, algorithm.Space, cancellationToken).ConfigureAwait(false);
        foreach (var trial in trials)
        {
            await ObserveAsync(raw, experiment, trial, cancellationToken).ConfigureAwait(false);
        }

        TimeSpan? requeue = null;
        if (earlyStopping is not null)
        {
            foreach (var trial in trials.Where(t => t.Result.Phase == TrialPhase.Running && t.Job is not null).ToList())
            {
                await ConsiderStoppingAsync(raw, experiment, trial, trials, earlyStopping, objectives, cancellationToken).ConfigureAwait(false);
            }

            if (trials.Any(t => t.Result.Phase == TrialPhase.Running))
            {
                requeue = options.ExperimentPollInterval; // Metrics arrive in logs, which no watch reports.
            }
        }

        var results = trials.Select(t => t.Result).ToList();
        var counts = ExperimentProgress.Count(results);
        var active = counts.Pending + counts.Running + trials.Count(Stopping);
        if (ExperimentProgress.Ending(experiment.Spec, objectives, results, active) is { } end)
        {
            return await FinishAsync(raw, experiment, trials, end, cancellationToken).ConfigureAwait(false);
        }

        var room = ExperimentProgress.Room(experiment.Spec, active, trials.Count);
        if (room > 0)
        {
            var batch = algorithm.Suggest([.. trials.Select(t => t.ToEngine(objectives))], room);
            foreach (var suggestion in batch.Suggestions)
            {
                var index = trials.Count == 0 ? 1 : trials.Max(t => t.Index) + 1;
                var parameters = suggestion.Parameters.ToStrings();
                if (await CreateTrialAsync(raw, experiment, index, parameters, cancellationToken).ConfigureAwait(false) is not { } job)
                {
                    // The name is held by a trial of an earlier experiment of this name that is still going away.
                    return TimeSpan.FromSeconds(1);
                }

                trials.Add(new ExperimentTrial(experiment.Spec, job.Metadata.Name!, index, suggestion.Parameters, ExperimentProgress.NewResult(job.Metadata.Name!, index, parameters), job));
            }

            if (batch.Exhausted && batch.Suggestions.Count == 0 && active == 0)
            {
                return await FinishAsync(raw, experiment, trials, ExperimentProgress.Exhausted([.. trials.Select(t => t.Result)]), cancellationToken).ConfigureAwait(false);
            }
        }

        Summarize(experiment, trials, objectives);
        status.Message = ExperimentProgress.ProgressMessage(experiment.Spec, status);
        if (status.Phase is not ExperimentPhase.Running && (status.Trials ?? 0) > 0)
        {
            status.Phase = ExperimentPhase.Running;
            status.SetCondition(ExperimentReconciler.ConditionRunning, ConditionStatus.True, "ExperimentRunning", "Experiment is running", generation, DateTimeOffset.UtcNow);
        }

        await WriteStatusAsync(raw, before, experiment, cancellationToken).ConfigureAwait(false);
        await StopAsync(trials.Where(Stopping), cancellationToken).ConfigureAwait(false);
        return requeue;
    }

    /// <summary>A trial that has been stopped (early, or by the end of the experiment) whose TrainJob is still there and unfinished.</summary>
    private static bool Stopping(ExperimentTrial trial) =>
        trial.Result.Phase is TrialPhase.EarlyStopped or TrialPhase.Killed
        && trial.Job is not null
        && trial.Job.Status?.Phase is not (TrainJobPhase.Succeeded or TrainJobPhase.Failed);

    /// <summary>Stops trials by deleting their TrainJobs: the garbage collector deletes the Jobs, whose pods are killed.</summary>
    private async Task StopAsync(IEnumerable<ExperimentTrial> trials, CancellationToken cancellationToken)
    {
        foreach (var trial in trials.ToList())
        {
            try
            {
                await client.CustomObjects.DeleteNamespacedCustomObjectAsync(
                    CustomResources.Group, CustomResources.Version, trial.Job!.Metadata.Namespace!, TrainJobs, trial.Name,
                    new V1DeleteOptions { PropagationPolicy = "Background" }, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (CustomResources.IsNotFound(e))
            {
                // Gone already.
            }
        }
    }

    /// <summary>
    /// The printed metrics, plus the series of every wanted metric the trial did not print but logged to its tracking run
    /// (through MLflow, say), as the local control plane reads them from the store.
    /// </summary>
    private async Task<IReadOnlyList<Metric>?> WithTrackedAsync(IReadOnlyList<Metric>? printed, string? runId, IEnumerable<string> names, CancellationToken cancellationToken)
    {
        if (options.Tracking is not { } tracking || runId is null)
        {
            return printed;
        }

        var found = new List<Metric>(printed ?? []);
        foreach (var name in names.Where(n => !found.Any(m => m.Key == n)))
        {
            var history = await tracking.GetMetricHistoryAsync(runId, name, cancellationToken: cancellationToken).ConfigureAwait(false);
            found.AddRange(history.Items);
        }

        return found.Count == 0 && printed is null ? null : found;
    }

    /// <summary>Asks the early-stopping rule about a running trial, with its series so far and the completed trials' series from their logs.</summary>
    private async Task ConsiderStoppingAsync(JsonObject raw, TuningExperiment experiment, ExperimentTrial trial, List<ExperimentTrial> trials, Engine.IEarlyStoppingRule rule, IReadOnlyList<Engine.Objective> objectives, CancellationToken cancellationToken)
    {
        var ns = trial.Job!.Metadata.Namespace!;
        var (metrics, _) = await _metrics.ReadAsync(ns, trial.Name, MetricNames(experiment.Spec), cancellationToken, running: true).ConfigureAwait(false);
        trial.Intermediate = TrialMetrics.Series(metrics, objectives[0].Name);
        if (trial.Intermediate.Count == 0)
        {
            return;
        }

        foreach (var other in trials.Where(t => t.Result.Phase == TrialPhase.Succeeded && t.Intermediate is null))
        {
            var cacheKey = $"{experiment.Metadata.Uid}/{other.Name}";
            if (!_finishedSeries.TryGetValue(cacheKey, out var series))
            {
                var (finished, problem) = await _metrics.ReadAsync(ns, other.Name, [objectives[0].Name], cancellationToken).ConfigureAwait(false);
                series = TrialMetrics.Series(finished, objectives[0].Name);
                if (problem is null)
                {
                    _finishedSeries[cacheKey] = series;
                }
            }

            other.Intermediate = series;
        }

        var history = trials.Select(t => t.ToEngine(objectives)).ToList();
        var decision = rule.ShouldStop(trial.ToEngine(objectives), trial.Intermediate.Max(v => v.Step), history);
        if (!decision.Stop)
        {
            return;
        }

        trial.Result.Phase = TrialPhase.EarlyStopped;
        trial.Result.Reason = ExperimentReconciler.ReasonEarlyStopped;
        trial.Result.Message = decision.Reason;
        trial.Result.Observation = TrialMetrics.Observe(metrics);
        await RecordAsync(raw, EventTypes.Normal, "TrialEarlyStopped", $"Trial {trial.Name} stopped by {rule.Name}: {decision.Reason}", cancellationToken).ConfigureAwait(false);
    }

    private static IEnumerable<string> MetricNames(ExperimentSpec spec) =>
        TuningSearch.Objectives(spec).Select(o => o.Name).Concat(spec.Objective?.AdditionalMetricNames ?? []).Distinct(StringComparer.Ordinal);

    /// <summary>The trials: the TrainJobs this Experiment owns, merged with the results its status recorded (which keep the observations).</summary>
    private async Task<List<ExperimentTrial>> LoadTrialsAsync(TuningExperiment experiment, Engine.SearchSpace space, CancellationToken cancellationToken)
    {
        var ns = experiment.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;
        var name = experiment.Metadata.Name!;
        var list = CustomResources.ToNode(await client.CustomObjects.ListNamespacedCustomObjectAsync(
            CustomResources.Group, CustomResources.Version, ns, TrainJobs, labelSelector: $"{ExperimentReconciler.ExperimentLabel}={name}", cancellationToken: cancellationToken).ConfigureAwait(false));
        var jobs = new Dictionary<string, TrainJob>(StringComparer.Ordinal);
        foreach (var item in list["items"]?.AsArray().Select(i => i!.AsObject()) ?? [])
        {
            if (OwnedBy(item, experiment.Metadata.Uid) && CustomResources.DeletionTimestamp(item) is null && CustomResources.ToResource(item) is TrainJob job)
            {
                jobs[job.Metadata.Name!] = job;
            }
        }

        return ExperimentProgress.MatchTrials(experiment, jobs, space);
    }

    /// <summary>Brings a trial's result up to date with its TrainJob; a finished trial's result is final.</summary>
    private async Task ObserveAsync(JsonObject raw, TuningExperiment experiment, ExperimentTrial trial, CancellationToken cancellationToken)
    {
        var result = trial.Result;
        if (ExperimentProgress.IsTerminal(result.Phase))
        {
            return;
        }

        if (trial.Job is not { } job)
        {
            // Recorded but its TrainJob is gone (deleted by hand): run it again, under its own name and parameters.
            trial.Job = await CreateTrialAsync(raw, experiment, trial.Index, trial.Parameters.ToStrings(), cancellationToken).ConfigureAwait(false);
            result.Phase = TrialPhase.Pending;
            result.Reruns = (result.Reruns ?? 0) + 1;
            result.Message = "Running again: its TrainJob was not found";
            return;
        }

        var jobStatus = job.Status;
        switch (jobStatus?.Phase)
        {
            case null or TrainJobPhase.Pending or TrainJobPhase.Queued:
                result.Phase = TrialPhase.Pending;
                result.Message = jobStatus?.Message;
                return;
            case TrainJobPhase.Running:
                result.Phase = TrialPhase.Running;
                result.Message = jobStatus.Message;
                return;
            case TrainJobPhase.Failed:
                result.Phase = TrialPhase.Failed;
                result.Reason = jobStatus.Conditions?.FirstOrDefault(c => c.Type == TrainJobReconciler.ConditionFailed)?.Reason ?? "Failed";
                result.Message = jobStatus.Message;
                await RecordAsync(raw, EventTypes.Warning, "TrialFailed", $"Trial {trial.Name} failed ({result.Reason}): {result.Message}", cancellationToken).ConfigureAwait(false);
                return;
            default:
                var (metrics, problem) = await _metrics.ReadAsync(job.Metadata.Namespace!, job.Metadata.Name!, MetricNames(experiment.Spec), cancellationToken).ConfigureAwait(false);
                metrics = await WithTrackedAsync(metrics, jobStatus.RunId, MetricNames(experiment.Spec), cancellationToken).ConfigureAwait(false);
                var observation = TrialMetrics.Observe(metrics);
                result.Observation = observation;
                if (ExperimentProgress.Values(experiment.Spec, observation, TuningSearch.Objectives(experiment.Spec)) is null)
                {
                    var missing = string.Join(", ", TuningSearch.Objectives(experiment.Spec).Select(o => o.Name));
                    result.Phase = TrialPhase.MetricsUnavailable;
                    result.Reason = ExperimentReconciler.ReasonMetricsUnavailable;
                    result.Message = problem is null ? $"The trial succeeded but printed no {missing}" : $"The trial succeeded but {problem}";
                    await RecordAsync(raw, EventTypes.Warning, ExperimentReconciler.ReasonMetricsUnavailable, $"Trial {trial.Name}: {result.Message}", cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    result.Phase = TrialPhase.Succeeded;
                    result.Reason = "Succeeded";
                    result.Message = jobStatus.Message;
                    var described = string.Join(", ", observation!.Metrics!.Select(m => $"{m.Name}={ExperimentProgress.Format(m.Latest ?? double.NaN)}"));
                    await RecordAsync(raw, EventTypes.Normal, "TrialSucceeded", $"Trial {trial.Name} succeeded: {described}", cancellationToken).ConfigureAwait(false);
                }

                return;
        }
    }

    /// <summary>
    /// Creates the trial's TrainJob, owned by the Experiment; one that already exists and is ours (a pass whose status
    /// write was lost) is taken as it is. Null when the name is held by a trial of an earlier Experiment of the same name.
    /// </summary>
    private async Task<TrainJob?> CreateTrialAsync(JsonObject raw, TuningExperiment experiment, int index, IReadOnlyDictionary<string, string> parameters, CancellationToken cancellationToken)
    {
        var ns = experiment.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;
        var job = ExperimentReconciler.BuildTrialJob(experiment, ExperimentReconciler.TrialName(experiment.Metadata.Name!, index), index, parameters);
        job.Metadata.Labels![TrialIndexLabel] = index.ToString(CultureInfo.InvariantCulture);
        var body = CustomResources.ToCreateBody(job);
        body["metadata"]!["ownerReferences"] = new JsonArray(new JsonObject
        {
            ["apiVersion"] = Resource.V1Alpha1,
            ["kind"] = TuningExperiment.KindName,
            ["name"] = experiment.Metadata.Name,
            ["uid"] = experiment.Metadata.Uid,
            ["controller"] = true,
            ["blockOwnerDeletion"] = true,
        });
        try
        {
            var created = CustomResources.ToResource(CustomResources.ToNode(await client.CustomObjects.CreateNamespacedCustomObjectAsync(
                body, CustomResources.Group, CustomResources.Version, ns, TrainJobs, cancellationToken: cancellationToken).ConfigureAwait(false)));
            await RecordAsync(raw, EventTypes.Normal, "TrialCreated", $"Trial {job.Metadata.Name}: {string.Join(", ", parameters.Select(p => $"{p.Key}={p.Value}"))}", cancellationToken).ConfigureAwait(false);
            return (TrainJob)created;
        }
        catch (HttpOperationException e) when (CustomResources.StatusReason(e) == "AlreadyExists")
        {
            var existing = CustomResources.ToNode(await client.CustomObjects.GetNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, ns, TrainJobs, job.Metadata.Name, cancellationToken).ConfigureAwait(false));
            if (OwnedBy(existing, experiment.Metadata.Uid))
            {
                return (TrainJob)CustomResources.ToResource(existing);
            }

            if (CustomResources.DeletionTimestamp(existing) is not null || existing["metadata"]?["labels"]?[ExperimentReconciler.ExperimentLabel]?.GetValue<string>() == experiment.Metadata.Name)
            {
                return null;
            }

            throw CapstanException.Invalid($"trial {job.Metadata.Name} cannot be created: a TrainJob of that name exists and belongs to no experiment {experiment.Metadata.Name}");
        }
    }

    /// <summary>Ends the experiment: what still runs is stopped (its TrainJob deleted, so its Job and pods go) and counted as Killed.</summary>
    private async Task<TimeSpan?> FinishAsync(JsonObject raw, TuningExperiment experiment, List<ExperimentTrial> trials, ExperimentEnd end, CancellationToken cancellationToken)
    {
        var before = Snapshot(raw);
        foreach (var trial in trials.Where(t => t.Result.Phase is TrialPhase.Pending or TrialPhase.Running))
        {
            trial.Result.Phase = TrialPhase.Killed;
            trial.Result.Reason = end.Reason;
            trial.Result.Message = "Stopped: the experiment ended";
        }

        var status = experiment.Status!;
        var now = DateTimeOffset.UtcNow;
        var generation = experiment.Metadata.Generation;
        status.Phase = end.Succeeded ? ExperimentPhase.Succeeded : ExperimentPhase.Failed;
        status.CompletionTime = now;
        status.Message = end.Message;
        Summarize(experiment, trials, SafeObjectives(experiment.Spec));
        status.SetCondition(ExperimentReconciler.ConditionRunning, ConditionStatus.False, end.Reason, end.Message, generation, now);
        status.SetCondition(end.Succeeded ? ExperimentReconciler.ConditionSucceeded : ExperimentReconciler.ConditionFailed, ConditionStatus.True, end.Reason, end.Message, generation, now);

        // The parent run ends (RunEnded says whether it could), then the status is written before anything is stopped: a pass
        // that dies after it still knows why the trials ended.
        var retry = await EndParentRunAsync(raw, experiment, pending: false, cancellationToken).ConfigureAwait(false);
        await WriteStatusAsync(raw, before, experiment, cancellationToken).ConfigureAwait(false);
        await StopAsync(trials.Where(Stopping), cancellationToken).ConfigureAwait(false);
        await RecordAsync(raw, end.Succeeded ? EventTypes.Normal : EventTypes.Warning, end.Reason, end.Message, cancellationToken).ConfigureAwait(false);
        return retry;
    }

    /// <summary>
    /// A resumed experiment's parent run is RUNNING again while new trials nest under it (it ends again with the experiment),
    /// and RunEnded says so. An API that does not answer or refuses leaves it as it was, with a Warning: the resume does not wait for it.
    /// </summary>
    private async Task ReopenParentRunAsync(JsonObject raw, TuningExperiment experiment, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var status = experiment.Status!;
        if (options.Tracking is not { } tracking || status.RunId is not { } parentRunId)
        {
            return;
        }

        try
        {
            await tracking.UpdateRunAsync(parentRunId, new RunUpdate(RunStatus.Running), cancellationToken).ConfigureAwait(false);
            status.SetCondition(TrackedRun.ConditionRunEnded, ConditionStatus.False, "Resumed", $"Run {parentRunId} is RUNNING again", experiment.Metadata.Generation, now, recordFalse: true);
        }
        catch (Exception e) when (TrackedRun.Unavailable(e, cancellationToken) || e is CapstanException)
        {
            // As when ending it: an API that is down, or one that refuses (the run was deleted), does not hold the resume back.
            await RecordAsync(raw, EventTypes.Warning, TrackedRun.ReasonTrackingUnavailable, $"Parent run {parentRunId} not reopened: {e.Message}", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Ends the parent tracking run of a finished experiment at its completion time, setting RunEnded in its status (not written
    /// here); returns when to try again when the API did not answer, else null. <paramref name="pending"/>: an earlier pass failed.
    /// </summary>
    private async Task<TimeSpan?> EndParentRunAsync(JsonObject raw, TuningExperiment experiment, bool pending, CancellationToken cancellationToken)
    {
        var status = experiment.Status!;
        if (options.Tracking is not { } tracking || status.RunId is not { } parentRunId)
        {
            return null;
        }

        var error = await TrackedRun.EndAsync(tracking, parentRunId, status.Phase == ExperimentPhase.Succeeded, status.CompletionTime ?? DateTimeOffset.UtcNow, status, experiment.Metadata.Generation, cancellationToken).ConfigureAwait(false);
        if (error is null)
        {
            return null;
        }

        if (!pending)
        {
            await RecordAsync(raw, EventTypes.Warning, TrackedRun.ReasonTrackingUnavailable, $"Parent run {parentRunId} not ended: the Capstan API did not answer ({error}); retrying every {options.RetryMaxDelay.TotalSeconds:0.#} s", cancellationToken).ConfigureAwait(false);
        }

        return options.RetryMaxDelay;
    }

    private static IReadOnlyList<Engine.Objective> SafeObjectives(ExperimentSpec spec)
    {
        try
        {
            return TuningSearch.Objectives(spec);
        }
        catch (Engine.TuningSpecException)
        {
            return [Engine.Objective.Minimize(spec.Objective?.ObjectiveMetricName ?? "objective")];
        }
    }

    private static void Summarize(TuningExperiment experiment, List<ExperimentTrial> trials, IReadOnlyList<Engine.Objective> objectives) =>
        ExperimentProgress.Summarize(experiment.Status!, [.. trials.Select(t => t.Result)], [.. trials.Select(t => t.ToEngine(objectives))], objectives);

    /// <summary>Writes the status through the status subresource, checked on the resourceVersion read; a status that would not change is not written.</summary>
    private async Task WriteStatusAsync(JsonObject raw, JsonNode? before, TuningExperiment experiment, CancellationToken cancellationToken)
    {
        experiment.Status!.ObservedGeneration = experiment.Metadata.Generation;
        var next = JsonSerializer.SerializeToNode(experiment.Status, s_json)!;
        if (JsonNode.DeepEquals(before, next))
        {
            return;
        }

        await CustomResources.ReplaceStatusAsync(client, raw, Plural, next, cancellationToken).ConfigureAwait(false);
        var metadata = raw["metadata"]!;
        Log.Reconciled(logger, TuningExperiment.KindName, TrainJobController.Key(metadata["namespace"]?.GetValue<string>(), metadata["name"]?.GetValue<string>()), experiment.Status.Message ?? "");
    }

    /// <summary>The stored status in the model's own JSON form, to tell whether a pass changed it.</summary>
    private static JsonNode? Snapshot(JsonObject raw) =>
        raw["status"] is { } existing ? JsonSerializer.SerializeToNode(existing.Deserialize<ExperimentStatus>(s_json), s_json) : null;

    private Task RecordAsync(JsonObject raw, string type, string reason, string message, CancellationToken cancellationToken) =>
        ResourceEvents.RecordAsync(events, logger, raw, TuningExperiment.KindName, type, reason, message, cancellationToken);

    private static bool OwnedBy(JsonObject obj, string? uid) =>
        uid is not null && obj["metadata"]?["ownerReferences"] is JsonArray owners
        && owners.Any(o => o?["uid"]?.GetValue<string>() == uid && o["controller"]?.GetValue<bool>() == true);
}
