namespace Capstan.Core.ControlPlane;

/// <summary>Settings of <see cref="ExperimentReconciler"/>.</summary>
public sealed class ExperimentReconcilerOptions
{
    /// <summary>How long a succeeded trial's metrics may take to land in its run before the trial counts as MetricsUnavailable.</summary>
    public TimeSpan MetricsGracePeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often running trials are looked at for early stopping (metrics arrive without an event).</summary>
    public TimeSpan EarlyStoppingInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How many times a trial whose TrainJob was lost is run again before it counts as failed.</summary>
    public int MaxReruns { get; set; } = 3;
}
