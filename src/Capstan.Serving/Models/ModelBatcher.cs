using System.Diagnostics;
using Capstan.Serving.Inference;
using Capstan.Serving.Metrics;
using Microsoft.ML.OnnxRuntime;
using Prometheus;

namespace Capstan.Serving.Models;

/// <summary>
/// The request queue of one model version, admitting at most <see cref="ModelOptions.QueueCapacity"/>
/// requests waiting or running (a full queue fails fast with 429 instead of growing).
/// Without batching a request runs on its own thread. With batching one runner at a time owns the
/// session: a request that finds the model and the thread pool idle runs at once on its own thread
/// (no hand-off, so no added latency at concurrency 1); requests that arrive while a run is busy or
/// the server is saturated queue, and a
/// thread-pool runner drains the queue in batches of up to <see cref="ModelOptions.MaxBatchSize"/>
/// rows, each batch one ONNX run. <see cref="ModelOptions.MaxLatency"/> lets a batch of two or
/// more wait for stragglers; a lone request never waits.
/// </summary>
internal sealed class ModelBatcher : IThreadPoolWorkItem
{
    private readonly LoadedModel _model;
    private readonly Histogram.Child _batchSize;
    private readonly Gauge.Child _queueDepth;
    private readonly bool _batching;
    private readonly int _maxRows;
    private readonly long _maxLatencyTicks;

    // Guards the queue and the runner flag; Monitor (not Lock) so a runner can wait for stragglers.
    private readonly object _gate = new();
    private readonly Queue<PendingInference> _queue = new();
    private readonly List<PendingInference> _batch = [];
    private readonly List<InferRequest> _requests = [];
    private readonly List<PendingInference> _dropped = [];

    // The runner's own RunOptions, so a request that overruns its timeout can terminate its run without touching others.
    private readonly RunOptions? _runOptions;
    private readonly Timer? _watchdog;
    private readonly object _watchGate = new();
    private bool _watchdogArmed;
    private bool _watchdogFired;
    private bool _running;
    private bool _waitingForMore;
    private int _inFlight;

    public ModelBatcher(LoadedModel model, ServingMetrics metrics)
    {
        _model = model;
        _batchSize = metrics.BatchSize.WithLabels(model.Metadata.Name, model.Metadata.Version);
        _queueDepth = metrics.QueueDepth.WithLabels(model.Metadata.Name, model.Metadata.Version);
        _batching = model.CanBatch;
        _maxRows = model.Options.MaxBatchSize;
        _maxLatencyTicks = (long)(model.Options.MaxLatency.TotalSeconds * Stopwatch.Frequency);
        if (_batching)
        {
            _runOptions = new RunOptions();
            _watchdog = new Timer(static state => ((ModelBatcher)state!).Overrun(), this, Timeout.Infinite, Timeout.Infinite);
        }
    }

    /// <summary>Called once the last reference is gone: nothing is queued or running any more.</summary>
    public void Complete()
    {
        _watchdog?.Dispose();
        _runOptions?.Dispose();
    }

