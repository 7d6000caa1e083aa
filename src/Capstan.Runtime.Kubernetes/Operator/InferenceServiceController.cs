using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core;
using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Cluster;
using Capstan.Runtime.Kubernetes.Rendering;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>
/// Runs InferenceService custom resources as what <see cref="InferenceServiceRenderer"/> renders (predictor and canary
/// Deployments, Services, HorizontalPodAutoscaler, PodDisruptionBudget, HTTPRoute), owned by the InferenceService and
/// kept as rendered: a changed spec updates them in place (a rolling update of the Deployments). Ready is the
/// Deployments' own: every Deployment has an available replica; the URL is the Service's in-cluster address.
/// </summary>
public sealed class InferenceServiceController(IKubernetes client, OperatorOptions options, ClusterEvents events, ILogger logger)
{
    private const string Plural = "inferenceservices";

    private static readonly JsonSerializerOptions s_json = ResourceSerializer.JsonOptions;
    private readonly OwnedObjects _owned = new(client);

    public Task RunAsync(CancellationToken cancellationToken)
    {
        var queue = new WorkQueue(options.QueueCapacity, options.RetryBaseDelay, options.RetryMaxDelay);
        queue.ReportTo(options.Metrics, InferenceService.KindName);
        return queue.RunAsync([WatchServicesAsync(queue, cancellationToken), WatchDeploymentsAsync(queue, cancellationToken)], PassAsync, options.Workers, logger, cancellationToken);

        // Watch events alone wake a service: no pass asks to be looked at again later.
        async Task<TimeSpan?> PassAsync(string key, CancellationToken ct)
        {
            await ReconcileAsync(key, ct).ConfigureAwait(false);
            return null;
        }
    }

