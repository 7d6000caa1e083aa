using System.Threading.Channels;

namespace Capstan.Server.ControlPlane;

/// <summary>
/// Job keys waiting for a reconcile pass, as client-go's work queue keeps them: a key waits at most once, and a key
/// added while a worker holds it is handed out again only after that worker is done, so one job is never reconciled
/// by two workers at once. Bounded: a writer waits when it is full (a burst of watch events slows the watch, nothing is dropped).
/// </summary>
internal sealed class ReconcileQueue
{
    private readonly Channel<string> _keys;
    private readonly Lock _gate = new();
    private readonly HashSet<string> _waiting = new(StringComparer.Ordinal);
    private readonly HashSet<string> _processing = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirty = new(StringComparer.Ordinal);

    public ReconcileQueue(int capacity)
    {
        _keys = Channel.CreateBounded<string>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = false,
            SingleWriter = false,
        });
    }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _waiting.Count;
            }
        }
    }

    public ValueTask AddAsync(string key, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_processing.Contains(key))
            {
                _dirty.Add(key);
                return ValueTask.CompletedTask;
            }

            if (!_waiting.Add(key))
            {
                return ValueTask.CompletedTask;
            }
        }

        return _keys.Writer.WriteAsync(key, cancellationToken);
    }

    /// <summary>The next key, now held by the caller until <see cref="DoneAsync"/>.</summary>
    public async ValueTask<string> TakeAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var key = await _keys.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                _waiting.Remove(key);
                if (_processing.Add(key))
                {
                    return key;
                }

                _dirty.Add(key);
            }
        }
    }

    public ValueTask DoneAsync(string key, CancellationToken cancellationToken)
    {
        bool again;
        lock (_gate)
        {
            _processing.Remove(key);
            again = _dirty.Remove(key);
        }

        return again ? AddAsync(key, cancellationToken) : ValueTask.CompletedTask;
    }
}