    public Task<InferResponse> InferAsync(InferRequest request, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _inFlight) > _model.Options.QueueCapacity)
        {
            Interlocked.Decrement(ref _inFlight);
            throw new InferenceException(InferenceErrorKind.QueueFull, $"Model '{_model.Metadata.Name}' version {_model.Metadata.Version} has {_model.Options.QueueCapacity} requests queued; retry later.");
        }

        _queueDepth.Inc();
        if (!_batching)
        {
            try
            {
                var response = _model.Run([request], _model.SharedRunOptions)[0];
                _batchSize.Observe(request.Rows);
                return Task.FromResult(response);
            }
            finally
            {
                Leave();
            }
        }

        PendingInference? pending = null;
        var startRunner = false;
        lock (_gate)
        {
            // Idle model and idle server: run now. When the thread pool has work waiting (the server
            // is saturated), queue instead: requests gather while the runner waits its turn, and one
            // run for many saves more CPU than the hand-off costs.
            if (!_running && _queue.Count == 0 && ThreadPool.PendingWorkItemCount == 0)
            {
                _running = true;
            }
            else
            {
                // The queued item holds its own reference, so a timed-out caller cannot let the session go under it.
                _model.TryAcquire();
                pending = new PendingInference(request, request.Rows);
                _queue.Enqueue(pending);
                if (!_running)
                {
                    _running = startRunner = true;
                }
                else if (_waitingForMore)
                {
                    Monitor.Pulse(_gate);
                }
            }
        }

        if (pending is null)
        {
            return Task.FromResult(RunAlone(request));
        }

        if (startRunner)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        return WaitAsync(pending, cancellationToken);
    }

    /// <summary>The model was idle: run this request now on the caller's thread, bounded by the request timeout.</summary>
    private InferResponse RunAlone(InferRequest request)
    {
        try
        {
            var response = RunWatched([request])[0];
            _batchSize.Observe(request.Rows);
            return response;
        }
        finally
        {
            bool handOff;
            lock (_gate)
            {
                handOff = _queue.Count > 0;
                _running = handOff;
            }

            if (handOff)
            {
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            }

            Leave();
        }
    }

    private async Task<InferResponse> WaitAsync(PendingInference pending, CancellationToken cancellationToken)
    {
        try
        {
            return await pending.Result.Task.WaitAsync(_model.Options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            pending.Abandon();
            throw TimedOut();
        }
        catch (OperationCanceledException)
        {
            pending.Abandon();
            throw;
        }
        finally
        {
            Leave();
        }
    }

    private void Leave()
    {
        _queueDepth.Dec();
        Interlocked.Decrement(ref _inFlight);
    }

    private InferenceException TimedOut() =>
        new(InferenceErrorKind.Timeout, $"Model '{_model.Metadata.Name}' did not answer within {_model.Options.RequestTimeout.TotalMilliseconds:0} ms.");

    /// <summary>The runner: drains the queue batch by batch, then gives the model back to the next caller.</summary>
    void IThreadPoolWorkItem.Execute()
    {
        while (true)
        {
            long rows;
            lock (_gate)
            {
                rows = FormBatch();
            }

            foreach (var dropped in _dropped)
            {
                Finish(dropped);
            }

            _dropped.Clear();
            if (_batch.Count == 0)
            {
                lock (_gate)
                {
                    // Only give the model up when nothing queued meanwhile; the next caller then finds it idle.
                    _running = _queue.Count > 0;
                    if (_running)
                    {
                        continue;
                    }
                }

                return;
            }

            _requests.Clear();
            foreach (var pending in _batch)
            {
                _requests.Add(pending.Request);
            }

            try
            {
                var responses = RunWatched(_requests);
                _batchSize.Observe(rows);
                for (var i = 0; i < _batch.Count; i++)
                {
                    _batch[i].Complete(responses[i]);
                }
            }
            catch (Exception ex)
            {
                foreach (var pending in _batch)
                {
                    pending.Result.TrySetException(ex);
                }
            }

            foreach (var pending in _batch)
            {
                Finish(pending);
            }

            _batch.Clear();
        }
    }

    /// <summary>Under the gate: takes queued requests of one trailing shape up to the row limit; abandoned ones go to <see cref="_dropped"/>.</summary>
    private long FormBatch()
    {
        long rows = 0;
        var deadline = 0L;
        while (rows < _maxRows)
        {
            if (_queue.TryPeek(out var next))
            {
                if (next.IsAbandoned)
                {
                    _dropped.Add(_queue.Dequeue());
                    continue;
                }

                // The head that does not fit starts the next batch.
                if (_batch.Count > 0 && (rows + next.Rows > _maxRows || !SameTrailingShapes(_batch[0].Request, next.Request)))
                {
                    break;
                }

                _batch.Add(_queue.Dequeue());
                rows += next.Rows;
                continue;
            }

            // Nothing more queued: a lone request goes now; a batch of two or more may wait for stragglers.
            if (_batch.Count < 2 || _maxLatencyTicks <= 0)
            {
                break;
            }

            if (deadline == 0)
            {
                deadline = Stopwatch.GetTimestamp() + _maxLatencyTicks;
            }

            var remaining = deadline - Stopwatch.GetTimestamp();
            if (remaining <= 0)
            {
                break;
            }

            _waitingForMore = true;
            Monitor.Wait(_gate, TimeSpan.FromSeconds((double)remaining / Stopwatch.Frequency));
            _waitingForMore = false;
        }

        return rows;
    }

    /// <summary>Runs with the request timeout as a watchdog: an overrun sets ONNX Runtime's terminate flag and the run fails as a timeout,
    /// as does a run that finished after its deadline.</summary>
    private InferResponse[] RunWatched(IReadOnlyList<InferRequest> requests)
    {
        lock (_watchGate)
        {
            _watchdogArmed = true;
        }

        var started = Stopwatch.GetTimestamp();
        _watchdog!.Change(_model.Options.RequestTimeout, Timeout.InfiniteTimeSpan);
        try
        {
            var responses = _model.Run(requests, _runOptions!);

            // The watchdog is a timer callback and can come late on a busy machine; the deadline is the deadline.
            if (Stopwatch.GetElapsedTime(started) > _model.Options.RequestTimeout)
            {
                throw TimedOut();
            }

            return responses;
        }
        catch (InferenceException) when (Volatile.Read(ref _watchdogFired))
        {
            throw TimedOut();
        }
        finally
        {
            _watchdog.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            lock (_watchGate)
            {
                _watchdogArmed = false;
                if (_watchdogFired)
                {
                    _runOptions!.Terminate = false;
                    _watchdogFired = false;
                }
            }
        }
    }

    private void Overrun()
    {
        lock (_watchGate)
        {
            if (_watchdogArmed)
            {
                _watchdogFired = true;
                _runOptions!.Terminate = true;
            }
        }
    }

    private void Finish(PendingInference pending)
    {
        if (pending.IsAbandoned)
        {
            pending.Request.ReleaseFromQueue();
        }

        _model.Release();
    }

    private static bool SameTrailingShapes(InferRequest a, InferRequest b)
    {
        foreach (var input in a.Inputs)
        {
            var other = InferRequest.FindInput(b.Inputs, input.Name);
            if (other is null || !input.Shape.AsSpan(1).SequenceEqual(other.Shape.AsSpan(1)))
            {
                return false;
            }
        }

        return true;
    }

    private sealed class PendingInference(InferRequest request, long rows)
    {
        private int _abandoned;

        public InferRequest Request { get; } = request;

        public long Rows { get; } = rows;

        public TaskCompletionSource<InferResponse> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool IsAbandoned => Volatile.Read(ref _abandoned) == 1;

        public void Abandon()
        {
            Request.HandToQueue();
            Interlocked.Exchange(ref _abandoned, 1);
            if (Result.Task.IsCompletedSuccessfully)
            {
                Result.Task.Result.Dispose();
            }
        }

        public void Complete(InferResponse response)
        {
            Result.TrySetResult(response);
            if (IsAbandoned)
            {
                response.Dispose();
            }
        }
    }
}
