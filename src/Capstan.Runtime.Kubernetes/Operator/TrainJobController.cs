using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core;
using Capstan.Core.Resources;
using Capstan.Core.Tracking;
using Capstan.Runtime.Kubernetes.Cluster;
using Capstan.Runtime.Kubernetes.Rendering;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>
/// Runs TrainJob custom resources as the objects <see cref="TrainJobRenderer"/> renders (a Job, the headless Service
/// of a distributed job, a Volcano PodGroup), owned by the TrainJob so deleting it garbage-collects them, and mirrors
/// the Job's progress into the TrainJob's status through the status subresource: phase Queued while the Job is
/// suspended (Kueue has not admitted it), Running while pods are active, Succeeded on the Job's Complete condition,
/// Failed on its Failed condition with the Job's reason (BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy, ...).
/// Retries and deadlines are the Job's own (backoffLimit, activeDeadlineSeconds). A finished TrainJob is never run again,
/// whatever happens to its spec or its Job. Reconciles are idempotent: a pass that finds everything as it should be writes nothing.
/// </summary>
public sealed class TrainJobController(IKubernetes client, OperatorOptions options, ClusterEvents events, ILogger logger)
{
    private const string Plural = "trainjobs";

    private static readonly JsonSerializerOptions s_json = ResourceSerializer.JsonOptions;

    public Task RunAsync(CancellationToken cancellationToken)
    {
        var queue = new WorkQueue(options.QueueCapacity, options.RetryBaseDelay, options.RetryMaxDelay);
        queue.ReportTo(options.Metrics, TrainJob.KindName);
        return queue.RunAsync([WatchTrainJobsAsync(queue, cancellationToken), WatchJobsAsync(queue, cancellationToken)], ReconcileAsync, options.Workers, logger, cancellationToken);
    }

