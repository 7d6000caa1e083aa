using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Runtime.Kubernetes.Models;
using k8s;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Rendering;

/// <summary>
/// What a TrainJob becomes on a cluster: a <c>batch/v1</c> Job, and with <c>replicas</c> &gt; 1 the headless Service its
/// pods find each other through; with Volcano a PodGroup. <see cref="All"/> is in creation order.
/// </summary>
public sealed record TrainJobObjects(V1Job Job, V1Service? Service, V1Beta1PodGroup? PodGroup)
{
    /// <summary>The PodGroup first (Volcano binds no pod of the group before it exists), the Service before the pods need its DNS, then the Job.</summary>
    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> All =>
        [.. new IKubernetesObject<V1ObjectMeta>?[] { PodGroup, Service, Job }.OfType<IKubernetesObject<V1ObjectMeta>>()];
}

/// <summary>
/// Renders a <see cref="TrainJob"/> the way Kubeflow's PyTorchJob runs on Kubernetes, with the same contract the local
/// runtime gives a process (<see cref="TrainJobWorkloads"/>): <c>${params.x}</c> expanded in command and args, the params
/// exported (<see cref="ParamSubstitution.Environment"/>), the job's <c>env</c>, then what the control plane adds
/// (<c>CAPSTAN_URL</c>, <c>MLFLOW_TRACKING_URI</c>, the run ids), then the rendezvous variables
/// (<see cref="DistributedEnvironment"/>).
/// <para>
/// With <c>replicas</c> &gt; 1 the Job is Indexed: completions = parallelism = replicas, each pod's hostname is
/// <c>JOB-INDEX</c> and its subdomain the headless Service <c>JOB</c>, so <c>MASTER_ADDR</c> = <c>JOB-0.JOB</c> resolves to
/// rank 0, and <c>RANK</c> / <c>PET_NODE_RANK</c> come from the pod's completion-index annotation.
/// </para>
/// <para>
/// Retries: pods never restart in place (<c>restartPolicy: Never</c>), so every retry is a new pod the Job counts, as an
/// attempt is locally. A single-replica job gets <c>backoffLimit</c>; an Indexed one <c>backoffLimitPerIndex</c> (each
/// rank retried on its own up to the limit; torchrun's elastic rendezvous takes it back) with <c>maxFailedIndexes: 0</c>,
/// so a rank out of retries fails the whole job at once instead of leaving the others waiting. <c>restartPolicy:
/// ExitCode</c> adds a <c>podFailurePolicy</c> that fails the job on any exit code but 130, 137 and 143, the rule of
/// <see cref="TrainJobReconciler.IsRetryableExitCode"/>. A replacement pod starts only once the failed one has terminated
/// (<c>podReplacementPolicy: Failed</c>), so two pods never hold one rank's hostname.
/// </para>
/// </summary>
public static class TrainJobRenderer
{
    /// <summary>The name of the training container in every pod.</summary>
    public const string ContainerName = "trainer";

    /// <summary>The name of the rendezvous port on the container and the headless Service.</summary>
    public const string RendezvousPortName = "rendezvous";

    public static TrainJobObjects Render(TrainJob job, RenderOptions options)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(options);
        job = Defaulted(job);
        var spec = job.Spec;
        var name = job.Metadata.Name!;
        var replicas = spec.Replicas!.Value;
        var indexed = replicas > 1;
        var labels = OwnedMetadata.Labels(job, CapstanLabels.Trainer);
        var (ownerKey, ownerValue) = OwnedMetadata.OwnerLabel(job);

        var podAnnotations = new Dictionary<string, string>(StringComparer.Ordinal);
        V1Beta1PodGroup? podGroup = null;
        if (options.GangScheduler == GangScheduler.Volcano)
        {
            podGroup = PodGroup(job, labels, options);
            podAnnotations[CapstanLabels.VolcanoGroupName] = podGroup.Metadata.Name;
        }

        var container = new V1Container
        {
            Name = ContainerName,
            Image = spec.Image ?? options.TrainerImage,
            ImagePullPolicy = spec.Image is null ? "IfNotPresent" : null,
            Command = Expand(spec.Command, spec.Params),
            Args = Expand(spec.Args, spec.Params),
            WorkingDir = WorkingDirectory(job),
            Env = Environment(job, options),
            EnvFrom = spec.EnvFrom,
            Resources = ExtendedLimits(spec.Resources),
            Ports = DistributedEnvironment.Applies(replicas, spec.NprocPerNode!.Value)
                ? [new V1ContainerPort { Name = RendezvousPortName, ContainerPort = options.MasterPort, Protocol = "TCP" }]
                : null,
            SecurityContext = new V1SecurityContext { AllowPrivilegeEscalation = false },
        };

