namespace Capstan.Runtime.Kubernetes.Rendering;

/// <summary>How the pods of a distributed TrainJob are admitted together.</summary>
public enum GangScheduler
{
    /// <summary>
    /// No gang scheduler: the default scheduler places the Job's pods one by one as capacity frees up. An Indexed
    /// Job that gets only part of its gang keeps the pods it got running and waiting at the rendezvous for the rest
    /// (until <c>activeDeadlineSeconds</c>, when set); two such jobs can hold each other's capacity.
    /// </summary>
    None,

    /// <summary>Kueue: the Job is created suspended with the <c>kueue.x-k8s.io/queue-name</c> label; Kueue unsuspends it when the whole gang's quota is admitted.</summary>
    Kueue,

    /// <summary>Volcano: a <c>scheduling.volcano.sh/v1beta1</c> PodGroup with <c>minMember</c> = replicas; the pods use the <c>volcano</c> scheduler.</summary>
    Volcano,
}

/// <summary>What the renderer needs to know about the cluster and the install that a resource does not say.</summary>
public sealed record RenderOptions
{
    /// <summary>The tag of the images built from deploy/docker/ by this version.</summary>
    public const string ImageTag = "0.1.0";

    public const string DefaultTrainerImage = "ghcr.io/capstan-dev/capstan:" + ImageTag;
    public const string DefaultServingImage = "ghcr.io/capstan-dev/capstan-serving:" + ImageTag;

    /// <summary>The in-cluster URL of the API server deploy/kubernetes installs (Service <c>capstan-api</c> in <c>capstan-system</c>).</summary>
    public const string DefaultApiUrl = "http://capstan-api.capstan-system.svc:5000";

    /// <summary>PyTorch's customary rendezvous port, as Kubeflow's PyTorchJob defaults it.</summary>
    public const int DefaultMasterPort = 23456;

    public static RenderOptions Default { get; } = new();

    /// <summary>Puts every object in this namespace instead of the resource's own (<c>capstan render -n</c>).</summary>
    public string? Namespace { get; init; }

    public GangScheduler GangScheduler { get; init; } = GangScheduler.None;

    /// <summary>The Kueue LocalQueue a TrainJob is submitted to with <see cref="GangScheduler.Kueue"/>.</summary>
    public string KueueQueue { get; init; } = "default";

    /// <summary>The Volcano queue a TrainJob's PodGroup joins with <see cref="GangScheduler.Volcano"/>.</summary>
    public string VolcanoQueue { get; init; } = "default";

    /// <summary>
    /// The cluster serves the Gateway API (gateway.networking.k8s.io/v1): a canary is split by weight through an
    /// HTTPRoute attached to <see cref="GatewayName"/>. Without it the split is by the ratio of replicas behind one Service.
    /// </summary>
    public bool GatewayApi { get; init; }

    /// <summary>The Gateway an InferenceService's HTTPRoute attaches to (in <see cref="GatewayNamespace"/>, default the route's own).</summary>
    public string GatewayName { get; init; } = "capstan";

    public string? GatewayNamespace { get; init; }

    /// <summary>The image of a TrainJob without <c>spec.image</c>: the Capstan image, which holds the <c>capstan</c> CLI and examples/.</summary>
    public string TrainerImage { get; init; } = DefaultTrainerImage;

    /// <summary>The image of the inference server.</summary>
    public string ServingImage { get; init; } = DefaultServingImage;

    /// <summary>The Capstan API the pods report to, as <c>CAPSTAN_URL</c> and <c>MLFLOW_TRACKING_URI</c>.</summary>
    public string ApiUrl { get; init; } = DefaultApiUrl;

    public int MasterPort { get; init; } = DefaultMasterPort;

    /// <summary>The tracking run the TrainJob logs into, when the operator has created it: <c>CAPSTAN_RUN_ID</c>, <c>MLFLOW_RUN_ID</c>.</summary>
    public string? RunId { get; init; }

    /// <summary>The tracking experiment of <see cref="RunId"/>: <c>MLFLOW_EXPERIMENT_ID</c>.</summary>
    public string? ExperimentId { get; init; }
}