    private async Task WatchTrainJobsAsync(WorkQueue queue, CancellationToken cancellationToken)
    {
        var watch = new ListWatch<JsonObject>(
            "trainjobs",
            async ct =>
            {
                var list = CustomResources.ToNode(options.Namespace is { } ns
                    ? await client.CustomObjects.ListNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, ns, Plural, cancellationToken: ct).ConfigureAwait(false)
                    : await client.CustomObjects.ListCustomObjectForAllNamespacesAsync(CustomResources.Group, CustomResources.Version, Plural, cancellationToken: ct).ConfigureAwait(false));
                var items = list["items"]?.AsArray().Select(i => i!.AsObject()) ?? [];
                return (items, list["metadata"]?["resourceVersion"]?.GetValue<string>() ?? "");
            },
            (version, onError, ct) => Objects(options.Namespace is { } ns
                ? client.CustomObjects.WatchListNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, ns, Plural, resourceVersion: version, onError: onError, cancellationToken: ct)
                : client.CustomObjects.WatchListCustomObjectForAllNamespacesAsync(CustomResources.Group, CustomResources.Version, Plural, resourceVersion: version, onError: onError, cancellationToken: ct)),
            CustomResources.ResourceVersionOf,
            options.WatchRetryDelay,
            logger);
        await foreach (var (_, obj) in watch.RunAsync(cancellationToken).ConfigureAwait(false))
        {
            await queue.AddAsync(Key(obj["metadata"]?["namespace"]?.GetValue<string>(), obj["metadata"]?["name"]?.GetValue<string>()), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The Jobs the operator made (selected by the <c>capstan.dev/trainjob</c> label), each waking its controlling TrainJob.</summary>
    private async Task WatchJobsAsync(WorkQueue queue, CancellationToken cancellationToken)
    {
        var watch = new ListWatch<V1Job>(
            "jobs",
            async ct =>
            {
                var list = options.Namespace is { } ns
                    ? await client.BatchV1.ListNamespacedJobAsync(ns, labelSelector: CapstanLabels.TrainJob, cancellationToken: ct).ConfigureAwait(false)
                    : await client.BatchV1.ListJobForAllNamespacesAsync(labelSelector: CapstanLabels.TrainJob, cancellationToken: ct).ConfigureAwait(false);
                return (list.Items, list.Metadata.ResourceVersion);
            },
            (version, onError, ct) => options.Namespace is { } ns
                ? client.BatchV1.WatchListNamespacedJobAsync(ns, labelSelector: CapstanLabels.TrainJob, resourceVersion: version, onError: onError, cancellationToken: ct)
                : client.BatchV1.WatchListJobForAllNamespacesAsync(labelSelector: CapstanLabels.TrainJob, resourceVersion: version, onError: onError, cancellationToken: ct),
            job => job.Metadata?.ResourceVersion,
            options.WatchRetryDelay,
            logger);
        await foreach (var (_, job) in watch.RunAsync(cancellationToken).ConfigureAwait(false))
        {
            var owner = job.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true && o.Kind == TrainJob.KindName && o.ApiVersion == Resource.V1Alpha1);
            if (owner is not null)
            {
                await queue.AddAsync(Key(job.Metadata.NamespaceProperty, owner.Name), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>One pass over one TrainJob; returns when to look again if nothing else will wake it.</summary>
    public async Task<TimeSpan?> ReconcileAsync(string key, CancellationToken cancellationToken)
    {
        var (ns, name) = Split(key);
        JsonObject raw;
        try
        {
            raw = CustomResources.ToNode(await client.CustomObjects.GetNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, ns, Plural, name, cancellationToken).ConfigureAwait(false));
        }
        catch (HttpOperationException e) when (CustomResources.IsNotFound(e))
        {
            return null; // Deleted: the garbage collector removes what it owned.
        }

        if (CustomResources.DeletionTimestamp(raw) is not null)
        {
            return null;
        }

        var trainJob = (TrainJob)CustomResources.ToResource(raw);
        var generation = trainJob.Metadata.Generation ?? 1;
        var previous = trainJob.Status;
        var finished = previous?.Phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed;

        var job = await ReadJobAsync(ns, name, cancellationToken).ConfigureAwait(false);
        if (job is null && finished)
        {
            // A finished TrainJob is not run again: not when its Job is gone, not when its spec changed.
            // Its run is still ended if the API was down when it finished. An unchanged status is not written.
            var kept = Copy(previous!);
            var retry = await EndRunAsync(raw, previous, kept, finished, cancellationToken).ConfigureAwait(false);
            if (previous!.ObservedGeneration != generation)
            {
                await RecordAsync(raw, EventTypes.Normal, "NotRerun", $"The TrainJob has {previous.Phase!.Value.ToString().ToLowerInvariant()}; its changed spec is not run again. Delete and apply it to run it anew.", cancellationToken).ConfigureAwait(false);
                kept.ObservedGeneration = generation;
            }

            await WriteStatusAsync(raw, kept, cancellationToken).ConfigureAwait(false);
            return retry;
        }

        // The run comes first, so the Job's pods get MLFLOW_RUN_ID; found again by its uid tag if an earlier pass made it,
        // or read back from the Job when a pass created the Job but not the status. An API that does not answer leaves
        // the Job to run without a run (a Warning says so) rather than holding the training back.
        var runId = previous?.RunId ?? job?.Spec.Template.Spec.Containers.FirstOrDefault()?.Env?.FirstOrDefault(e => e.Name == "MLFLOW_RUN_ID")?.Value;
        string? experimentId = null;
        if (options.Tracking is { } tracking && runId is null && job is null && !finished)
        {
            try
            {
                var run = await Capstan.Core.ControlPlane.TrainJobReconciler.FindOrCreateRunAsync(tracking, trainJob, DateTimeOffset.UtcNow, cancellationToken).ConfigureAwait(false);
                (runId, experimentId) = (run.Info.RunId, run.Info.ExperimentId);
                await RecordAsync(raw, EventTypes.Normal, "RunCreated", $"Logging into run {runId}", cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                await RecordAsync(raw, EventTypes.Warning, "TrackingUnavailable", $"No tracking run: the Capstan API at {options.Render.ApiUrl} did not answer ({e.Message}); the Job runs without MLFLOW_RUN_ID", cancellationToken).ConfigureAwait(false);
            }
        }

        if (job is null)
        {
            TrainJobObjects objects;
            try
            {
                objects = TrainJobRenderer.Render(trainJob, runId is null ? options.Render : options.Render with { RunId = runId, ExperimentId = experimentId ?? options.Render.ExperimentId });
            }
            catch (ResourceValidationException e)
            {
                await RecordAsync(raw, EventTypes.Warning, "InvalidSpec", e.Message, cancellationToken).ConfigureAwait(false);
                await WriteStatusAsync(raw, InvalidStatus(previous, generation, e.Message), cancellationToken).ConfigureAwait(false);
                return null;
            }

            job = await CreateAsync(raw, objects, cancellationToken).ConfigureAwait(false);
        }
        else if (!OwnedBy(job, trainJob.Metadata.Uid))
        {
            if (job.Metadata.DeletionTimestamp is not null)
            {
                // The Job of an earlier TrainJob of this name is still going away; create ours once it has.
                return TimeSpan.FromSeconds(1);
            }

            var message = $"Job {ns}/{name} exists and is not owned by this TrainJob; delete it or rename the TrainJob.";
            await RecordAsync(raw, EventTypes.Warning, "JobNotOwned", message, cancellationToken).ConfigureAwait(false);
            await WriteStatusAsync(raw, InvalidStatus(previous, generation, message, reason: "JobNotOwned"), cancellationToken).ConfigureAwait(false);
            return null;
        }

        var status = Mirror(trainJob, job, previous);
        status.RunId ??= runId;
        var runRetry = await EndRunAsync(raw, previous, status, finished, cancellationToken).ConfigureAwait(false);
        if (status.Phase != previous?.Phase)
        {
            var (type, reason, text) = PhaseEvent(status, job);
            await RecordAsync(raw, type, reason, text, cancellationToken).ConfigureAwait(false);
        }

        await WriteStatusAsync(raw, status, cancellationToken).ConfigureAwait(false);
        return runRetry;
    }

    /// <summary>
    /// Ends the tracking run with the TrainJob, at the Job's completion time as the local control plane ends it: on the pass that
    /// sees it finish, and on later passes while the RunEnded condition says the API did not answer. Carries that condition into
    /// <paramref name="status"/> (the mirror of the Job does not have it); returns when to try again, or null.
    /// </summary>
    private async Task<TimeSpan?> EndRunAsync(JsonObject raw, TrainJobStatus? previous, TrainJobStatus status, bool wasFinished, CancellationToken cancellationToken)
    {
        var pending = TrackedRun.EndPending(previous);
        if (previous?.Conditions?.FirstOrDefault(c => c.Type == TrackedRun.ConditionRunEnded) is { } carried && status.Conditions?.Any(c => c.Type == TrackedRun.ConditionRunEnded) != true)
        {
            (status.Conditions ??= []).Add(carried);
        }

        var due = !wasFinished || pending;
        if (status.RunId is not { } runId || options.Tracking is not { } store || status.Phase is not (TrainJobPhase.Succeeded or TrainJobPhase.Failed) || !due)
        {
            return null;
        }

        var error = await TrackedRun.EndAsync(store, runId, status.Phase == TrainJobPhase.Succeeded, status.CompletionTime ?? DateTimeOffset.UtcNow, status, status.ObservedGeneration, cancellationToken).ConfigureAwait(false);
        if (error is null)
        {
            return null;
        }

        if (!pending)
        {
            await RecordAsync(raw, EventTypes.Warning, TrackedRun.ReasonTrackingUnavailable, $"Run {runId} not ended: the Capstan API at {options.Render.ApiUrl} did not answer ({error}); retrying every {options.RetryMaxDelay.TotalSeconds:0.#} s", cancellationToken).ConfigureAwait(false);
        }

        return options.RetryMaxDelay;
    }

    private async Task<V1Job?> ReadJobAsync(string ns, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await client.BatchV1.ReadNamespacedJobAsync(name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (CustomResources.IsNotFound(e))
        {
            return null;
        }
    }

    /// <summary>Creates what is missing, in the renderer's order; an object that already exists (an earlier pass, another replica) is taken as is.</summary>
    private async Task<V1Job> CreateAsync(JsonObject raw, TrainJobObjects objects, CancellationToken cancellationToken)
    {
        var ns = objects.Job.Metadata.NamespaceProperty;
        if (objects.PodGroup is { } podGroup)
        {
            await CreateIfMissingAsync(() => client.CustomObjects.CreateNamespacedCustomObjectAsync(podGroup, "scheduling.volcano.sh", "v1beta1", ns, "podgroups", cancellationToken: cancellationToken)).ConfigureAwait(false);
        }

        if (objects.Service is { } service)
        {
            if (await CreateIfMissingAsync(() => client.CoreV1.CreateNamespacedServiceAsync(service, ns, cancellationToken: cancellationToken)).ConfigureAwait(false))
            {
                await RecordAsync(raw, EventTypes.Normal, "Created", $"Created headless Service {service.Metadata.Name}", cancellationToken).ConfigureAwait(false);
            }
        }

        try
        {
            var job = await client.BatchV1.CreateNamespacedJobAsync(objects.Job, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
            var suspended = job.Spec.Suspend == true ? " (suspended until the queue admits it)" : "";
            await RecordAsync(raw, EventTypes.Normal, "Created", $"Created Job {job.Metadata.Name}{suspended}", cancellationToken).ConfigureAwait(false);
            return job;
        }
        catch (HttpOperationException e) when (CustomResources.StatusReason(e) == "AlreadyExists")
        {
            return await client.BatchV1.ReadNamespacedJobAsync(objects.Job.Metadata.Name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<bool> CreateIfMissingAsync(Func<Task> create)
    {
        try
        {
            await create().ConfigureAwait(false);
            return true;
        }
        catch (HttpOperationException e) when (CustomResources.StatusReason(e) == "AlreadyExists")
        {
            return false;
        }
    }

    private static bool OwnedBy(V1Job job, string? uid) =>
        uid is not null && job.Metadata.OwnerReferences?.Any(o => o.Uid == uid && o.Controller == true) == true;

    /// <summary>The TrainJob's status as the Job's tells it; conditions keep their transition time while their status holds.</summary>
    internal static TrainJobStatus Mirror(TrainJob trainJob, V1Job job, TrainJobStatus? previous)
    {
        var s = job.Status ?? new V1JobStatus();
        V1JobCondition? Condition(string type) => s.Conditions?.FirstOrDefault(c => c.Type == type && c.Status == "True");
        var complete = Condition("Complete");
        var failed = Condition("Failed");
        var suspended = job.Spec?.Suspend == true;
        var active = s.Active ?? 0;
        var phase = complete is not null ? TrainJobPhase.Succeeded
            : failed is not null ? TrainJobPhase.Failed
            : suspended ? TrainJobPhase.Queued
            : active > 0 ? TrainJobPhase.Running
            : TrainJobPhase.Pending;
        var generation = job.Metadata.Annotations?.TryGetValue(CapstanLabels.Generation, out var rendered) == true
            && long.TryParse(rendered, NumberStyles.None, CultureInfo.InvariantCulture, out var g) ? g : trainJob.Metadata.Generation ?? 1;
        var failures = s.Failed ?? 0;
        var replicas = Math.Max(1, job.Spec?.Parallelism ?? 1);
        var message = phase switch
        {
            TrainJobPhase.Succeeded => $"Job {job.Metadata.Name} completed",
            TrainJobPhase.Failed => $"Job {job.Metadata.Name} failed: {failed!.Reason}{(string.IsNullOrEmpty(failed.Message) ? "" : ": " + failed.Message)}",
            TrainJobPhase.Queued => $"Job {job.Metadata.Name} is suspended, waiting for the queue to admit it",
            TrainJobPhase.Running => $"Job {job.Metadata.Name}: {active} active, {s.Succeeded ?? 0} succeeded, {failures} failed",
            _ => $"Job {job.Metadata.Name} created, waiting for its pods",
        };
        var conditions = new List<ResourceCondition>
        {
            Make(previous, "Created", true, "JobCreated", $"Job {job.Metadata.Name} created", generation),
        };
        if (job.Spec?.Suspend is not null)
        {
            var jobSuspended = s.Conditions?.FirstOrDefault(c => c.Type == "Suspended");
            conditions.Add(Make(previous, "Suspended", suspended, suspended ? jobSuspended?.Reason ?? "JobSuspended" : "JobResumed",
                suspended ? "waiting for the queue to admit the job" : "admitted", generation));
        }

        conditions.Add(Make(previous, "Running", phase == TrainJobPhase.Running,
            phase switch { TrainJobPhase.Running => "PodsActive", TrainJobPhase.Succeeded => "JobComplete", TrainJobPhase.Failed => failed!.Reason ?? "JobFailed", _ => "PodsPending" },
            phase == TrainJobPhase.Running ? $"{active} of {replicas} replica pod(s) active" : message, generation));
        if (complete is not null)
        {
            conditions.Add(Make(previous, "Succeeded", true, "JobComplete", complete.Message ?? message, generation));
        }

        if (failed is not null)
        {
            conditions.Add(Make(previous, "Failed", true, failed.Reason ?? "JobFailed", failed.Message ?? message, generation));
        }

        return new TrainJobStatus
        {
            Phase = phase,
            StartTime = ToOffset(s.StartTime) ?? previous?.StartTime,
            CompletionTime = phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed
                ? ToOffset(s.CompletionTime) ?? ToOffset((complete ?? failed)!.LastTransitionTime) ?? previous?.CompletionTime
                : null,
            Attempts = failures + (active > 0 || (s.Succeeded ?? 0) > 0 ? 1 : 0),
            RunId = previous?.RunId,
            ObservedGeneration = generation,
            Message = message,
            Conditions = conditions,
        };
    }

    internal static ResourceCondition Make(ResourceStatus? previous, string type, bool isTrue, string reason, string message, long generation)
    {
        var status = isTrue ? ConditionStatus.True : ConditionStatus.False;
        var before = previous?.Conditions?.FirstOrDefault(c => c.Type == type);
        return new ResourceCondition
        {
            Type = type,
            Status = status,
            Reason = reason,
            Message = message,
            LastTransitionTime = before?.Status == status ? before.LastTransitionTime : DateTimeOffset.UtcNow,
            ObservedGeneration = generation,
        };
    }

    private static TrainJobStatus InvalidStatus(TrainJobStatus? previous, long generation, string message, string reason = "InvalidSpec") => new()
    {
        Phase = TrainJobPhase.Failed,
        ObservedGeneration = generation,
        Message = message,
        StartTime = previous?.StartTime,
        CompletionTime = previous?.CompletionTime ?? DateTimeOffset.UtcNow,
        Conditions = [Make(previous, "Failed", true, reason, message, generation)],
    };

    private static (string Type, string Reason, string Message) PhaseEvent(TrainJobStatus status, V1Job job) => status.Phase switch
    {
        TrainJobPhase.Succeeded => (EventTypes.Normal, "Succeeded", status.Message!),
        TrainJobPhase.Failed => (EventTypes.Warning, job.Status?.Conditions?.FirstOrDefault(c => c.Type == "Failed")?.Reason ?? "Failed", status.Message!),
        TrainJobPhase.Queued => (EventTypes.Normal, "Suspended", status.Message!),
        TrainJobPhase.Running => (EventTypes.Normal, "Running", status.Message!),
        _ => (EventTypes.Normal, "Pending", status.Message!),
    };

    /// <summary>Writes the status through the status subresource, checked on the resourceVersion read; a status that would not change is not written.</summary>
    private async Task WriteStatusAsync(JsonObject raw, TrainJobStatus status, CancellationToken cancellationToken)
    {
        var next = JsonSerializer.SerializeToNode(status, s_json)!;
        var current = raw["status"] is { } existing ? JsonSerializer.SerializeToNode(existing.Deserialize<TrainJobStatus>(s_json), s_json) : null;
        if (JsonNode.DeepEquals(current, next))
        {
            return;
        }

        await CustomResources.ReplaceStatusAsync(client, raw, Plural, next, cancellationToken).ConfigureAwait(false);
        var metadata = raw["metadata"]!;
        Log.Reconciled(logger, TrainJob.KindName, Key(metadata["namespace"]?.GetValue<string>(), metadata["name"]?.GetValue<string>()), status.Message ?? status.Phase.ToString()!);
    }

    private Task RecordAsync(JsonObject raw, string type, string reason, string message, CancellationToken cancellationToken) =>
        ResourceEvents.RecordAsync(events, logger, raw, TrainJob.KindName, type, reason, message, cancellationToken);

    private static TrainJobStatus Copy(TrainJobStatus status) =>
        JsonSerializer.Deserialize<TrainJobStatus>(JsonSerializer.Serialize(status, s_json), s_json)!;

    private static DateTimeOffset? ToOffset(DateTime? time) =>
        time is { } t ? new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)) : null;

    internal static async IAsyncEnumerable<(WatchEventType, JsonObject)> Objects(IAsyncEnumerable<(WatchEventType, object)> events)
    {
        await foreach (var (type, obj) in events.ConfigureAwait(false))
        {
            yield return (type, CustomResources.ToNode(obj));
        }
    }

    public static string Key(string? @namespace, string? name) => $"{@namespace ?? ResourceMetadata.DefaultNamespace}/{name}";

    internal static (string Namespace, string Name) Split(string key)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        return (key[..slash], key[(slash + 1)..]);
    }
}

/// <summary>Kubernetes' two Event types.</summary>
public static class EventTypes
{
    public const string Normal = "Normal";
    public const string Warning = "Warning";
}