        var pod = new V1PodTemplateSpec
        {
            Metadata = new V1ObjectMeta
            {
                Labels = new Dictionary<string, string>(labels, StringComparer.Ordinal),
                Annotations = podAnnotations.Count > 0 ? podAnnotations : null,
            },
            Spec = new V1PodSpec
            {
                RestartPolicy = "Never",
                Containers = [container],
                Subdomain = indexed ? name : null,
                Affinity = spec.Affinity,
                Tolerations = spec.Tolerations,
                NodeSelector = spec.NodeSelector,
                SchedulerName = options.GangScheduler == GangScheduler.Volcano ? "volcano" : null,
            },
        };

        var jobLabels = new Dictionary<string, string>(labels, StringComparer.Ordinal);
        if (options.GangScheduler == GangScheduler.Kueue)
        {
            jobLabels[CapstanLabels.KueueQueueName] = options.KueueQueue;
        }

        var backoffLimit = spec.BackoffLimit!.Value;
        var kubeJob = new V1Job
        {
            ApiVersion = "batch/v1",
            Kind = "Job",
            Metadata = OwnedMetadata.For(job, name, jobLabels, options),
            Spec = new V1JobSpec
            {
                Completions = replicas,
                Parallelism = replicas,
                CompletionMode = indexed ? "Indexed" : "NonIndexed",
                BackoffLimit = indexed ? null : backoffLimit,
                BackoffLimitPerIndex = indexed ? backoffLimit : null,
                MaxFailedIndexes = indexed ? 0 : null,
                PodFailurePolicy = spec.RestartPolicy == RestartPolicy.ExitCode ? ExitCodePolicy() : null,
                PodReplacementPolicy = "Failed",
                ActiveDeadlineSeconds = spec.ActiveDeadlineSeconds,
                Suspend = options.GangScheduler == GangScheduler.Kueue ? true : null,
                Template = pod,
            },
        };

        V1Service? service = null;
        if (indexed)
        {
            service = new V1Service
            {
                ApiVersion = "v1",
                Kind = "Service",
                Metadata = OwnedMetadata.For(job, name, labels, options),
                Spec = new V1ServiceSpec
                {
                    ClusterIP = "None",
                    Selector = new Dictionary<string, string>(StringComparer.Ordinal) { [ownerKey] = ownerValue, [CapstanLabels.Role] = CapstanLabels.Trainer },
                    // Rank 0's name must resolve while the others start, before any readiness.
                    PublishNotReadyAddresses = true,
                    Ports = [new V1ServicePort { Name = RendezvousPortName, Port = options.MasterPort, TargetPort = options.MasterPort, Protocol = "TCP" }],
                },
            };
        }

