using Capstan.Core.Storage;
using Capstan.Runtime.Kubernetes.Rendering;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>How <c>capstan operator</c> runs: what it watches, how replicas elect a leader, how it retries.</summary>
public sealed record OperatorOptions
{
    /// <summary>Watch only this namespace; every namespace when null (the cluster-wide install).</summary>
    public string? Namespace { get; init; }

    /// <summary>This replica's name in the Lease; the pod name on a cluster.</summary>
    public string Identity { get; init; } = $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Elect one active replica through a <c>coordination.k8s.io/v1</c> Lease; off runs the controllers at once.</summary>
    public bool LeaderElection { get; init; } = true;

    public string LeaseName { get; init; } = "capstan-operator";

    public string LeaseNamespace { get; init; } = "capstan-system";

    /// <summary>How long a standby waits after the leader's last renewal before taking over (client-go's default 15 s).</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long the leader keeps trying to renew before it gives up leading (10 s).</summary>
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often candidates try to acquire and the leader renews (2 s).</summary>
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Reconciles running at once per controller.</summary>
    public int Workers { get; init; } = 2;

    public int QueueCapacity { get; init; } = 1024;

    /// <summary>The first backoff of a failed reconcile; it doubles per failure of the same key up to <see cref="RetryMaxDelay"/>.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(50);

    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How often an Experiment with early stopping reads its running trials' logs (metrics come with no watch event).</summary>
    public TimeSpan ExperimentPollInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The pause before a failed list or watch is tried again.</summary>
    public TimeSpan WatchRetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>What the renderer needs to know about the cluster (gang scheduler, images, the Capstan API URL).</summary>
    public RenderOptions Render { get; init; } = RenderOptions.Default;

    /// <summary>
    /// The tracking store (the Capstan API) where each TrainJob gets its run before its Job is created, as locally: the
    /// pods log into it through <c>MLFLOW_RUN_ID</c>, and the run ends FINISHED or FAILED with the TrainJob. Null: no runs.
    /// </summary>
    public IMetadataStore? Tracking { get; init; }

    /// <summary>Where the controllers count their reconcile passes and queue depths; null counts nothing.</summary>
    public OperatorMetrics? Metrics { get; init; }
}
