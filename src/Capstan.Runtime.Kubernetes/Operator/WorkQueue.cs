using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using Capstan.Core;
using Capstan.Runtime.Kubernetes.Cluster;
using Capstan.Shared;
using k8s.Autorest;
using Microsoft.Extensions.Logging;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>
/// A controller's keys (<c>namespace/name</c>) waiting for a reconcile, as client-go's rate-limited work queue keeps
/// them: a key waits at most once however many events name it; a key added while a worker holds it is handed out again
/// only when that worker is done, so one object is never reconciled twice at once; a failed key comes back after a
/// per-key exponential backoff that <see cref="Forget"/> resets. Bounded: a writer waits while it is full, so a burst of
/// watch events slows the watch and drops nothing.
/// </summary>
public sealed class WorkQueue
{
    private readonly Channel<string> _keys;
    private readonly Lock _gate = new();
    private readonly HashSet<string> _waiting = new(StringComparer.Ordinal);
    private readonly HashSet<string> _processing = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirty = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _failures = new(StringComparer.Ordinal);
    private readonly PriorityQueue<string, DateTimeOffset> _delayed = new();
    private readonly SemaphoreSlim _delayAdded = new(0);
    private readonly TimeProvider _time;
    private readonly TimeSpan _baseDelay;
    private readonly TimeSpan _maxDelay;
    private ReconcileCounters? _counters;

    public WorkQueue(int capacity, TimeSpan baseDelay, TimeSpan maxDelay, TimeProvider? time = null)
    {
        _keys = Channel.CreateBounded<string>(new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.Wait });
        _baseDelay = baseDelay;
        _maxDelay = maxDelay;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Keys waiting for a worker (not those held by one, nor delayed ones): client-go's workqueue depth.</summary>
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

    /// <summary>Counts this queue's reconcile passes and depth under <paramref name="kind"/>; no-op without metrics.</summary>
    public void ReportTo(OperatorMetrics? metrics, string kind) => _counters = metrics?.ForKind(kind, () => Count);

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

    /// <summary>Adds the key once <paramref name="delay"/> has passed (an earlier add still counts).</summary>
    public void AddAfter(string key, TimeSpan delay)
    {
        lock (_gate)
        {
            _delayed.Enqueue(key, _time.GetUtcNow() + delay);
        }

        _delayAdded.Release();
    }

    /// <summary>Adds the key after its backoff: base × 2^(failures so far), at most the maximum.</summary>
    public TimeSpan AddRateLimited(string key)
    {
        TimeSpan delay;
        lock (_gate)
        {
            var failures = _failures.GetValueOrDefault(key);
            _failures[key] = failures + 1;
            var factor = Math.Pow(2, Math.Min(failures, 30));
            delay = TimeSpan.FromTicks((long)Math.Min(_maxDelay.Ticks, _baseDelay.Ticks * factor));
        }

        AddAfter(key, delay);
        return delay;
    }

    /// <summary>The key reconciled cleanly: its next failure starts the backoff afresh.</summary>
    public void Forget(string key)
    {
        lock (_gate)
        {
            _failures.Remove(key);
        }
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

    /// <summary>
    /// A controller's whole loop until cancelled: the watches that feed this queue, the timer for delayed keys and
    /// <paramref name="workers"/> workers (see <see cref="WorkAsync"/>); cancellation is a clean stop.
    /// </summary>
    public async Task RunAsync(IEnumerable<Task> watches, Func<string, CancellationToken, Task<TimeSpan?>> reconcile, int workers, ILogger logger, CancellationToken cancellationToken)
    {
        var loops = new List<Task>(watches) { RunDelaysAsync(cancellationToken) };
        for (var i = 0; i < Math.Max(1, workers); i++)
        {
            loops.Add(WorkAsync(reconcile, logger, cancellationToken));
        }

        try
        {
            await Task.WhenAll(loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping (or no longer the leader).
        }
    }

    /// <summary>
    /// One worker, until cancelled: takes a key, runs <paramref name="reconcile"/> on it and requeues it after the delay
    /// that returns, if any. A 409 (someone wrote the object between our read and our write) or an API, network or data
    /// error brings the key back after its backoff, logged; the other keys carry on.
    /// </summary>
    private async Task WorkAsync(Func<string, CancellationToken, Task<TimeSpan?>> reconcile, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reconcile);
        while (!cancellationToken.IsCancellationRequested)
        {
            var key = await TakeAsync(cancellationToken).ConfigureAwait(false);
            var started = Stopwatch.GetTimestamp();
            try
            {
                var after = await reconcile(key, cancellationToken).ConfigureAwait(false);
                _counters?.Succeeded(Stopwatch.GetElapsedTime(started).TotalSeconds, after is not null);
                if (after is { } delay)
                {
                    AddAfter(key, delay);
                }

                Forget(key);
            }
            catch (HttpOperationException e) when (CustomResources.IsConflict(e))
            {
                _counters?.Failed(Stopwatch.GetElapsedTime(started).TotalSeconds, isConflict: true);
                Log.ReconcileConflict(logger, key, AddRateLimited(key));
            }
            catch (Exception e) when (e is HttpOperationException or HttpRequestException or IOException or CapstanException or JsonException && !cancellationToken.IsCancellationRequested)
            {
                _counters?.Failed(Stopwatch.GetElapsedTime(started).TotalSeconds, isConflict: false);
                Log.ReconcileFailed(logger, key, AddRateLimited(key), e);
            }
            finally
            {
                await DoneAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Moves delayed keys into the queue when they fall due; runs until cancelled.</summary>
    public async Task RunDelaysAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var due = new List<string>();
            TimeSpan wait;
            lock (_gate)
            {
                var now = _time.GetUtcNow();
                while (_delayed.TryPeek(out var key, out var at) && at <= now)
                {
                    _delayed.Dequeue();
                    due.Add(key);
                }

                wait = _delayed.TryPeek(out _, out var next) ? next - now : Timeout.InfiniteTimeSpan;
            }

            foreach (var key in due)
            {
                await AddAsync(key, cancellationToken).ConfigureAwait(false);
            }

            if (due.Count == 0)
            {
                // Wakes when the earliest key falls due or an earlier one is added.
                await _delayAdded.WaitAsync(wait, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