        return new TrainJobObjects(kubeJob, service, podGroup);
    }

    /// <summary><c>JOB-0.JOB</c>: rank 0's pod hostname under the headless Service, resolvable from every pod of the namespace.</summary>
    public static string MasterAddress(string jobName) => $"{jobName}-0.{jobName}";

    /// <summary>The job with its defaults applied, without touching the caller's object (a resource read from the cluster may have none).</summary>
    private static TrainJob Defaulted(TrainJob job)
    {
        var copy = (TrainJob)ResourceSerializer.FromJson(ResourceSerializer.ToJson(job));
        copy.ApplyDefaults();
        var errors = ResourceValidation.Validate(copy, Source(copy));
        return errors.Count > 0 ? throw new ResourceValidationException(errors) : copy;
    }

    private static string Source(Resource resource) => $"{resource.Kind.ToLowerInvariant()}/{resource.Metadata.Name}";

    private static List<string>? Expand(IList<string>? texts, IDictionary<string, string>? parameters) =>
        texts is null
            ? null
            : [.. ParamSubstitution.Expand(texts, ParamSubstitution.Params, new Dictionary<string, string>(parameters ?? new Dictionary<string, string>(), StringComparer.Ordinal))];

    /// <summary>
    /// An absolute <c>workingDir</c> as given; <c>.</c> (where the job was started, locally) becomes the image's own
    /// working directory. Any other relative path has no meaning in a container, which needs an absolute one.
    /// </summary>
    private static string? WorkingDirectory(TrainJob job)
    {
        var dir = job.Spec.WorkingDir;
        if (dir is null or "." or "./")
        {
            return null;
        }

        return dir.StartsWith('/')
            ? dir
            : throw new ResourceValidationException([new ResourceError(Source(job), 0, 0, "spec.workingDir",
                $"'{dir}' is relative: on Kubernetes give an absolute path in the image, or '.' for the image's working directory")]);
    }

    /// <summary>Requests and limits verbatim; an extended resource (<c>nvidia.com/gpu</c>) only requested is limited to the same, as Kubernetes requires.</summary>
    internal static V1ResourceRequirements? ExtendedLimits(V1ResourceRequirements? resources)
    {
        if (resources?.Requests is not { Count: > 0 } requests)
        {
            return resources;
        }

        var limits = new Dictionary<string, ResourceQuantity>(resources.Limits ?? new Dictionary<string, ResourceQuantity>(), StringComparer.Ordinal);
        foreach (var (resource, quantity) in requests)
        {
            if (IsExtendedResource(resource))
            {
                limits.TryAdd(resource, quantity);
            }
        }

        return new V1ResourceRequirements { Requests = resources.Requests, Limits = limits.Count > 0 ? limits : null, Claims = resources.Claims };
    }

    /// <summary>A resource the node does not overcommit: anything outside the kubernetes.io domain but the built-in cpu, memory, storage and hugepages.</summary>
    internal static bool IsExtendedResource(string resource) =>
        resource.Contains('/', StringComparison.Ordinal) && !resource.StartsWith("kubernetes.io/", StringComparison.Ordinal);

    private static List<V1EnvVar> Environment(TrainJob job, RenderOptions options)
    {
        var spec = job.Spec;
        var env = new EnvironmentList();
        // Output reaches `kubectl logs` as it is printed, as Kubeflow's operator arranges for Python.
        env.Set("PYTHONUNBUFFERED", "1");

        // Training code that sends OpenTelemetry traces is named after its TrainJob unless spec.env names it.
        env.Set("OTEL_SERVICE_NAME", job.Metadata.Name!);
        foreach (var (key, value) in ParamSubstitution.Environment(spec.Params ?? new Dictionary<string, string>()))
        {
            env.Set(key, value);
        }

        foreach (var variable in spec.Env ?? [])
        {
            env.Set(variable);
        }

        env.Set("CAPSTAN_URL", options.ApiUrl);
        env.Set("MLFLOW_TRACKING_URI", options.ApiUrl);
        if (options.RunId is { } runId)
        {
            env.Set("CAPSTAN_RUN_ID", runId);
            env.Set("MLFLOW_RUN_ID", runId);
        }

        if (options.ExperimentId is { } experimentId)
        {
            env.Set("MLFLOW_EXPERIMENT_ID", experimentId);
        }
        else if (spec.Experiment is { } experiment)
        {
            // With no run created yet, an MLflow client still logs into the job's experiment.
            env.Set("MLFLOW_EXPERIMENT_NAME", experiment);
        }

        var replicas = spec.Replicas!.Value;
        var nproc = spec.NprocPerNode!.Value;
        if (DistributedEnvironment.Applies(replicas, nproc))
        {
            var indexed = replicas > 1;
            var master = indexed ? MasterAddress(job.Metadata.Name!) : "localhost";
            foreach (var (key, value) in DistributedEnvironment.For(0, replicas, nproc, master, options.MasterPort))
            {
                if (indexed && key is DistributedEnvironment.Rank or DistributedEnvironment.PetNodeRank)
                {
                    env.Set(new V1EnvVar
                    {
                        Name = key,
                        ValueFrom = new V1EnvVarSource
                        {
                            FieldRef = new V1ObjectFieldSelector { FieldPath = $"metadata.annotations['{CapstanLabels.JobCompletionIndex}']" },
                        },
                    });
                }
                else
                {
                    env.Set(key, value);
                }
            }
        }

        return env.ToList();
    }

    /// <summary>Kubeflow's ExitCode rule as a Job's podFailurePolicy: an exit code other than 130, 137 or 143 fails the job.</summary>
    private static V1PodFailurePolicy ExitCodePolicy()
    {
        int[] retryable = [.. Enumerable.Range(0, 256).Where(TrainJobReconciler.IsRetryableExitCode)];
        return new V1PodFailurePolicy
        {
            Rules =
            [
                new V1PodFailurePolicyRule
                {
                    Action = "FailJob",
                    OnExitCodes = new V1PodFailurePolicyOnExitCodesRequirement
                    {
                        ContainerName = ContainerName,
                        OperatorProperty = "NotIn",
                        Values = [0, .. retryable],
                    },
                },
            ],
        };
    }

    private static V1Beta1PodGroup PodGroup(TrainJob job, IDictionary<string, string> labels, RenderOptions options)
    {
        var replicas = job.Spec.Replicas!.Value;
        var perPod = job.Spec.Resources?.Requests is { Count: > 0 } requests ? requests : job.Spec.Resources?.Limits;
        Dictionary<string, ResourceQuantity>? total = null;
        if (perPod is { Count: > 0 })
        {
            total = new Dictionary<string, ResourceQuantity>(StringComparer.Ordinal);
            foreach (var (resource, quantity) in perPod)
            {
                total[resource] = Times(quantity, replicas);
            }
        }

        return new V1Beta1PodGroup
        {
            Metadata = OwnedMetadata.For(job, job.Metadata.Name!, labels, options),
            Spec = new V1Beta1PodGroupSpec { MinMember = replicas, MinResources = total, Queue = options.VolcanoQueue },
        };
    }

    private static ResourceQuantity Times(ResourceQuantity quantity, int factor) =>
        new(new ResourceQuantity(quantity.ToDecimal() * factor, 0, quantity.Format).CanonicalizeString());
}
