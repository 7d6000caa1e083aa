using k8s.Models;

namespace Capstan.Core.Resources;

/// <summary>
/// A served model, as KServe's InferenceService: a model reference (a registry alias follows the alias as it moves),
/// an optional canary version taking a share of the traffic, replicas or autoscaling, batching and the pod fields
/// Kubernetes already has. Locally it runs as one <c>capstan serve</c> process on a free loopback port; on Kubernetes
/// it becomes a Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget and an HTTPRoute.
/// </summary>
public sealed class InferenceService : Resource<InferenceServiceSpec, InferenceServiceStatus>
{
    public const string KindName = "InferenceService";

    public InferenceService()
    {
        Kind = KindName;
    }

    public override void ApplyDefaults()
    {
        base.ApplyDefaults();
        var spec = Spec;
        spec.ModelName ??= Metadata.Name;
        spec.Replicas ??= 1;
        spec.Port ??= InferenceServiceSpec.DefaultPort;
        spec.GrpcPort ??= InferenceServiceSpec.DefaultGrpcPort;
        spec.Timeout ??= InferenceServiceSpec.DefaultTimeoutSeconds;
        if (spec.Autoscaling is { } autoscaling)
        {
            autoscaling.MinReplicas ??= spec.Replicas;
            autoscaling.Metric ??= AutoscalingSpec.Cpu;
            autoscaling.Target ??= autoscaling.Metric == AutoscalingSpec.Rps ? AutoscalingSpec.DefaultRpsTarget : AutoscalingSpec.DefaultCpuTarget;
        }

        if (spec.Batching is { } batching)
        {
            batching.MaxBatchSize ??= BatchingSpec.DefaultMaxBatchSize;
            batching.MaxLatency ??= BatchingSpec.DefaultMaxLatencyMilliseconds;
        }
    }

    public override void Validate(ResourceValidation validation)
    {
        base.Validate(validation);
        InferenceServiceValidation.Validate(Spec, validation);
    }
}

public sealed class InferenceServiceSpec
{
    public const int DefaultPort = 8080;
    public const int DefaultGrpcPort = 8081;
    public const int DefaultTimeoutSeconds = 30;

    /// <summary>What to serve: <c>models:/name@alias</c> (follows the alias), <c>models:/name/3</c>, or a path or URI of an .onnx file.</summary>
    public string? Model { get; set; }

    /// <summary>The name clients use in <c>/v2/models/{name}</c>; default the resource's name, as KServe does.</summary>
    public string? ModelName { get; set; }

    /// <summary>A second version under the same name that gets <see cref="CanarySpec.TrafficPercent"/> of the requests.</summary>
    public CanarySpec? Canary { get; set; }

    /// <summary>Serving processes (pods); default 1. With <see cref="Autoscaling"/>, the starting count.</summary>
    public int? Replicas { get; set; }

    public AutoscalingSpec? Autoscaling { get; set; }

    /// <summary>Dynamic batching; absent, every request runs on its own.</summary>
    public BatchingSpec? Batching { get; set; }

    /// <summary>Seconds a request may wait for its result before it is answered 503; default 30.</summary>
    public int? Timeout { get; set; }

    /// <summary>The REST (and /metrics) container port on Kubernetes, default 8080. Locally the server takes a free loopback port and <c>status.url</c> says which.</summary>
    public int? Port { get; set; }

    /// <summary>The gRPC (h2c) container port on Kubernetes, default 8081; locally a free loopback port.</summary>
    public int? GrpcPort { get; set; }

    /// <summary>Container image on Kubernetes; default the Capstan serving image of the install. Locally the server is this program.</summary>
    public string? Image { get; set; }

    public V1ResourceRequirements? Resources { get; set; }

    public IList<V1EnvVar>? Env { get; set; }

    public IList<V1EnvFromSource>? EnvFrom { get; set; }

    public V1Affinity? Affinity { get; set; }

    public IList<V1Toleration>? Tolerations { get; set; }

    public IDictionary<string, string>? NodeSelector { get; set; }
}

/// <summary>KServe's <c>canaryTrafficPercent</c> with the version it applies to.</summary>
public sealed class CanarySpec
{
    /// <summary>The canary version: <c>models:/name/4</c>, <c>models:/name@challenger</c> or a file.</summary>
    public string? Model { get; set; }

    /// <summary>Share of requests without an explicit version that go to the canary, 0 to 100.</summary>
    public int? TrafficPercent { get; set; }
}

/// <summary>A HorizontalPodAutoscaler (autoscaling/v2) on Kubernetes; locally one process serves.</summary>
public sealed class AutoscalingSpec
{
    public const string Cpu = "cpu";
    public const string Rps = "rps";
    public const int DefaultCpuTarget = 80;
    public const int DefaultRpsTarget = 100;

    internal static readonly string[] Metrics = [Cpu, Rps];

    /// <summary>Default <see cref="InferenceServiceSpec.Replicas"/>.</summary>
    public int? MinReplicas { get; set; }

    public int? MaxReplicas { get; set; }

    /// <summary><c>cpu</c> (average utilization of the CPU request) or <c>rps</c> (requests per second per replica); default cpu.</summary>
    public string? Metric { get; set; }

    /// <summary>The value to hold the metric at: percent of the CPU request (default 80) or requests per second per replica (default 100).</summary>
    public int? Target { get; set; }
}

/// <summary>KServe's batcher: requests that arrive together run as one ONNX Runtime call.</summary>
public sealed class BatchingSpec
{
    public const int DefaultMaxBatchSize = 32;
    public const int DefaultMaxLatencyMilliseconds = 5;

    /// <summary>Rows one batched run may hold; default 32.</summary>
    public int? MaxBatchSize { get; set; }

    /// <summary>Milliseconds a forming batch of two or more may wait for more; a lone request never waits. Default 5.</summary>
    public int? MaxLatency { get; set; }
}

public sealed class InferenceServiceStatus : ResourceStatus
{
    public InferenceServicePhase? Phase { get; set; }

    /// <summary>The REST base URL: <c>{url}/v2/models/{modelName}/infer</c>.</summary>
    public string? Url { get; set; }

    /// <summary>The gRPC (h2c) address, <c>host:port</c>.</summary>
    public string? GrpcAddress { get; set; }

    public string? ModelName { get; set; }

    /// <summary>The versions served and the share of requests each gets, as resolved from the references.</summary>
    public IList<TrafficTarget>? Traffic { get; set; }

    /// <summary>The workload that runs the server (locally a process); kept so a restarted control plane adopts it.</summary>
    public string? WorkloadId { get; set; }
}

/// <summary>One served version and its share, as KServe's <c>status.components.predictor.traffic</c>.</summary>
public sealed class TrafficTarget
{
    /// <summary><c>default</c> or <c>canary</c>.</summary>
    public string? Tag { get; set; }

    /// <summary>The reference it was resolved from (<c>models:/iris@champion</c>).</summary>
    public string? Model { get; set; }

    /// <summary>The version served under the model name.</summary>
    public string? Version { get; set; }

    public int? Percent { get; set; }
}

public enum InferenceServicePhase
{
    /// <summary>Accepted; the server is not started yet.</summary>
    Pending,

    /// <summary>The server process runs and is loading its models.</summary>
    Starting,

    /// <summary>Answers <c>/v2/health/ready</c>; requests are served.</summary>
    Ready,

    /// <summary>The models could not be resolved or loaded, or the server exited.</summary>
    Failed,
}
