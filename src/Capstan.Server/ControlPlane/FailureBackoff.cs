namespace Capstan.Server.ControlPlane;

/// <summary>
/// Per-key exponential backoff for failed reconcile passes, as Kubernetes' rate-limited work queues do: 200 ms after the
/// first failure, doubling up to 30 s, forgotten on the key's next successful pass. Whatever failed, the key is tried
/// again and the other keys and the server carry on.
/// </summary>
internal sealed class FailureBackoff
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, int> _failures = new(StringComparer.Ordinal);

    /// <summary>Counts a failed pass of <paramref name="key"/>; returns how long to wait before the next one.</summary>
    public TimeSpan Failed(string key)
    {
        int failures;
        lock (_gate)
        {
            failures = _failures[key] = _failures.GetValueOrDefault(key) + 1;
        }

        return TimeSpan.FromMilliseconds(Math.Min(30_000, 200 * Math.Pow(2, Math.Clamp(failures - 1, 0, 20))));
    }

    public void Succeeded(string key)
    {
        lock (_gate)
        {
            _failures.Remove(key);
        }
    }
}
