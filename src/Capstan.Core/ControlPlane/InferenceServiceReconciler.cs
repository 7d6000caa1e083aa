using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Capstan.Core.Registry;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Core.Storage;

namespace Capstan.Core.ControlPlane;

/// <summary>
/// Keeps an <see cref="InferenceService"/> served: resolves its references (an alias to the version it points at now),
/// starts one inference server workload (<c>serve</c> of <see cref="InferenceServiceReconcilerOptions.ServerCommand"/>,
/// on free loopback ports), mirrors its readiness (<c>/v2/health/ready</c>) into phase, the Ready condition and events, and
/// rolls it to new versions in place — a moved alias, a new canary or share, new batching or timeout — through the
/// server's repository endpoint, which loads the new versions before it moves traffic, so no request is dropped. A change
/// a reload cannot apply (env, resources) starts a new server. A server that exits is restarted with backoff. Level-triggered:
/// a restarted control plane finds the workload in <c>status.workloadId</c> and adopts it.
/// </summary>
public sealed class InferenceServiceReconciler(
    IResourceStore resources,
    IWorkloadRuntime runtime,
    IMetadataStore metadata,
    InferenceServerClient server,
    TimeProvider time,
    InferenceServiceReconcilerOptions options)
{
    public const string ConditionReady = "Ready";
    public const string ReasonServing = "Serving";
    public const string ReasonStarting = "Starting";
    public const string ReasonModelNotFound = "ModelNotFound";
    public const string ReasonServerExited = "ServerExited";
    public const string ReasonRolloutFailed = "RolloutFailed";
    public const string ReasonNoServer = "NoServer";
    public const string ReasonInvalidSpec = "InvalidSpec";

    private const string WorkloadPrefix = "serve-";

    /// <summary>The service key of a workload id made by <see cref="WorkloadId"/>, or null for other ids.</summary>
    public static string? KeyOfWorkload(string workloadId)
    {
        ArgumentNullException.ThrowIfNull(workloadId);
        var parts = workloadId.Split('.');
        return parts.Length == 4 && parts[3].StartsWith(WorkloadPrefix, StringComparison.Ordinal)
            ? TrainJobReconciler.Key(parts[0], parts[1])
            : null;
    }

    /// <summary><c>NS.NAME.UID8.serve-HASH-N</c>: HASH covers what only a new process can change, N counts restarts.</summary>
    public static string WorkloadId(InferenceService service, int restarts)
    {
        ArgumentNullException.ThrowIfNull(service);
        var uid = (service.Metadata.Uid ?? "").Replace("-", "", StringComparison.Ordinal);
        return string.Create(CultureInfo.InvariantCulture, $"{service.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace}.{service.Metadata.Name}.{(uid.Length == 0 ? "0" : uid[..Math.Min(8, uid.Length)])}.{WorkloadPrefix}{ProcessHash(service)}-{restarts}");
    }

    /// <summary>The repository token of one server, derived so it never needs storing.</summary>
    public string TokenOf(string workloadId) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(options.TokenKey.Length > 0 ? options.TokenKey : "capstan"u8.ToArray(), Encoding.UTF8.GetBytes(workloadId)));

    public async Task<ReconcileResult> ReconcileAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        if (await resources.FindAsync(InferenceService.KindName, key[..slash], key[(slash + 1)..], cancellationToken).ConfigureAwait(false) is not InferenceService service)
        {
            return ReconcileResult.Done;
        }

        var status = service.Status ??= new InferenceServiceStatus();
        if (options.ServerCommand.Count == 0)
        {
            await SetNotReadyAsync(service, InferenceServicePhase.Failed, ReasonNoServer, "This control plane has no inference server command to run", cancellationToken).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        Desired desired;
        try
        {
            desired = await ResolveAsync(service, cancellationToken).ConfigureAwait(false);
        }
        catch (CapstanException e) when (e.Code is ErrorCode.ResourceDoesNotExist or ErrorCode.InvalidParameterValue)
        {
            // Keep serving what runs (an alias deleted under a live service); retry, the model may be registered soon.
            var running = status.Phase == InferenceServicePhase.Ready;
            await SetNotReadyAsync(service, running ? InferenceServicePhase.Ready : InferenceServicePhase.Failed, ReasonModelNotFound, e.Message, cancellationToken, keepReady: running).ConfigureAwait(false);
            return ReconcileResult.After(options.PollInterval);
        }

        if (status.WorkloadId is not { } workloadId)
        {
            return await StartAsync(service, desired, 0, "Started", cancellationToken).ConfigureAwait(false);
        }

        if (workloadId != WorkloadId(service, status.Restarts ?? 0))
        {
            await runtime.StopAsync(workloadId, cancellationToken).ConfigureAwait(false);
            return await StartAsync(service, desired, (status.Restarts ?? 0) + 1, "Restarted", cancellationToken).ConfigureAwait(false);
        }

        var workload = await runtime.GetStatusAsync(workloadId, cancellationToken).ConfigureAwait(false);
        if (workload is null)
        {
            // A runtime that lost a queued workload across a restart: start it again under the same id.
            return await StartAsync(service, desired, status.Restarts ?? 0, "Started", cancellationToken).ConfigureAwait(false);
        }

        if (workload.IsFinished)
        {
            return await HandleExitAsync(service, desired, workload, cancellationToken).ConfigureAwait(false);
        }

        if (workload.Phase == WorkloadPhase.Queued)
        {
            await SetNotReadyAsync(service, InferenceServicePhase.Pending, workload.Reason, $"Queued: {workload.Message ?? "waiting for capacity"}", cancellationToken).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        var url = new Uri(status.Url!.TrimEnd('/') + "/");
        if (!await server.IsReadyAsync(url, cancellationToken).ConfigureAwait(false))
        {
            var wasReady = status.Phase == InferenceServicePhase.Ready;
            await SetNotReadyAsync(service, InferenceServicePhase.Starting, wasReady ? "NotResponding" : ReasonStarting, wasReady ? $"{url} does not answer /v2/health/ready" : $"Waiting for {url}v2/health/ready", cancellationToken).ConfigureAwait(false);
            return ReconcileResult.After(options.StartupProbeInterval);
        }

        if (status.ObservedGeneration != service.Metadata.Generation || !SameTraffic(status.Traffic, desired.Traffic))
        {
            var before = Describe(status.Traffic ?? []);
            try
            {
                await server.LoadAsync(url, TokenOf(workloadId), service.Spec.ModelName!, desired.Parameters(service.Spec), cancellationToken).ConfigureAwait(false);
            }
            catch (CapstanException e)
            {
                // The old versions still serve: say so and try again on the next poll.
                status.Message = $"Rollout failed, still serving {before}: {e.Message}";
                SetCondition(status, "RolledOut", ConditionStatus.False, ReasonRolloutFailed, e.Message, service.Metadata.Generation);
                service = await WriteStatusAsync(service, cancellationToken).ConfigureAwait(false);
                await resources.RecordEventAsync(service, ResourceEventType.Warning, ReasonRolloutFailed, e.Message, cancellationToken).ConfigureAwait(false);
                return ReconcileResult.After(options.PollInterval);
            }

            status.Traffic = desired.Traffic;
            status.ObservedGeneration = service.Metadata.Generation;
            SetCondition(status, "RolledOut", ConditionStatus.True, "RolledOut", $"Serving {Describe(desired.Traffic)}", service.Metadata.Generation);
            await resources.RecordEventAsync(service, ResourceEventType.Normal, "RolledOut", $"Rolled {service.Spec.ModelName} from {before} to {Describe(desired.Traffic)}", cancellationToken).ConfigureAwait(false);
        }

        var message = $"Serving {service.Spec.ModelName} {Describe(status.Traffic ?? [])} at {status.Url}";
        if (status.Phase != InferenceServicePhase.Ready || SetCondition(status, ConditionReady, ConditionStatus.True, workload.Reason == WorkloadReasons.Adopted ? WorkloadReasons.Adopted : ReasonServing, message, service.Metadata.Generation) || status.Message != message)
        {
            var firstReady = status.Phase != InferenceServicePhase.Ready;
            status.Phase = InferenceServicePhase.Ready;
            status.Message = message;
            SetCondition(status, ConditionReady, ConditionStatus.True, workload.Reason == WorkloadReasons.Adopted ? WorkloadReasons.Adopted : ReasonServing, message, service.Metadata.Generation);
            service = await WriteStatusAsync(service, cancellationToken).ConfigureAwait(false);
            if (firstReady)
            {
                await resources.RecordEventAsync(service, ResourceEventType.Normal, workload.Reason == WorkloadReasons.Adopted ? "Adopted" : "Ready", message, cancellationToken).ConfigureAwait(false);
            }
        }

        return ReconcileResult.After(options.PollInterval);
    }

    /// <summary>A deleted service: its server stops.</summary>
    public async Task StopDeletedAsync(InferenceService service, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(service);
        if (service.Status?.WorkloadId is { } workloadId)
        {
            await runtime.StopAsync(workloadId, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<ReconcileResult> StartAsync(InferenceService service, Desired desired, int restarts, string reason, CancellationToken cancellationToken)
    {
        var status = service.Status!;
        var spec = service.Spec;
        var workloadId = WorkloadId(service, restarts);

        // The same id again (a lost queued workload) keeps its ports, so the URL clients have still works.
        var (port, grpcPort) = workloadId == status.WorkloadId && status.Url is { } known && status.GrpcAddress is { } grpc
            ? (new Uri(known).Port, int.Parse(grpc[(grpc.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture))
            : (options.AllocatePort(), options.AllocatePort());
        // Traces (when OTEL_EXPORTER_OTLP_ENDPOINT is set here or in spec.env) are named after the service unless spec.env names them.
        var environment = new Dictionary<string, string>(StringComparer.Ordinal) { ["OTEL_SERVICE_NAME"] = service.Metadata.Name! };
        foreach (var variable in spec.Env ?? [])
        {
            if (variable.ValueFrom is not null)
            {
                await SetNotReadyAsync(service, InferenceServicePhase.Failed, ReasonInvalidSpec, $"spec.env '{variable.Name}' uses valueFrom, which the local runtime cannot resolve", cancellationToken).ConfigureAwait(false);
                return ReconcileResult.Done;
            }

            environment[variable.Name] = variable.Value ?? "";
        }

        foreach (var (name, value) in options.ServerEnvironment())
        {
            environment[name] = value;
        }

        environment[ServingTokenVariable] = TokenOf(workloadId);
        var batching = spec.Batching;
        var args = new List<string>(options.ServerCommand.Skip(1))
        {
            "serve", desired.Main.Exact, "--name", spec.ModelName!, "--host", "127.0.0.1",
            "--port", port.ToString(CultureInfo.InvariantCulture), "--grpc-port", grpcPort.ToString(CultureInfo.InvariantCulture),
            "--max-batch-size", (batching?.MaxBatchSize ?? 1).ToString(CultureInfo.InvariantCulture),
            "--max-latency-ms", (batching?.MaxLatency ?? 0).ToString(CultureInfo.InvariantCulture),
            "--timeout", (spec.Timeout ?? InferenceServiceSpec.DefaultTimeoutSeconds).ToString(CultureInfo.InvariantCulture),
        };
        if (desired.Canary is { } canary)
        {
            args.AddRange(["--canary", canary.Exact, "--canary-percent", desired.CanaryPercent.ToString(CultureInfo.InvariantCulture)]);
        }

        var workload = await runtime.SubmitAsync(
            new WorkloadSpec
            {
                WorkloadId = workloadId,
                Command = [options.ServerCommand[0]],
                Args = args,
                Environment = environment,
                Resources = spec.Resources,
            },
            cancellationToken).ConfigureAwait(false);

        status.WorkloadId = workloadId;
        status.Restarts = restarts;
        status.Url = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}");
        status.GrpcAddress = string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{grpcPort}");
        status.ModelName = spec.ModelName;
        status.Traffic = desired.Traffic;
        status.ObservedGeneration = service.Metadata.Generation;
        status.Phase = workload.Phase == WorkloadPhase.Queued ? InferenceServicePhase.Pending : InferenceServicePhase.Starting;
        status.Message = $"Starting the server for {Describe(desired.Traffic)} on {status.Url}";
        SetCondition(status, ConditionReady, ConditionStatus.False, ReasonStarting, status.Message, service.Metadata.Generation);
        service = await WriteStatusAsync(service, cancellationToken).ConfigureAwait(false);
        await resources.RecordEventAsync(service, ResourceEventType.Normal, reason, $"{reason} inference server {workloadId} on {status.Url} for {Describe(desired.Traffic)}", cancellationToken).ConfigureAwait(false);
        return ReconcileResult.After(options.StartupProbeInterval);
    }

    private async Task<ReconcileResult> HandleExitAsync(InferenceService service, Desired desired, WorkloadStatus workload, CancellationToken cancellationToken)
    {
        var status = service.Status!;
        var restarts = status.Restarts ?? 0;
        var due = (workload.CompletionTime ?? time.GetUtcNow()) + options.RestartBackoff(restarts);
        var now = time.GetUtcNow();
        if (now >= due)
        {
            return await StartAsync(service, desired, restarts + 1, "Restarted", cancellationToken).ConfigureAwait(false);
        }

        if (status.Phase != InferenceServicePhase.Failed)
        {
            var tail = new Queue<string>();
            await foreach (var line in runtime.ReadLogsAsync(workload.WorkloadId, follow: false, cancellationToken).ConfigureAwait(false))
            {
                tail.Enqueue(line);
                if (tail.Count > 5)
                {
                    tail.Dequeue();
                }
            }

            var code = workload.Replicas.FirstOrDefault()?.ExitCode;
            var message = $"The inference server exited ({workload.Reason}{(code is null ? "" : $", exit code {code}")}); restarting in {(due - now).TotalSeconds:0.#}s{(tail.Count > 0 ? ": " + string.Join(" | ", tail) : "")}";
            await SetNotReadyAsync(service, InferenceServicePhase.Failed, ReasonServerExited, message, cancellationToken, warning: true).ConfigureAwait(false);
        }

        return ReconcileResult.After(due - now);
    }

    private async Task<Desired> ResolveAsync(InferenceService service, CancellationToken cancellationToken)
    {
        var spec = service.Spec;
        var main = await ResolveReferenceAsync(spec.Model!, cancellationToken).ConfigureAwait(false);
        if (spec.Canary is not { Model: { } canaryText } canarySpec)
        {
            return new Desired(main, null, 0);
        }

        var canary = await ResolveReferenceAsync(canaryText, cancellationToken).ConfigureAwait(false);
        if (canary.Exact == main.Exact)
        {
            return new Desired(main, null, 0);
        }

        if (canary.Version == main.Version)
        {
            // As the server does: two files, or the same number of two models, need versions of their own.
            canary = canary with { Version = main.Version + "-canary" };
        }

        return new Desired(main, canary, canarySpec.TrafficPercent ?? 0);
    }

    private async Task<ResolvedReference> ResolveReferenceAsync(string text, CancellationToken cancellationToken)
    {
        var reference = ModelReference.Parse(text);
        switch (reference.Kind)
        {
            case ModelReferenceKind.RegistryAlias:
                var byAlias = await metadata.GetModelVersionByAliasAsync(reference.Name!, reference.Alias!, cancellationToken).ConfigureAwait(false);
                return new ResolvedReference(text, string.Create(CultureInfo.InvariantCulture, $"{ModelReference.RegistryScheme}{byAlias.Name}/{byAlias.Version}"), byAlias.Version.ToString(CultureInfo.InvariantCulture));
            case ModelReferenceKind.RegistryVersion:
                var exact = await metadata.GetModelVersionAsync(reference.Name!, reference.Version!.Value, cancellationToken).ConfigureAwait(false);
                return new ResolvedReference(text, text, exact.Version.ToString(CultureInfo.InvariantCulture));
            default:
                var path = text.StartsWith("file://", StringComparison.Ordinal) ? new Uri(text).LocalPath : text;
                if (path.Contains("://", StringComparison.Ordinal))
                {
                    throw CapstanException.Invalid($"'{text}': the local runtime serves files and models:/ references, not remote URIs");
                }

                var full = Path.GetFullPath(path);
                return File.Exists(full)
                    ? new ResolvedReference(text, full, "1")
                    : throw CapstanException.NotFound($"Model file '{text}' does not exist");
        }
    }

    private static bool SameTraffic(IList<TrafficTarget>? current, IList<TrafficTarget> desired) =>
        current is not null && InferenceServerClient.Serialize(current) == InferenceServerClient.Serialize(desired);

    private static string Describe(IEnumerable<TrafficTarget> traffic)
    {
        var list = traffic.ToList();
        return list.Count == 0 ? "nothing"
            : list.Count == 1 ? $"version {list[0].Version}"
            : string.Join(" and ", list.Select(t => $"version {t.Version} ({t.Percent}% {t.Tag})"));
    }

    /// <summary>Fields only a new process can change: its environment and resources.</summary>
    private static string ProcessHash(InferenceService service)
    {
        var spec = service.Spec;
        var text = ResourceSerializer.ToJson(new InferenceService { Spec = new InferenceServiceSpec { Env = spec.Env, EnvFrom = spec.EnvFrom, Resources = spec.Resources } });
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..8];
    }

    private async Task SetNotReadyAsync(InferenceService service, InferenceServicePhase phase, string reason, string message, CancellationToken cancellationToken, bool keepReady = false, bool warning = false)
    {
        var status = service.Status!;
        var changed = status.Phase != phase | status.Message != message;
        if (!keepReady)
        {
            changed |= SetCondition(status, ConditionReady, ConditionStatus.False, reason, message, service.Metadata.Generation);
        }

        if (!changed)
        {
            return;
        }

        status.Phase = phase;
        status.Message = message;
        service = await WriteStatusAsync(service, cancellationToken).ConfigureAwait(false);
        var type = warning || phase == InferenceServicePhase.Failed || keepReady ? ResourceEventType.Warning : ResourceEventType.Normal;
        await resources.RecordEventAsync(service, type, reason, message, cancellationToken).ConfigureAwait(false);
    }

    private async Task<InferenceService> WriteStatusAsync(InferenceService service, CancellationToken cancellationToken) =>
        (InferenceService)await resources.UpdateStatusAsync(service, cancellationToken).ConfigureAwait(false);

    /// <summary>Sets a condition; true when its status, reason or message changed.</summary>
    private bool SetCondition(InferenceServiceStatus status, string type, ConditionStatus value, string? reason, string? message, long? generation) =>
        status.SetCondition(type, value, reason, message, generation, time.GetUtcNow(), recordFalse: true);

    /// <summary>The variable a server reads its repository token from (as <c>RepositoryApi.TokenVariable</c> in Capstan.Serving).</summary>
    public const string ServingTokenVariable = "CAPSTAN_SERVING_TOKEN";

    private sealed record ResolvedReference(string Text, string Exact, string Version);

    private sealed record Desired(ResolvedReference Main, ResolvedReference? Canary, int CanaryPercent)
    {
        public IList<TrafficTarget> Traffic =>
            Canary is null
                ? [new TrafficTarget { Tag = "default", Model = Main.Text, Version = Main.Version, Percent = 100 }]
                : [new TrafficTarget { Tag = "default", Model = Main.Text, Version = Main.Version, Percent = 100 - CanaryPercent },
                   new TrafficTarget { Tag = "canary", Model = Canary.Text, Version = Canary.Version, Percent = CanaryPercent }];

        public System.Text.Json.Nodes.JsonObject Parameters(InferenceServiceSpec spec) =>
            InferenceServerClient.Parameters(
                Main.Exact,
                Canary?.Exact,
                CanaryPercent,
                spec.Batching?.MaxBatchSize ?? 1,
                spec.Batching?.MaxLatency ?? 0,
                spec.Timeout ?? InferenceServiceSpec.DefaultTimeoutSeconds);
    }
}
