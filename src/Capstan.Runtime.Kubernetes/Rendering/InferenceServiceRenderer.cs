using System.Globalization;
using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Models;
using k8s;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Rendering;

/// <summary>What an InferenceService becomes on a cluster; <see cref="All"/> is in creation order.</summary>
public sealed record InferenceServiceObjects(
    V1Deployment Predictor,
    V1Deployment? Canary,
    V1Service Service,
    IReadOnlyList<V1Service> TrackServices,
    V2HorizontalPodAutoscaler? Autoscaler,
    V1PodDisruptionBudget DisruptionBudget,
    V1HttpRoute? Route)
{
    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> All =>
    [
        .. new IKubernetesObject<V1ObjectMeta>?[] { Service }.Concat(TrackServices).Concat([Predictor, Canary, Autoscaler, DisruptionBudget, Route])
            .OfType<IKubernetesObject<V1ObjectMeta>>(),
    ];
}

/// <summary>
/// Renders an <see cref="InferenceService"/> as KServe's raw deployment mode does, with the Capstan inference server:
/// <list type="bullet">
/// <item>Deployment <c>NAME-predictor</c> running <c>capstan serve</c> on the REST and gRPC ports, with readiness on
/// <c>/v2/health/ready</c>, liveness on <c>/v2/health/live</c>, a restricted security context and rolling updates
/// that never drop below the ready count;</item>
/// <item>Service <c>NAME</c> over every predictor pod, the in-cluster address (<c>http://NAME.NAMESPACE.svc:PORT</c>);</item>
/// <item>a HorizontalPodAutoscaler (<c>autoscaling/v2</c>) on CPU utilisation or on requests per second per pod (the
/// Pods metric <c>capstan_inference_requests_per_second</c>, which a Prometheus adapter derives from the server's
/// <c>capstan_inference_requests_total</c>); without autoscaling the Deployment has <c>replicas</c>;</item>
/// <item>a PodDisruptionBudget allowing one pod down at a time, and by default a preferred pod anti-affinity and a
/// topology spread over nodes, so one node's loss does not take the service down.</item>
/// </list>
/// A canary runs as a second Deployment <c>NAME-predictor-canary</c>. When the cluster has the Gateway API an HTTPRoute
/// splits requests by weight (trafficPercent) between the Services <c>NAME-stable</c> and <c>NAME-canary</c>; otherwise
/// both Deployments sit behind Service <c>NAME</c> and the split is the ratio of their ready pods (see <see cref="CanaryReplicas"/>).
/// </summary>
public static class InferenceServiceRenderer
{
    public const string ContainerName = "server";
    public const string HttpPortName = "http";
    public const string GrpcPortName = "grpc";

    /// <summary>The per-pod Pods metric an <c>rps</c> autoscaler reads from the custom metrics API.</summary>
    public const string RequestsPerSecondMetric = "capstan_inference_requests_per_second";

    /// <summary>Where the server keeps models it downloads from the registry: an emptyDir, as the root filesystem is read-only.</summary>
    public const string CacheDirectory = "/var/cache/capstan";

    public static InferenceServiceObjects Render(InferenceService service, RenderOptions options)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(options);
        service = Defaulted(service);
        var spec = service.Spec;
        var name = service.Metadata.Name!;
        var labels = OwnedMetadata.Labels(service, CapstanLabels.Predictor);
        var canary = spec.Canary;
        var percent = canary?.TrafficPercent ?? 0;
        var autoscaling = spec.Autoscaling;
        var baseReplicas = autoscaling?.MinReplicas ?? spec.Replicas!.Value;
        var (stableReplicas, canaryReplicas) = canary is null ? (baseReplicas, 0)
            : options.GatewayApi ? (baseReplicas, Math.Max(1, baseReplicas * percent / 100))
            : CanaryReplicas(baseReplicas, percent);

        var predictor = Deployment(service, $"{name}-predictor", CapstanLabels.Stable, spec.Model!,
            autoscaling is null ? stableReplicas : null, labels, options);
        var canaryDeployment = canary is null ? null
            : Deployment(service, $"{name}-predictor-canary", CapstanLabels.Canary, canary.Model!, canaryReplicas, labels, options);

