namespace Capstan.Core.ControlPlane;

/// <summary>Settings of <see cref="TrainJobReconciler"/>.</summary>
public sealed class TrainJobReconcilerOptions
{
    /// <summary>The server's own URL, read on every submit (a server learns its port only once it listens); null when there is none.</summary>
    public Func<Uri?> ServerUrl { get; set; } = () => null;

    /// <summary>The wait before the first retry; each further retry waits twice as long as the one before.</summary>
    public TimeSpan BackoffBase { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between attempts.</summary>
    public TimeSpan BackoffCap { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The wait before attempt <paramref name="nextAttempt"/> (2 for the first retry): base, 2×base, 4×base… capped.</summary>
    public TimeSpan Backoff(int nextAttempt)
    {
        var doublings = Math.Clamp(nextAttempt - 2, 0, 30);
        var ticks = BackoffBase.Ticks * Math.Pow(2, doublings);
        return ticks >= BackoffCap.Ticks ? BackoffCap : TimeSpan.FromTicks((long)ticks);
    }
}