    private async Task WatchServicesAsync(WorkQueue queue, CancellationToken cancellationToken)
    {
        var watch = new ListWatch<JsonObject>(
            Plural,
            async ct =>
            {
                var list = CustomResources.ToNode(options.Namespace is { } ns
                    ? await client.CustomObjects.ListNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, ns, Plural, cancellationToken: ct).ConfigureAwait(false)
                    : await client.CustomObjects.ListCustomObjectForAllNamespacesAsync(CustomResources.Group, CustomResources.Version, Plural, cancellationToken: ct).ConfigureAwait(false));
                return (list["items"]?.AsArray().Select(i => i!.AsObject()) ?? [], list["metadata"]?["resourceVersion"]?.GetValue<string>() ?? "");
            },
            (version, onError, ct) => TrainJobController.Objects(options.Namespace is { } ns
                ? client.CustomObjects.WatchListNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, ns, Plural, resourceVersion: version, onError: onError, cancellationToken: ct)
                : client.CustomObjects.WatchListCustomObjectForAllNamespacesAsync(CustomResources.Group, CustomResources.Version, Plural, resourceVersion: version, onError: onError, cancellationToken: ct)),
            CustomResources.ResourceVersionOf,
            options.WatchRetryDelay,
            logger);
        await foreach (var (_, obj) in watch.RunAsync(cancellationToken).ConfigureAwait(false))
        {
            await queue.AddAsync(TrainJobController.Key(obj["metadata"]?["namespace"]?.GetValue<string>(), obj["metadata"]?["name"]?.GetValue<string>()), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task WatchDeploymentsAsync(WorkQueue queue, CancellationToken cancellationToken)
    {
        var watch = new ListWatch<V1Deployment>(
            "deployments",
            async ct =>
            {
                var list = options.Namespace is { } ns
                    ? await client.AppsV1.ListNamespacedDeploymentAsync(ns, labelSelector: CapstanLabels.InferenceService, cancellationToken: ct).ConfigureAwait(false)
                    : await client.AppsV1.ListDeploymentForAllNamespacesAsync(labelSelector: CapstanLabels.InferenceService, cancellationToken: ct).ConfigureAwait(false);
                return (list.Items, list.Metadata.ResourceVersion);
            },
            (version, onError, ct) => options.Namespace is { } ns
                ? client.AppsV1.WatchListNamespacedDeploymentAsync(ns, labelSelector: CapstanLabels.InferenceService, resourceVersion: version, onError: onError, cancellationToken: ct)
                : client.AppsV1.WatchListDeploymentForAllNamespacesAsync(labelSelector: CapstanLabels.InferenceService, resourceVersion: version, onError: onError, cancellationToken: ct),
            d => d.Metadata?.ResourceVersion,
            options.WatchRetryDelay,
            logger);
        await foreach (var (_, deployment) in watch.RunAsync(cancellationToken).ConfigureAwait(false))
        {
            var owner = deployment.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true && o.Kind == InferenceService.KindName);
            if (owner is not null)
            {
                await queue.AddAsync(TrainJobController.Key(deployment.Metadata.NamespaceProperty, owner.Name), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public async Task ReconcileAsync(string key, CancellationToken cancellationToken)
    {
        var (ns, name) = TrainJobController.Split(key);
        JsonObject raw;
        try
        {
            raw = CustomResources.ToNode(await client.CustomObjects.GetNamespacedCustomObjectAsync(CustomResources.Group, CustomResources.Version, ns, Plural, name, cancellationToken).ConfigureAwait(false));
        }
        catch (HttpOperationException e) when (CustomResources.IsNotFound(e))
        {
            return;
        }

        if (CustomResources.DeletionTimestamp(raw) is not null)
        {
            return;
        }

        var service = (InferenceService)CustomResources.ToResource(raw);
        var generation = service.Metadata.Generation ?? 1;
        var previous = service.Status;
        InferenceServiceObjects objects;
        try
        {
            objects = InferenceServiceRenderer.Render(service, options.Render);
        }
        catch (ResourceValidationException e)
        {
            await RecordAsync(raw, EventTypes.Warning, "InvalidSpec", e.Message, cancellationToken).ConfigureAwait(false);
            await WriteStatusAsync(raw, Status(previous, InferenceServicePhase.Failed, "InvalidSpec", e.Message, generation, null, null), cancellationToken).ConfigureAwait(false);
            return;
        }

        var deployments = new List<V1Deployment>();
        foreach (var desired in objects.All)
        {
            var (outcome, stored) = await _owned.ApplyAsync(desired, service.Metadata.Uid!, cancellationToken).ConfigureAwait(false);
            switch (outcome)
            {
                case OwnedObjects.Outcome.Created or OwnedObjects.Outcome.Updated:
                    await RecordAsync(raw, EventTypes.Normal, outcome.ToString(), $"{outcome} {desired.Kind} {desired.Metadata.Name}", cancellationToken).ConfigureAwait(false);
                    break;
                case OwnedObjects.Outcome.NotOwned:
                    var message = $"{desired.Kind} {ns}/{desired.Metadata.Name} exists and is not owned by this InferenceService";
                    await RecordAsync(raw, EventTypes.Warning, "NotOwned", message, cancellationToken).ConfigureAwait(false);
                    await WriteStatusAsync(raw, Status(previous, InferenceServicePhase.Failed, "NotOwned", message, generation, null, null), cancellationToken).ConfigureAwait(false);
                    return;
            }

            if (stored is V1Deployment deployment)
            {
                deployments.Add(deployment);
            }
        }

        var unavailable = deployments.Where(d => (d.Status?.AvailableReplicas ?? 0) < 1).Select(d => d.Metadata.Name).ToList();
        var phase = unavailable.Count == 0 ? InferenceServicePhase.Ready : InferenceServicePhase.Starting;
        var url = $"http://{objects.Service.Metadata.Name}.{ns}.svc:{service.Spec.Port ?? objects.Service.Spec.Ports[0].Port}";
        var grpc = objects.Service.Spec.Ports.FirstOrDefault(p => p.Name == InferenceServiceRenderer.GrpcPortName) is { } port
            ? $"{objects.Service.Metadata.Name}.{ns}.svc:{port.Port}"
            : null;
        var status = phase == InferenceServicePhase.Ready
            ? Status(previous, phase, "MinimumReplicasAvailable", $"{string.Join(", ", deployments.Select(d => $"{d.Metadata.Name} {d.Status!.AvailableReplicas} available"))}", generation, url, grpc)
            : Status(previous, phase, "ReplicasUnavailable", $"waiting for an available replica of {string.Join(", ", unavailable)}", generation, url, grpc);
        status.ModelName = service.Spec.ModelName ?? previous?.ModelName;
        if (status.Phase != previous?.Phase)
        {
            await RecordAsync(raw, EventTypes.Normal, phase.ToString(), status.Message!, cancellationToken).ConfigureAwait(false);
        }

        await WriteStatusAsync(raw, status, cancellationToken).ConfigureAwait(false);
    }

    private static InferenceServiceStatus Status(InferenceServiceStatus? previous, InferenceServicePhase phase, string reason, string message, long generation, string? url, string? grpc) => new()
    {
        Phase = phase,
        Url = url ?? previous?.Url,
        GrpcAddress = grpc ?? previous?.GrpcAddress,
        ModelName = previous?.ModelName,
        Traffic = previous?.Traffic,
        ObservedGeneration = generation,
        Message = message,
        Conditions = [TrainJobController.Make(previous, "Ready", phase == InferenceServicePhase.Ready, reason, message, generation)],
    };

    private async Task WriteStatusAsync(JsonObject raw, InferenceServiceStatus status, CancellationToken cancellationToken)
    {
        var next = JsonSerializer.SerializeToNode(status, s_json)!;
        var current = raw["status"] is { } existing ? JsonSerializer.SerializeToNode(existing.Deserialize<InferenceServiceStatus>(s_json), s_json) : null;
        if (JsonNode.DeepEquals(current, next))
        {
            return;
        }

        await CustomResources.ReplaceStatusAsync(client, raw, Plural, next, cancellationToken).ConfigureAwait(false);
    }

    private Task RecordAsync(JsonObject raw, string type, string reason, string message, CancellationToken cancellationToken) =>
        ResourceEvents.RecordAsync(events, logger, raw, InferenceService.KindName, type, reason, message, cancellationToken);
}