        var all = Selector(service, track: null);
        var mainService = Service(service, name, all, labels, options);
        var trackServices = new List<V1Service>();
        V1HttpRoute? route = null;
        if (options.GatewayApi)
        {
            var backends = new List<V1HttpBackendRef>();
            if (canary is null)
            {
                backends.Add(new V1HttpBackendRef { Name = name, Port = spec.Port, Weight = 100 });
            }
            else
            {
                trackServices.Add(Service(service, $"{name}-stable", Selector(service, CapstanLabels.Stable), labels, options));
                trackServices.Add(Service(service, $"{name}-canary", Selector(service, CapstanLabels.Canary), labels, options));
                backends.Add(new V1HttpBackendRef { Name = $"{name}-stable", Port = spec.Port, Weight = 100 - percent });
                backends.Add(new V1HttpBackendRef { Name = $"{name}-canary", Port = spec.Port, Weight = percent });
            }

            route = new V1HttpRoute
            {
                Metadata = OwnedMetadata.For(service, name, labels, options),
                Spec = new V1HttpRouteSpec
                {
                    ParentRefs = [new V1HttpRouteParentRef { Name = options.GatewayName, NamespaceProperty = options.GatewayNamespace }],
                    Rules =
                    [
                        new V1HttpRouteRule
                        {
                            Matches = [new V1HttpRouteMatch { Path = new V1HttpPathMatch { Type = "PathPrefix", Value = $"/v2/models/{spec.ModelName}" } }],
                            BackendRefs = backends,
                        },
                    ],
                },
            };
        }

