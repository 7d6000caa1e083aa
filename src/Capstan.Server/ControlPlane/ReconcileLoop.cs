using Capstan.Core;
using System.Diagnostics;
using Capstan.Core.ControlPlane;
using Capstan.Server.Metrics;
using Capstan.Shared;

namespace Capstan.Server.ControlPlane;

/// <summary>
/// One kind's work loop, shaped as a Kubernetes controller's: watches add keys to a <see cref="ReconcileQueue"/>, workers
/// take each key through the reconciler (a deleted object first through its clean-up), and a requeue delay or a failure's
/// backoff (<see cref="FailureBackoff"/>) becomes a timer that adds the key again. An optional resync periodically adds
/// the keys of every object that is not finished, so nothing waits on an event that was never sent.
/// </summary>
/// <typeparam name="TDeleted">What a watch's Deleted event carries for the clean-up.</typeparam>
internal sealed class ReconcileLoop<TDeleted>(
    string kind,
    ControlPlaneOptions options,
    TimeProvider time,
    Func<string, CancellationToken, Task<ReconcileResult>> reconcile,
    Func<TDeleted, CancellationToken, Task> cleanUpDeleted,
    Action<string, Exception> reconcileFailed,
    Func<CancellationToken, Task<IEnumerable<string>>>? resync = null,
    ControlPlaneMetrics? metrics = null)
    where TDeleted : class
{
    private readonly ReconcileQueue _queue = new(options.QueueCapacity);
    private ReconcileCounters? _metrics;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, DateTimeOffset> _timers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TDeleted> _deleted = new(StringComparer.Ordinal);
    private readonly FailureBackoff _failures = new();

    public ValueTask AddAsync(string key, CancellationToken cancellationToken) => _queue.AddAsync(key, cancellationToken);

    /// <summary>The object behind <paramref name="key"/> was deleted: its clean-up runs before the key's next pass.</summary>
    public ValueTask DeletedAsync(string key, TDeleted deleted, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _deleted[key] = deleted;
        }

        return _queue.AddAsync(key, cancellationToken);
    }

    /// <summary>The timer loop and <paramref name="workers"/> workers; they end when <paramref name="cancellationToken"/> is cancelled.</summary>
    public IEnumerable<Task> Run(int workers, CancellationToken cancellationToken)
    {
        _metrics = metrics?.ForKind(kind, () => _queue.Count);
        yield return TimersAsync(cancellationToken);
        for (var i = 0; i < Math.Max(1, workers); i++)
        {
            yield return WorkAsync(cancellationToken);
        }
    }

    private async Task TimersAsync(CancellationToken cancellationToken)
    {
        var nextResync = time.GetUtcNow() + options.ResyncInterval;
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(options.TimerInterval, time, cancellationToken).ConfigureAwait(false);
            var now = time.GetUtcNow();
            List<string> due;
            lock (_gate)
            {
                due = [.. _timers.Where(t => t.Value <= now).Select(t => t.Key)];
                foreach (var key in due)
                {
                    _timers.Remove(key);
                }
            }

            if (resync is not null && now >= nextResync)
            {
                nextResync = now + options.ResyncInterval;
                due.AddRange(await resync(cancellationToken).ConfigureAwait(false));
            }

            foreach (var key in due)
            {
                await _queue.AddAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task WorkAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var key = await _queue.TakeAsync(cancellationToken).ConfigureAwait(false);
            var started = Stopwatch.GetTimestamp();

            // A span per pass only when a tracer listens; each pass is its own trace.
            using var activity = ControlPlaneActivity.Source.HasListeners() ? ControlPlaneActivity.Source.StartActivity($"reconcile {kind}", ActivityKind.Internal, parentContext: default) : null;
            activity?.SetTag("capstan.kind", kind).SetTag("capstan.key", key);
            try
            {
                TDeleted? deleted;
                lock (_gate)
                {
                    _deleted.Remove(key, out deleted);
                }

                if (deleted is not null)
                {
                    await cleanUpDeleted(deleted, cancellationToken).ConfigureAwait(false);
                }

                var result = await reconcile(key, cancellationToken).ConfigureAwait(false);
                _metrics?.Succeeded(Stopwatch.GetElapsedTime(started).TotalSeconds, result.RequeueAfter is not null);
                activity?.SetTag("capstan.result", result.RequeueAfter is null ? "success" : "requeue_after");
                _failures.Succeeded(key);
                if (result.RequeueAfter is { } delay)
                {
                    Schedule(key, delay);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                // Conflicts (someone wrote the object meanwhile), a busy or broken store, a bug in one object's pass: the
                // key is tried again with exponential backoff, as Kubernetes controllers' rate-limited queues do, and the
                // other keys and the server carry on. A conflict is routine and not logged.
                var conflict = e is CapstanException { Code: ErrorCode.Conflict };
                _metrics?.Failed(Stopwatch.GetElapsedTime(started).TotalSeconds, conflict);
                activity?.SetTag("capstan.result", conflict ? "conflict" : "error").SetStatus(ActivityStatusCode.Error, e.Message);
                if (!conflict)
                {
                    reconcileFailed(key, e);
                }

                Schedule(key, _failures.Failed(key));
            }
            finally
            {
                await _queue.DoneAsync(key, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void Schedule(string key, TimeSpan delay)
    {
        var due = time.GetUtcNow() + delay;
        lock (_gate)
        {
            if (!_timers.TryGetValue(key, out var existing) || due < existing)
            {
                _timers[key] = due;
            }
        }
    }
}
