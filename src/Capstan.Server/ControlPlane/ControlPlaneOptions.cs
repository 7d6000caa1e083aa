namespace Capstan.Server.ControlPlane;

/// <summary>How the control plane's loop runs.</summary>
public sealed class ControlPlaneOptions
{
    /// <summary>Keys the work queue holds before the watches wait.</summary>
    public int QueueCapacity { get; set; } = 4096;

    /// <summary>Reconcile passes run at once (each on a different job).</summary>
    public int Workers { get; set; } = 2;

    /// <summary>How often due backoff timers are checked.</summary>
    public TimeSpan TimerInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How often every unfinished job is reconciled again, in case an event was missed.</summary>
    public TimeSpan ResyncInterval { get; set; } = TimeSpan.FromSeconds(30);
}