        V2HorizontalPodAutoscaler? autoscaler = null;
        if (autoscaling is not null)
        {
            autoscaler = new V2HorizontalPodAutoscaler
            {
                ApiVersion = "autoscaling/v2",
                Kind = "HorizontalPodAutoscaler",
                Metadata = OwnedMetadata.For(service, predictor.Metadata.Name, labels, options),
                Spec = new V2HorizontalPodAutoscalerSpec
                {
                    ScaleTargetRef = new V2CrossVersionObjectReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = predictor.Metadata.Name },
                    MinReplicas = autoscaling.MinReplicas,
                    MaxReplicas = autoscaling.MaxReplicas!.Value,
                    Metrics = [Metric(autoscaling)],
                },
            };
        }

        var budget = new V1PodDisruptionBudget
        {
            ApiVersion = "policy/v1",
            Kind = "PodDisruptionBudget",
            Metadata = OwnedMetadata.For(service, $"{name}-predictor", labels, options),
            Spec = new V1PodDisruptionBudgetSpec
            {
                // One pod at a time, whatever the count: minAvailable would block every drain of a one-replica service.
                MaxUnavailable = 1,
                Selector = new V1LabelSelector { MatchLabels = all },
                // A pod that is not ready serves nothing; evicting it must not wait for the budget.
                UnhealthyPodEvictionPolicy = "AlwaysAllow",
            },
        };

        return new InferenceServiceObjects(predictor, canaryDeployment, mainService, trackServices, autoscaler, budget, route);
    }

    /// <summary>
    /// Stable and canary replicas whose ratio comes closest to <paramref name="percent"/> with <paramref name="replicas"/>
    /// pods in all (the canary at least one, the stable track at least one below 100%): 4 pods at 25% → 3 + 1, 2 pods at
    /// 10% → 1 + 1 (50%): a split by pods is only as fine as the pod count.
    /// </summary>
    public static (int Stable, int Canary) CanaryReplicas(int replicas, int percent)
    {
        if (percent <= 0)
        {
            return (Math.Max(1, replicas), 0);
        }

        if (percent >= 100)
        {
            return (0, Math.Max(1, replicas));
        }

        var total = Math.Max(2, replicas);
        var canary = Math.Clamp((int)Math.Round(total * percent / 100.0, MidpointRounding.AwayFromZero), 1, total - 1);
        return (total - canary, canary);
    }

    private static InferenceService Defaulted(InferenceService service)
    {
        var copy = (InferenceService)ResourceSerializer.FromJson(ResourceSerializer.ToJson(service));
        copy.ApplyDefaults();
        var errors = new List<ResourceError>(ResourceValidation.Validate(copy, Source(copy)));
        if (copy.Spec.Autoscaling is { Metric: AutoscalingSpec.Cpu } && copy.Spec.Resources?.Requests?.ContainsKey("cpu") != true)
        {
            errors.Add(new ResourceError(Source(copy), 0, 0, "spec.resources.requests.cpu",
                "missing: autoscaling on cpu scales on the share of the CPU request in use, so the pods need one"));
        }

        return errors.Count > 0 ? throw new ResourceValidationException(errors) : copy;
    }

    private static string Source(Resource resource) => $"{resource.Kind.ToLowerInvariant()}/{resource.Metadata.Name}";

    private static Dictionary<string, string> Selector(InferenceService service, string? track)
    {
        var (key, value) = OwnedMetadata.OwnerLabel(service);
        var selector = new Dictionary<string, string>(StringComparer.Ordinal) { [key] = value, [CapstanLabels.Role] = CapstanLabels.Predictor };
        if (track is not null)
        {
            selector[CapstanLabels.Track] = track;
        }

        return selector;
    }

    private static V1Service Service(InferenceService service, string name, Dictionary<string, string> selector, Dictionary<string, string> labels, RenderOptions options) => new()
    {
        ApiVersion = "v1",
        Kind = "Service",
        Metadata = OwnedMetadata.For(service, name, labels, options),
        Spec = new V1ServiceSpec
        {
            Selector = selector,
            Ports =
            [
                new V1ServicePort { Name = HttpPortName, Port = service.Spec.Port!.Value, TargetPort = HttpPortName, Protocol = "TCP" },
                new V1ServicePort { Name = GrpcPortName, Port = service.Spec.GrpcPort!.Value, TargetPort = GrpcPortName, Protocol = "TCP", AppProtocol = "kubernetes.io/h2c" },
            ],
        },
    };

    private static V1Deployment Deployment(
        InferenceService service, string name, string track, string model, int? replicas, Dictionary<string, string> labels, RenderOptions options)
    {
        var spec = service.Spec;
        var podLabels = new Dictionary<string, string>(labels, StringComparer.Ordinal) { [CapstanLabels.Track] = track };
        var selector = Selector(service, track);
        var inv = CultureInfo.InvariantCulture;
        List<string> args =
        [
            "serve", model,
            "--name", spec.ModelName!,
            "--host", "0.0.0.0",
            "--port", spec.Port!.Value.ToString(inv),
            "--grpc-port", spec.GrpcPort!.Value.ToString(inv),
            "--timeout", spec.Timeout!.Value.ToString(inv),
        ];
        if (spec.Batching is { } batching)
        {
            args.AddRange(["--max-batch-size", batching.MaxBatchSize!.Value.ToString(inv), "--max-latency-ms", batching.MaxLatency!.Value.ToString(inv)]);
        }

        var env = new EnvironmentList();
        env.Set("CAPSTAN_URL", options.ApiUrl);
        env.Set("CAPSTAN_HOME", CacheDirectory);

        // Traces (when spec.env points OTEL_EXPORTER_OTLP_ENDPOINT at a collector) are named after the service unless spec.env names them.
        env.Set("OTEL_SERVICE_NAME", service.Metadata.Name!);
        foreach (var variable in spec.Env ?? [])
        {
            env.Set(variable);
        }

        var container = new V1Container
        {
            Name = ContainerName,
            Image = spec.Image ?? options.ServingImage,
            ImagePullPolicy = spec.Image is null ? "IfNotPresent" : null,
            Args = args,
            Env = env.ToList(),
            EnvFrom = spec.EnvFrom,
            Resources = TrainJobRenderer.ExtendedLimits(spec.Resources),
            Ports =
            [
                new V1ContainerPort { Name = HttpPortName, ContainerPort = spec.Port.Value, Protocol = "TCP" },
                new V1ContainerPort { Name = GrpcPortName, ContainerPort = spec.GrpcPort.Value, Protocol = "TCP" },
            ],
            // Loading a large model may take minutes; the startup probe holds liveness off until the server answers.
            StartupProbe = Probe("/v2/health/live", periodSeconds: 5, failureThreshold: 60),
            LivenessProbe = Probe("/v2/health/live", periodSeconds: 10, failureThreshold: 3),
            ReadinessProbe = Probe("/v2/health/ready", periodSeconds: 5, failureThreshold: 2),
            SecurityContext = new V1SecurityContext
            {
                AllowPrivilegeEscalation = false,
                ReadOnlyRootFilesystem = true,
                RunAsNonRoot = true,
                Capabilities = new V1Capabilities { Drop = ["ALL"] },
            },
            VolumeMounts =
            [
                new V1VolumeMount { Name = "cache", MountPath = CacheDirectory },
                new V1VolumeMount { Name = "tmp", MountPath = "/tmp" },
            ],
        };

        return new V1Deployment
        {
            ApiVersion = "apps/v1",
            Kind = "Deployment",
            Metadata = OwnedMetadata.For(service, name, podLabels, options),
            Spec = new V1DeploymentSpec
            {
                Replicas = replicas,
                Selector = new V1LabelSelector { MatchLabels = selector },
                Strategy = new V1DeploymentStrategy
                {
                    Type = "RollingUpdate",
                    RollingUpdate = new V1RollingUpdateDeployment { MaxUnavailable = 0, MaxSurge = "25%" },
                },
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta
                    {
                        Labels = podLabels,
                        Annotations = new Dictionary<string, string>(StringComparer.Ordinal)
                        {
                            ["prometheus.io/scrape"] = "true",
                            ["prometheus.io/port"] = spec.Port.Value.ToString(inv),
                            ["prometheus.io/path"] = "/metrics",
                        },
                    },
                    Spec = new V1PodSpec
                    {
                        Containers = [container],
                        Affinity = SpreadAffinity(spec.Affinity, selector),
                        TopologySpreadConstraints =
                        [
                            new V1TopologySpreadConstraint
                            {
                                MaxSkew = 1,
                                TopologyKey = "kubernetes.io/hostname",
                                WhenUnsatisfiable = "ScheduleAnyway",
                                LabelSelector = new V1LabelSelector { MatchLabels = selector },
                                // Spread each rollout's pods on their own, not the old revision's and the new one's together.
                                MatchLabelKeys = ["pod-template-hash"],
                            },
                        ],
                        Tolerations = spec.Tolerations,
                        NodeSelector = spec.NodeSelector,
                        SecurityContext = new V1PodSecurityContext
                        {
                            RunAsNonRoot = true,
                            SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
                        },
                        AutomountServiceAccountToken = false,
                        TerminationGracePeriodSeconds = spec.Timeout.Value + 5,
                        Volumes =
                        [
                            new V1Volume { Name = "cache", EmptyDir = new V1EmptyDirVolumeSource() },
                            new V1Volume { Name = "tmp", EmptyDir = new V1EmptyDirVolumeSource { SizeLimit = new ResourceQuantity("64Mi") } },
                        ],
                    },
                },
            },
        };
    }

    private static V1Probe Probe(string path, int periodSeconds, int failureThreshold) => new()
    {
        HttpGet = new V1HTTPGetAction { Path = path, Port = HttpPortName },
        PeriodSeconds = periodSeconds,
        FailureThreshold = failureThreshold,
        TimeoutSeconds = 2,
    };

    /// <summary>The user's affinity verbatim, with a preferred anti-affinity across nodes added unless it gives its own pod anti-affinity.</summary>
    private static V1Affinity SpreadAffinity(V1Affinity? affinity, Dictionary<string, string> selector)
    {
        var result = affinity is null ? new V1Affinity() : KubernetesJson.Deserialize<V1Affinity>(KubernetesJson.Serialize(affinity));
        result.PodAntiAffinity ??= new V1PodAntiAffinity
        {
            PreferredDuringSchedulingIgnoredDuringExecution =
            [
                new V1WeightedPodAffinityTerm
                {
                    Weight = 100,
                    PodAffinityTerm = new V1PodAffinityTerm
                    {
                        TopologyKey = "kubernetes.io/hostname",
                        LabelSelector = new V1LabelSelector { MatchLabels = new Dictionary<string, string>(selector, StringComparer.Ordinal) },
                    },
                },
            ],
        };
        return result;
    }

    private static V2MetricSpec Metric(AutoscalingSpec autoscaling) => autoscaling.Metric == AutoscalingSpec.Rps
        ? new V2MetricSpec
        {
            Type = "Pods",
            Pods = new V2PodsMetricSource
            {
                Metric = new V2MetricIdentifier { Name = RequestsPerSecondMetric },
                Target = new V2MetricTarget { Type = "AverageValue", AverageValue = new ResourceQuantity(autoscaling.Target!.Value.ToString(CultureInfo.InvariantCulture)) },
            },
        }
        : new V2MetricSpec
        {
            Type = "Resource",
            Resource = new V2ResourceMetricSource
            {
                Name = "cpu",
                Target = new V2MetricTarget { Type = "Utilization", AverageUtilization = autoscaling.Target },
            },
        };
}
