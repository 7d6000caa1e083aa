using System.Diagnostics;
using System.Threading.Channels;
using Capstan.Serving.Inference;
using Capstan.Serving.Metrics;
using Prometheus;

namespace Capstan.Serving.Models;

/// <summary>
/// The request queue of one model version. Without batching a request runs on its own thread,
/// admitted while fewer than <see cref="ModelOptions.QueueCapacity"/> are in flight. With batching,
/// requests go through a bounded channel to one dispatch loop that runs whatever has queued as one
/// ONNX run: a lone request is dispatched at once, requests that arrive while a run is busy form the
/// next batch, and <see cref="ModelOptions.MaxLatency"/> lets a batch of two or more wait for more.
/// A full queue fails fast (429) instead of growing.
/// </summary>
internal sealed class ModelBatcher
{
    private readonly LoadedModel _model;
    private readonly Channel<PendingInference>? _channel;
    private readonly Task? _dispatcher;
    private readonly Histogram.Child _batchSize;
    private readonly Gauge.Child _queueDepth;
    private int _inFlight;

    public ModelBatcher(LoadedModel model, ServingMetrics metrics)
    {
        _model = model;
        _batchSize = metrics.BatchSize.WithLabels(model.Metadata.Name, model.Metadata.Version);
        _queueDepth = metrics.QueueDepth.WithLabels(model.Metadata.Name, model.Metadata.Version);
        if (model.CanBatch)
        {
            _channel = Channel.CreateBounded<PendingInference>(new BoundedChannelOptions(model.Options.QueueCapacity)
            {
                FullMode = BoundedChannelFullMode.Wait, // TryWrite then fails when full: the caller answers 429.
                SingleReader = true,
                SingleWriter = false,
            });
            _dispatcher = Task.Run(DispatchAsync);
        }
    }

    public void Complete() => _channel?.Writer.TryComplete();

    public async Task<InferResponse> InferAsync(InferRequest request, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _inFlight) > _model.Options.QueueCapacity)
        {
            Interlocked.Decrement(ref _inFlight);
            throw new InferenceException(InferenceErrorKind.QueueFull, $"Model '{_model.Metadata.Name}' version {_model.Metadata.Version} has {_model.Options.QueueCapacity} requests queued; retry later.");
        }

        _queueDepth.Inc();
        try
        {
            if (_channel is null)
            {
                var response = _model.Run([request])[0];
                _batchSize.Observe(RowsOf(request));
                return response;
            }

            // The queued item holds its own reference, so a timed-out caller cannot let the session go under it.
            _model.TryAcquire();
            var pending = new PendingInference(request, RowsOf(request));
            if (!_channel.Writer.TryWrite(pending))
            {
                _model.Release();
                throw new InferenceException(InferenceErrorKind.QueueFull, $"Model '{_model.Metadata.Name}' version {_model.Metadata.Version} has a full queue; retry later.");
            }

            try
            {
                return await pending.Result.Task.WaitAsync(_model.Options.RequestTimeout, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                pending.Abandon();
                throw new InferenceException(InferenceErrorKind.Timeout, $"Model '{_model.Metadata.Name}' did not answer within {_model.Options.RequestTimeout.TotalMilliseconds:0} ms.");
            }
            catch (OperationCanceledException)
            {
                pending.Abandon();
                throw;
            }
        }
        finally
        {
            _queueDepth.Dec();
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private static long RowsOf(InferRequest request) =>
        request.Inputs.Count > 0 && request.Inputs[0].Shape.Length > 0 ? request.Inputs[0].Shape[0] : 1;

    private async Task DispatchAsync()
    {
        var reader = _channel!.Reader;
        var batch = new List<PendingInference>();
        var requests = new List<InferRequest>();
        PendingInference? carried = null;
        var maxRows = _model.Options.MaxBatchSize;
        var maxLatencyTicks = (long)(_model.Options.MaxLatency.TotalSeconds * Stopwatch.Frequency);
        while (carried is not null || await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            long rows = 0;
            if (carried is not null)
            {
                batch.Add(carried);
                rows = carried.Rows;
                carried = null;
            }

            var deadline = 0L;
            while (rows < maxRows)
            {
                if (reader.TryRead(out var next))
                {
                    if (next.IsAbandoned)
                    {
                        Finish(next);
                        continue;
                    }

                    if (batch.Count > 0 && (rows + next.Rows > maxRows || !SameTrailingShapes(batch[0].Request, next.Request)))
                    {
                        carried = next;
                        break;
                    }

                    batch.Add(next);
                    rows += next.Rows;
                    continue;
                }

                // Nothing more queued: a lone request goes now; a batch of two or more may wait for stragglers.
                if (batch.Count < 2 || maxLatencyTicks <= 0)
                {
                    break;
                }

                if (deadline == 0)
                {
                    deadline = Stopwatch.GetTimestamp() + maxLatencyTicks;
                }

                var remaining = deadline - Stopwatch.GetTimestamp();
                if (remaining <= 0)
                {
                    break;
                }

                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds((double)remaining / Stopwatch.Frequency));
                try
                {
                    if (!await reader.WaitToReadAsync(wait.Token).ConfigureAwait(false))
                    {
                        break;
                    }
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            foreach (var pending in batch)
            {
                if (pending.IsAbandoned)
                {
                    Finish(pending);
                }
            }

            batch.RemoveAll(p => p.IsAbandoned);
            if (batch.Count == 0)
            {
                continue;
            }

            requests.Clear();
            foreach (var pending in batch)
            {
                requests.Add(pending.Request);
            }

            try
            {
                var responses = _model.Run(requests);
                _batchSize.Observe(rows);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Complete(responses[i]);
                }
            }
            catch (Exception ex)
            {
                foreach (var pending in batch)
                {
                    pending.Result.TrySetException(ex);
                }
            }

            foreach (var pending in batch)
            {
                Finish(pending);
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
            var other = b.Inputs.Find(t => t.Name == input.Name);
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
