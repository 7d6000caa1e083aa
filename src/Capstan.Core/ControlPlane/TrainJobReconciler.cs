using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Enumeration;
using System.Text;
using Capstan.Core.Artifacts;
using Capstan.Core.Registry;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;

namespace Capstan.Core.ControlPlane;

/// <summary>What one reconcile pass asks of its caller: nothing, or another pass after a delay (a backoff timer).</summary>
public readonly record struct ReconcileResult(TimeSpan? RequeueAfter)
{
    public static ReconcileResult Done => default;

    public static ReconcileResult After(TimeSpan delay) => new(delay);
}

/// <summary>
/// Drives a <see cref="TrainJob"/> to completion: level-triggered and idempotent per job, so any pass can be repeated
/// or interrupted (a server restart) and the next one picks up from what the store and the runtime say.
/// A new job gets a tracking run (tagged <c>capstan.trainjob</c>) and its first attempt; each attempt's workload status is
/// mirrored into the job's phase, conditions and events. Failures follow <c>restartPolicy</c> with exponential backoff:
/// Never fails at once, OnFailure retries while attempts ≤ backoffLimit, ExitCode retries only the exit codes Kubeflow's
/// training operator treats as retryable (130 SIGINT, 137 SIGKILL, 143 SIGTERM; 1, 2, 126, 127, 128, 139 and every other
/// code are permanent, kubeflow/training-operator#518). A deadline is never retried; a Lost workload (its processes gone
/// across a restart) counts as a failed attempt with a retryable cause. On success the outputs, the model and the log are
/// uploaded to the run and the model is registered when asked.
/// </summary>
public sealed class TrainJobReconciler(
    IResourceStore resources,
    IWorkloadRuntime runtime,
    IMetadataStore metadata,
    IArtifactStore artifacts,
    TimeProvider time,
    TrainJobReconcilerOptions? options = null)
{
    public const string TrainJobTag = "capstan.trainjob";
    public const string TrainJobUidTag = "capstan.trainjob.uid";
    public const string RunNameTag = "mlflow.runName";

    /// <summary>MLflow's tag nesting a run under another (an experiment's trials under its parent run).</summary>
    public const string ParentRunIdTag = "mlflow.parentRunId";

    /// <summary>The annotation that asks for the job's run to be nested under a parent run (set on an experiment's trials).</summary>
    public const string ParentRunAnnotation = "capstan.dev/parent-run-id";
    public const string LogArtifactPath = "logs/output.log";
    public const string ModelArtifactPath = "model";

    public const string ConditionQueued = "Queued";
    public const string ConditionRunning = "Running";
    public const string ConditionRestarting = "Restarting";
    public const string ConditionSucceeded = "Succeeded";
    public const string ConditionFailed = "Failed";

    public const string ReasonBackoffLimitExceeded = "BackoffLimitExceeded";
    public const string ReasonPermanentExitCode = "PermanentExitCode";

    private static readonly HashSet<int> s_retryableExitCodes = [130, 137, 143];

    private readonly TrainJobReconcilerOptions _options = options ?? new TrainJobReconcilerOptions();
    private readonly ConcurrentDictionary<string, string> _runIds = new(StringComparer.Ordinal);

    /// <summary>Kubeflow's ExitCode rule: only signals from outside (SIGINT, SIGKILL, SIGTERM) are worth another attempt.</summary>
    public static bool IsRetryableExitCode(int exitCode) => s_retryableExitCodes.Contains(exitCode);

    /// <summary><c>namespace/name</c>, the work-queue key of a job.</summary>
    public static string Key(string @namespace, string name) => $"{@namespace}/{name}";

    public static string Key(Resource job)
    {
        ArgumentNullException.ThrowIfNull(job);
        return Key(job.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace, job.Metadata.Name ?? "");
    }

    /// <summary>The job key of a workload id made by <see cref="TrainJobWorkloads.WorkloadId"/> (<c>NS.NAME[.UID].ATTEMPT</c>), or null for other ids.</summary>
    public static string? KeyOfWorkload(string workloadId)
    {
        ArgumentNullException.ThrowIfNull(workloadId);
        var parts = workloadId.Split('.');
        return parts.Length is 3 or 4 && int.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out _)
            ? Key(parts[0], parts[1])
            : null;
    }

    /// <summary>Brings the job with <paramref name="key"/> one step closer to its desired state. A missing job is left alone.</summary>
    public async Task<ReconcileResult> ReconcileAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        if (await resources.FindAsync(TrainJob.KindName, key[..slash], key[(slash + 1)..], cancellationToken).ConfigureAwait(false) is not TrainJob job)
        {
            return ReconcileResult.Done;
        }

        var status = job.Status ??= new TrainJobStatus();
        if (status.Phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed)
        {
            return ReconcileResult.Done;
        }

        if (status.RunId is null)
        {
            var run = await CreateRunAsync(job, cancellationToken).ConfigureAwait(false);
            status.RunId = run.Info.RunId;
            status.Phase = TrainJobPhase.Pending;
            status.Attempts = 0;
            status.ObservedGeneration = job.Metadata.Generation;
            status.Message = "Creating the first attempt";
            job = await WriteStatusAsync(job, cancellationToken).ConfigureAwait(false);
            await resources.RecordEventAsync(job, ResourceEventType.Normal, "RunCreated", $"Logging into run {run.Info.RunId}", cancellationToken).ConfigureAwait(false);
        }

        var attempt = job.Status!.Attempts ?? 0;
        if (attempt == 0)
        {
            return await SubmitAttemptAsync(job, 1, cancellationToken).ConfigureAwait(false);
        }

        var workloadId = TrainJobWorkloads.WorkloadId(job, attempt);
        var workload = await runtime.GetStatusAsync(workloadId, cancellationToken).ConfigureAwait(false);
        if (workload is null)
        {
            // Queued workloads do not survive a runtime restart: submit the same attempt again.
            return await SubmitAttemptAsync(job, attempt, cancellationToken).ConfigureAwait(false);
        }

        return workload.Phase switch
        {
            WorkloadPhase.Queued => await MirrorQueuedAsync(job, workload, cancellationToken).ConfigureAwait(false),
            WorkloadPhase.Running => await MirrorRunningAsync(job, workload, cancellationToken).ConfigureAwait(false),
            WorkloadPhase.Succeeded => await SucceedAsync(job, workload, cancellationToken).ConfigureAwait(false),
            _ => await HandleFailureAsync(job, workload, attempt, cancellationToken).ConfigureAwait(false),
        };
    }

    /// <summary>A deleted job: stops its current attempt's workload (and the one before, in case a retry was being submitted).</summary>
    public async Task StopDeletedAsync(TrainJob job, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        var attempts = job.Status?.Attempts ?? 0;
        for (var attempt = Math.Max(1, attempts); attempt <= attempts + 1; attempt++)
        {
            await runtime.StopAsync(TrainJobWorkloads.WorkloadId(job, attempt), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Logs metrics a workload reported into its job's run, in batches of MLflow's size limit.</summary>
    public async Task LogMetricsAsync(string workloadId, IReadOnlyList<Metric> metrics, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workloadId);
        ArgumentNullException.ThrowIfNull(metrics);
        if (metrics.Count == 0 || await FindRunIdAsync(workloadId, cancellationToken).ConfigureAwait(false) is not { } runId)
        {
            return;
        }

        foreach (var chunk in metrics.Chunk(LogBatch.MaxMetrics))
        {
            await metadata.LogBatchAsync(runId, new LogBatch(Metrics: chunk), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<string?> FindRunIdAsync(string workloadId, CancellationToken cancellationToken)
    {
        if (_runIds.TryGetValue(workloadId, out var cached))
        {
            return cached;
        }

        if (KeyOfWorkload(workloadId) is not { } key)
        {
            return null;
        }

        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var job = await resources.FindAsync(TrainJob.KindName, key[..slash], key[(slash + 1)..], cancellationToken).ConfigureAwait(false) as TrainJob;
        if (job?.Status?.RunId is not { } runId)
        {
            return null;
        }

        _runIds[workloadId] = runId;
        return runId;
    }

    private Task<Run> CreateRunAsync(TrainJob job, CancellationToken cancellationToken) =>
        FindOrCreateRunAsync(metadata, job, time.GetUtcNow(), cancellationToken);

    /// <summary>
    /// The tracking run a TrainJob logs into, in the experiment its spec names (else one named after the job), tagged with
    /// the job and its uid: found again by the uid tag when a pass created it but died before writing
    /// <c>status.runId</c>, created otherwise. The local control plane and the operator both use it.
    /// </summary>
    public static async Task<Run> FindOrCreateRunAsync(IMetadataStore metadata, TrainJob job, DateTimeOffset startTime, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(job);
        var experiment = await metadata.GetOrCreateExperimentAsync(job.Spec.Experiment ?? job.Metadata.Name!, cancellationToken: cancellationToken).ConfigureAwait(false);

        // A pass that created the run but died before writing status.runId finds that run again instead of making another.
        if (job.Metadata.Uid is { Length: > 0 } uid)
        {
            var existing = await metadata.SearchRunsAsync(
                new RunSearch([experiment.ExperimentId], $"tags.`{TrainJobUidTag}` = '{uid}'", MaxResults: 1),
                cancellationToken).ConfigureAwait(false);
            if (existing.Items.Count > 0)
            {
                return existing.Items[0];
            }
        }

        var runName = job.Metadata.Name!;
        List<Tag> tags = [new Tag(TrainJobTag, Key(job)), new Tag(TrainJobUidTag, job.Metadata.Uid ?? ""), new Tag(RunNameTag, runName)];
        if (job.Metadata.Annotations?.TryGetValue(ParentRunAnnotation, out var parentRunId) == true && parentRunId.Length > 0)
        {
            tags.Add(new Tag(ParentRunIdTag, parentRunId));
        }

        return await metadata.CreateRunAsync(
            new NewRun(experiment.ExperimentId, RunName: runName, StartTime: startTime.ToUnixTimeMilliseconds(), Tags: tags),
            cancellationToken).ConfigureAwait(false);
    }

    private async Task<ReconcileResult> SubmitAttemptAsync(TrainJob job, int attempt, CancellationToken cancellationToken)
    {
        var status = job.Status!;
        var run = await metadata.GetRunAsync(status.RunId!, cancellationToken).ConfigureAwait(false);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["CAPSTAN_RUN_ID"] = run.Info.RunId,
            ["MLFLOW_RUN_ID"] = run.Info.RunId,
            ["MLFLOW_EXPERIMENT_ID"] = run.Info.ExperimentId,
        };
        if (_options.ServerUrl() is { } url)
        {
            var text = url.AbsoluteUri.TrimEnd('/');
            environment["CAPSTAN_URL"] = text;
            environment["MLFLOW_TRACKING_URI"] = text;
        }

        WorkloadSpec spec;
        try
        {
            spec = TrainJobWorkloads.ToWorkload(job, attempt, environment);
        }
        catch (CapstanException e)
        {
            return await FailAsync(job, null, "InvalidSpec", e.Message, cancellationToken).ConfigureAwait(false);
        }

        // activeDeadlineSeconds bounds the whole job, as a Kubernetes Job's does: a retry gets only what is left of it.
        if (spec.ActiveDeadlineSeconds is { } deadline && status.StartTime is { } started)
        {
            var left = TimeSpan.FromSeconds(deadline) - (time.GetUtcNow() - started);
            if (left <= TimeSpan.Zero)
            {
                return await FailAsync(job, null, WorkloadReasons.DeadlineExceeded, $"activeDeadlineSeconds {deadline} passed before attempt {attempt} could start", cancellationToken).ConfigureAwait(false);
            }

            spec = spec with { ActiveDeadlineSeconds = Math.Max(1, (long)Math.Ceiling(left.TotalSeconds)) };
        }

        var workload = await runtime.SubmitAsync(spec, cancellationToken).ConfigureAwait(false);
        _runIds[spec.WorkloadId] = run.Info.RunId;
        if (status.Attempts != attempt)
        {
            status.Attempts = attempt;
            status.Phase = TrainJobPhase.Queued;
            status.Message = $"Attempt {attempt} submitted";
            SetCondition(status, ConditionRestarting, ConditionStatus.False, "Submitted", status.Message, job.Metadata.Generation);
            job = await WriteStatusAsync(job, cancellationToken).ConfigureAwait(false);
            await resources.RecordEventAsync(job, ResourceEventType.Normal, "Submitted", $"Submitted attempt {attempt} as workload {spec.WorkloadId}", cancellationToken).ConfigureAwait(false);
        }

        return workload.Phase switch
        {
            WorkloadPhase.Queued => await MirrorQueuedAsync(job, workload, cancellationToken).ConfigureAwait(false),
            WorkloadPhase.Running => await MirrorRunningAsync(job, workload, cancellationToken).ConfigureAwait(false),
            WorkloadPhase.Succeeded => await SucceedAsync(job, workload, cancellationToken).ConfigureAwait(false),
            _ => await HandleFailureAsync(job, workload, attempt, cancellationToken).ConfigureAwait(false),
        };
    }

    private async Task<ReconcileResult> MirrorQueuedAsync(TrainJob job, WorkloadStatus workload, CancellationToken cancellationToken)
    {
        var status = job.Status!;
        var message = workload.Message ?? "Waiting for capacity";
        if (SetCondition(status, ConditionQueued, ConditionStatus.True, workload.Reason, message, job.Metadata.Generation) | status.Phase != TrainJobPhase.Queued)
        {
            status.Phase = TrainJobPhase.Queued;
            status.Message = $"Queued: {message}";
            job = await WriteStatusAsync(job, cancellationToken).ConfigureAwait(false);
            await resources.RecordEventAsync(job, ResourceEventType.Normal, workload.Reason, message, cancellationToken).ConfigureAwait(false);
        }

        return ReconcileResult.Done;
    }

    private async Task<ReconcileResult> MirrorRunningAsync(TrainJob job, WorkloadStatus workload, CancellationToken cancellationToken)
    {
        var status = job.Status!;
        var pids = string.Join(", ", workload.Replicas.Select(r => r.ProcessId?.ToString(CultureInfo.InvariantCulture) ?? "?"));
        var message = $"Attempt {status.Attempts} running ({workload.Replicas.Count} replica(s), pid {pids})";

        // A re-adopted workload (reason Adopted after a restart) changes the condition, so describe shows the adoption.
        var changed = SetCondition(status, ConditionRunning, ConditionStatus.True, workload.Reason, message, job.Metadata.Generation);
        if (!changed && status.Phase == TrainJobPhase.Running && status.StartTime is not null)
        {
            return ReconcileResult.Done;
        }

        status.Phase = TrainJobPhase.Running;
        status.StartTime ??= workload.StartTime ?? time.GetUtcNow();
        status.Message = message;
        SetCondition(status, ConditionQueued, ConditionStatus.False, workload.Reason, "Scheduled", job.Metadata.Generation);
        job = await WriteStatusAsync(job, cancellationToken).ConfigureAwait(false);
        await resources.RecordEventAsync(job, ResourceEventType.Normal, workload.Reason == WorkloadReasons.Adopted ? "Adopted" : "Started", message, cancellationToken).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    private async Task<ReconcileResult> SucceedAsync(TrainJob job, WorkloadStatus workload, CancellationToken cancellationToken)
    {
        var status = job.Status!;
        var run = await metadata.GetRunAsync(status.RunId!, cancellationToken).ConfigureAwait(false);
        var root = ArtifactUri.ToStorePath(run.Info.ArtifactUri);
        var folder = workload.Replicas.OrderBy(r => r.Rank).FirstOrDefault()?.WorkingDirectory;
        if (job.Spec.WorkingDir is { Length: > 0 } workingDir)
        {
            folder = workingDir;
        }

        var uploaded = 0;
        if (folder is not null && Directory.Exists(folder))
        {
            foreach (var pattern in job.Spec.Outputs?.Paths ?? [])
            {
                foreach (var relative in MatchFiles(folder, pattern))
                {
                    await UploadFileAsync(Path.Combine(folder, relative), $"{root}/{relative}", cancellationToken).ConfigureAwait(false);
                    uploaded++;
                }
            }
        }

        await UploadLogAsync(workload.WorkloadId, root, cancellationToken).ConfigureAwait(false);
        string? registered = null;
        if (job.Spec.Outputs?.Model is { Path: { Length: > 0 } modelPath } model && folder is not null)
        {
            var full = Path.GetFullPath(Path.Combine(folder, modelPath));
            if (File.Exists(full))
            {
                await UploadFileAsync(full, $"{root}/{ModelArtifactPath}/{Path.GetFileName(full)}", cancellationToken).ConfigureAwait(false);
            }
            else if (Directory.Exists(full))
            {
                foreach (var file in Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories))
                {
                    await UploadFileAsync(file, $"{root}/{ModelArtifactPath}/{Path.GetRelativePath(full, file).Replace('\\', '/')}", cancellationToken).ConfigureAwait(false);
                }
            }
            else
            {
                return await FailAsync(job, workload, "ModelMissing", $"outputs.model.path '{modelPath}' does not exist in {folder}", cancellationToken).ConfigureAwait(false);
            }

            if (model.Register is { Model: { Length: > 0 } modelName } register)
            {
                try
                {
                    registered = await RegisterAsync(run, modelName, register.Alias, cancellationToken).ConfigureAwait(false);
                }
                catch (CapstanException e) when (e.Code == ErrorCode.InvalidParameterValue)
                {
                    // A bad model name or alias (e.g. the reserved 'latest') does not get better with retries.
                    return await FailAsync(job, workload, "RegistrationFailed", $"registering the model failed: {e.Message}", cancellationToken).ConfigureAwait(false);
                }
            }
        }

        var end = (workload.CompletionTime ?? time.GetUtcNow()).ToUnixTimeMilliseconds();
        await metadata.UpdateRunAsync(run.Info.RunId, new RunUpdate(RunStatus.Finished, end), cancellationToken).ConfigureAwait(false);
        status.Phase = TrainJobPhase.Succeeded;
        status.CompletionTime = workload.CompletionTime ?? time.GetUtcNow();
        status.Message = registered is null
            ? $"Attempt {status.Attempts} succeeded"
            : $"Attempt {status.Attempts} succeeded; registered {registered}";
        SetCondition(status, ConditionRunning, ConditionStatus.False, WorkloadReasons.Completed, "Finished", job.Metadata.Generation);
        SetCondition(status, ConditionSucceeded, ConditionStatus.True, WorkloadReasons.Completed, status.Message, job.Metadata.Generation);
        job = await WriteStatusAsync(job, cancellationToken).ConfigureAwait(false);
        await resources.RecordEventAsync(job, ResourceEventType.Normal, ConditionSucceeded, $"{status.Message} ({uploaded} output file(s) kept)", cancellationToken).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    private async Task<string> RegisterAsync(Run run, string modelName, string? alias, CancellationToken cancellationToken)
    {
        try
        {
            await metadata.CreateRegisteredModelAsync(new NewRegisteredModel(modelName), cancellationToken).ConfigureAwait(false);
        }
        catch (CapstanException e) when (e.Code == ErrorCode.ResourceAlreadyExists)
        {
            // Later jobs add versions to the model the first one registered.
        }

        // One version per run: a pass interrupted after registering finds its version instead of adding another.
        var registered = await metadata.SearchModelVersionsAsync(
            new RegistrySearch($"name = '{modelName.Replace("'", "''", StringComparison.Ordinal)}' and run_id = '{run.Info.RunId}'", MaxResults: 1),
            cancellationToken).ConfigureAwait(false);
        var version = registered.Items.Count > 0
            ? registered.Items[0]
            : await metadata.CreateModelVersionAsync(
                new NewModelVersion(modelName, $"{run.Info.ArtifactUri}/{ModelArtifactPath}", RunId: run.Info.RunId, UserId: run.Info.UserId),
                cancellationToken).ConfigureAwait(false);
        if (alias is { Length: > 0 })
        {
            await metadata.SetAliasAsync(modelName, alias, version.Version, cancellationToken).ConfigureAwait(false);
            return $"{modelName} version {version.Version} as @{alias}";
        }

        return $"{modelName} version {version.Version}";
    }

    private async Task<ReconcileResult> HandleFailureAsync(TrainJob job, WorkloadStatus workload, int attempt, CancellationToken cancellationToken)
    {
        var status = job.Status!;
        var exitCodes = workload.Replicas.Where(r => r.ExitCode is not null and not 0).Select(r => r.ExitCode!.Value).Distinct().ToList();
        var codes = exitCodes.Count == 0 ? "" : $" (exit code {string.Join(", ", exitCodes)})";
        var cause = $"Attempt {attempt} {(workload.Phase == WorkloadPhase.Lost ? "was lost" : "failed")}: {workload.Reason}{codes}{(workload.Message is { Length: > 0 } m ? $": {m}" : "")}";

        if (workload.Reason is WorkloadReasons.DeadlineExceeded or WorkloadReasons.Unschedulable or WorkloadReasons.Stopped)
        {
            return await FailAsync(job, workload, workload.Reason, cause, cancellationToken).ConfigureAwait(false);
        }

        var policy = job.Spec.RestartPolicy ?? RestartPolicy.Never;
        var backoffLimit = job.Spec.BackoffLimit ?? 0;
        if (policy == RestartPolicy.Never)
        {
            return await FailAsync(job, workload, workload.Reason, cause, cancellationToken).ConfigureAwait(false);
        }

        // A Lost workload has no exit code: its processes vanished with the host, the kind of failure a retry is for.
        if (policy == RestartPolicy.ExitCode && workload.Phase != WorkloadPhase.Lost && !exitCodes.Any(IsRetryableExitCode))
        {
            return await FailAsync(job, workload, ReasonPermanentExitCode, $"{cause}; not retried: restartPolicy ExitCode retries only 130, 137 and 143", cancellationToken).ConfigureAwait(false);
        }

        if (attempt > backoffLimit)
        {
            return await FailAsync(job, workload, ReasonBackoffLimitExceeded, $"{cause}; backoffLimit {backoffLimit} reached after {attempt} attempt(s)", cancellationToken).ConfigureAwait(false);
        }

        var failedAt = workload.CompletionTime ?? time.GetUtcNow();
        var due = failedAt + _options.Backoff(attempt + 1);
        var now = time.GetUtcNow();
        if (now < due)
        {
            var waiting = $"{cause}; retrying in {(due - failedAt).TotalSeconds:0.###}s";
            if (SetCondition(status, ConditionRestarting, ConditionStatus.True, workload.Reason, waiting, job.Metadata.Generation))
            {
                SetCondition(status, ConditionRunning, ConditionStatus.False, workload.Reason, cause, job.Metadata.Generation);
                status.Phase = TrainJobPhase.Pending;
                status.Message = waiting;
                job = await WriteStatusAsync(job, cancellationToken).ConfigureAwait(false);
                await resources.RecordEventAsync(job, ResourceEventType.Warning, "BackOff", waiting, cancellationToken).ConfigureAwait(false);
            }

            return ReconcileResult.After(due - now);
        }

        // status.StartTime stays the first attempt's: the job's deadline counts from it.
        return await SubmitAttemptAsync(job, attempt + 1, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ReconcileResult> FailAsync(TrainJob job, WorkloadStatus? workload, string reason, string message, CancellationToken cancellationToken)
    {
        var status = job.Status!;
        if (status.RunId is { } runId)
        {
            if (workload is not null)
            {
                var run = await metadata.GetRunAsync(runId, cancellationToken).ConfigureAwait(false);
                await UploadLogAsync(workload.WorkloadId, ArtifactUri.ToStorePath(run.Info.ArtifactUri), cancellationToken).ConfigureAwait(false);
            }

            var end = (workload?.CompletionTime ?? time.GetUtcNow()).ToUnixTimeMilliseconds();
            await metadata.UpdateRunAsync(runId, new RunUpdate(RunStatus.Failed, end), cancellationToken).ConfigureAwait(false);
        }

        status.Phase = TrainJobPhase.Failed;
        status.CompletionTime = workload?.CompletionTime ?? time.GetUtcNow();
        status.Message = message;
        SetCondition(status, ConditionRunning, ConditionStatus.False, reason, message, job.Metadata.Generation);
        SetCondition(status, ConditionRestarting, ConditionStatus.False, reason, message, job.Metadata.Generation);
        SetCondition(status, ConditionFailed, ConditionStatus.True, reason, message, job.Metadata.Generation);
        job = await WriteStatusAsync(job, cancellationToken).ConfigureAwait(false);
        await resources.RecordEventAsync(job, ResourceEventType.Warning, reason, message, cancellationToken).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    private async Task UploadLogAsync(string workloadId, string root, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        await foreach (var line in runtime.ReadLogsAsync(workloadId, follow: false, cancellationToken).ConfigureAwait(false))
        {
            text.Append(line).Append('\n');
        }

        using var content = new MemoryStream(Encoding.UTF8.GetBytes(text.ToString()));
        await artifacts.PutAsync($"{root}/{LogArtifactPath}", content, cancellationToken).ConfigureAwait(false);
    }

    private async Task UploadFileAsync(string file, string path, CancellationToken cancellationToken)
    {
        var content = File.OpenRead(file);
        await using (content.ConfigureAwait(false))
        {
            await artifacts.PutAsync(path, content, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Files under <paramref name="folder"/> whose slash-separated relative path matches <paramref name="pattern"/>
    /// (<c>*</c> any characters, across folders too; <c>?</c> one character).</summary>
    internal static IEnumerable<string> MatchFiles(string folder, string pattern)
    {
        var normalized = pattern.Replace('\\', '/').TrimStart('.', '/').Replace("**/", "*", StringComparison.Ordinal).Replace("**", "*", StringComparison.Ordinal);
        return Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(file => Path.GetRelativePath(folder, file).Replace('\\', '/'))
            .Where(relative => FileSystemName.MatchesSimpleExpression(normalized, relative, ignoreCase: false))
            .Order(StringComparer.Ordinal);
    }

    private async Task<TrainJob> WriteStatusAsync(TrainJob job, CancellationToken cancellationToken)
    {
        job.Status!.ObservedGeneration = job.Metadata.Generation;
        return (TrainJob)await resources.UpdateStatusAsync(job, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sets a condition; true when its status, reason or message changed (the transition time moves only with the status).</summary>
    private bool SetCondition(TrainJobStatus status, string type, ConditionStatus value, string? reason, string? message, long? generation) =>
        status.SetCondition(type, value, reason, message, generation, time.GetUtcNow());
}
