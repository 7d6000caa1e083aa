using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Capstan.Core;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;

namespace Capstan.Client;

/// <summary>
/// Logs a run's metrics, params and tags from training code without ever blocking it: each call
/// only enqueues, and a background loop drains the queue into <see cref="IMetadataStore.LogBatchAsync"/>
/// calls that respect MLflow's log-batch limits. Works against the embedded store or a
/// <see cref="CapstanClient"/> alike.
/// </summary>
/// <remarks>
/// <para>
/// Buffering: the queue is an <em>unbounded, counted</em> channel. A bounded channel would have to
/// either block the training loop when full (unacceptable: the caller must never wait on the network)
/// or drop points (unacceptable for metrics: a learning curve with holes is wrong, not degraded).
/// So the bound is memory; <see cref="PendingCount"/> tells how far the writer is behind, and a
/// point costs ~60 bytes, so even a million points waiting is ~60 MB while the store catches up.
/// </para>
/// <para>
/// Errors: a failed batch is not retried forever and not swallowed; the exception is kept and
/// thrown from the next <see cref="FlushAsync"/> or from <see cref="DisposeAsync"/>.
/// </para>
/// </remarks>
public sealed class RunLogger : IAsyncDisposable
{
    private const int TransientRetries = 3;

    private readonly IMetadataStore _store;
    private readonly TimeProvider _time;
    private readonly Channel<Entry> _queue = Channel.CreateUnbounded<Entry>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = false, AllowSynchronousContinuations = false });
    private readonly List<Exception> _failures = [];
    private readonly Lock _failuresLock = new();
    private readonly Task _loop;
    private long _pending;
    private long _written;
    private int _disposed;

    public RunLogger(IMetadataStore store, string runId, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(runId);
        _store = store;
        RunId = runId;
        _time = time ?? TimeProvider.System;
        _loop = ExecuteAsync();
    }

    public string RunId { get; }

    /// <summary>Items logged but not yet written to the store.</summary>
    public long PendingCount => Interlocked.Read(ref _pending);

    /// <summary>Items the store has acknowledged.</summary>
    public long WrittenCount => Interlocked.Read(ref _written);

    public void LogMetric(string key, double value, long step = 0, long? timestamp = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        Enqueue(new Entry(EntryKind.Metric, key, null, new Metric(key, value, timestamp ?? _time.GetUtcNow().ToUnixTimeMilliseconds(), step)));
    }

    public void LogParam(string key, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        Enqueue(new Entry(EntryKind.Param, key, value));
    }

    public void SetTag(string key, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        Enqueue(new Entry(EntryKind.Tag, key, value));
    }

    /// <summary>
    /// Waits until everything logged before this call is in the store, then throws what went
    /// wrong since the last flush, if anything did.
    /// </summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite(new Entry(EntryKind.Flush, string.Empty, null, Flushed: done)))
        {
            throw new ObjectDisposedException(nameof(RunLogger));
        }

        await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        ThrowFailures();
    }

    /// <summary>Writes everything still queued, stops the loop, and throws any failure not yet reported.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        ThrowFailures();
    }

    private void Enqueue(Entry entry)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        Interlocked.Increment(ref _pending);
        if (!_queue.Writer.TryWrite(entry))
        {
            Interlocked.Decrement(ref _pending);
            throw new ObjectDisposedException(nameof(RunLogger));
        }
    }

    private void ThrowFailures()
    {
        Exception[] failures;
        lock (_failuresLock)
        {
            failures = [.. _failures];
            _failures.Clear();
        }

        if (failures.Length == 1)
        {
            ExceptionDispatchInfo.Capture(failures[0]).Throw();
        }
        else if (failures.Length > 1)
        {
            throw new AggregateException($"{failures.Length} log batches for run {RunId} failed.", failures);
        }
    }

    /// <summary>The background loop: drain what is queued into batches until the writer completes.</summary>
    private async Task ExecuteAsync()
    {
        // Yield first so the constructor returns before any store call runs on the caller's thread.
        await Task.Yield();
        var batch = new BatchBuilder();
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            while (reader.TryRead(out var entry))
            {
                if (entry.Kind == EntryKind.Flush)
                {
                    await WriteAsync(batch).ConfigureAwait(false);
                    entry.Flushed!.TrySetResult();
                    continue;
                }

                if (!batch.TryAdd(entry))
                {
                    await WriteAsync(batch).ConfigureAwait(false);
                    batch.TryAdd(entry);
                }

                if (batch.IsFull)
                {
                    await WriteAsync(batch).ConfigureAwait(false);
                }
            }

            // The queue is momentarily empty: send what we have rather than wait for more.
            await WriteAsync(batch).ConfigureAwait(false);
        }
    }

    /// <remarks>
    /// Store calls run without a cancellation token on purpose: what was logged is written before
    /// Dispose returns, which is the promise the training code relies on.
    /// </remarks>
    private async Task WriteAsync(BatchBuilder batch)
    {
        if (batch.Consumed == 0)
        {
            return;
        }

        var count = batch.Consumed;
        var logBatch = batch.Build();
        batch.Clear();
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await _store.LogBatchAsync(RunId, logBatch, CancellationToken.None).ConfigureAwait(false);
                Interlocked.Add(ref _written, count);
                break;
            }
            catch (HttpRequestException) when (attempt < TransientRetries)
            {
                // A dropped connection is worth another try; the store rejecting the batch is not.
                await Task.Delay(TimeSpan.FromMilliseconds(200 * (attempt + 1)), _time).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                lock (_failuresLock)
                {
                    _failures.Add(ex);
                }

                break;
            }
        }

        Interlocked.Add(ref _pending, -count);
    }

    private enum EntryKind
    {
        Metric,
        Param,
        Tag,
        Flush,
    }

    private readonly record struct Entry(EntryKind Kind, string Key, string? Value, Metric Metric = default, TaskCompletionSource? Flushed = null);

    /// <summary>Collects entries up to <see cref="LogBatch"/>'s limits.</summary>
    private sealed class BatchBuilder
    {
        private readonly List<Metric> _metrics = [];
        private readonly Dictionary<string, string> _params = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _tags = new(StringComparer.Ordinal);

        public int Count => _metrics.Count + _params.Count + _tags.Count;

        /// <summary>Entries taken in, including repeats folded into one item.</summary>
        public int Consumed { get; private set; }

        public bool IsFull => Count >= LogBatch.MaxItems || _metrics.Count >= LogBatch.MaxMetrics;

        public bool TryAdd(Entry entry)
        {
            if (Count >= LogBatch.MaxItems)
            {
                return false;
            }

            switch (entry.Kind)
            {
                case EntryKind.Metric:
                    if (_metrics.Count >= LogBatch.MaxMetrics)
                    {
                        return false;
                    }

                    _metrics.Add(entry.Metric);
                    Consumed++;
                    return true;
                case EntryKind.Param:
                    if (_params.TryGetValue(entry.Key, out var existing))
                    {
                        // Same value again is a no-op; a different one goes in the next batch, where the
                        // store rejects it as params are write-once — and that error reaches the caller.
                        if (existing != entry.Value)
                        {
                            return false;
                        }

                        Consumed++;
                        return true;
                    }

                    if (_params.Count >= LogBatch.MaxParams)
                    {
                        return false;
                    }

                    _params[entry.Key] = entry.Value!;
                    Consumed++;
                    return true;
                case EntryKind.Tag:
                    if (!_tags.ContainsKey(entry.Key) && _tags.Count >= LogBatch.MaxTags)
                    {
                        return false;
                    }

                    // The last value of a tag wins, as it would have with separate calls.
                    _tags[entry.Key] = entry.Value!;
                    Consumed++;
                    return true;
                default:
                    throw new CapstanException(ErrorCode.Internal, $"Unexpected log entry {entry.Kind}.");
            }
        }

        public LogBatch Build() => new(
            _metrics.Count > 0 ? [.. _metrics] : null,
            _params.Count > 0 ? [.. _params.Select(p => new Param(p.Key, p.Value))] : null,
            _tags.Count > 0 ? [.. _tags.Select(t => new Tag(t.Key, t.Value))] : null);

        public void Clear()
        {
            _metrics.Clear();
            _params.Clear();
            _tags.Clear();
            Consumed = 0;
        }
    }
}
