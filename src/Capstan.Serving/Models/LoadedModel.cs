using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Capstan.Serving.Hosting;
using Capstan.Serving.Inference;
using Capstan.Serving.Metrics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Capstan.Serving.Models;

/// <summary>
/// One model version in memory: its ONNX Runtime session, metadata and request queue.
/// Reference counted: the repository holds one reference and every request holds one while it
/// runs, so a swapped-out version finishes its in-flight requests before its session is disposed.
/// </summary>
public sealed class LoadedModel
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly ModelBatcher _batcher;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly ServingMetrics _metrics;

    // Per output (by name): its shape with dimension 0 standing for the run's rows (-1) or fixed, when
    // ONNX Runtime can be handed a buffer of the right size before the run; null when only the run knows.
    private readonly Dictionary<string, long[]> _outputShapes;

    // Every input and output has a dynamic dimension 0: a request's rows are its inferences (Triton's inference_count).
    private readonly bool _rowsAreDimensionZero;

    // Cleared if ONNX Runtime ever rejects a preallocated output (a graph whose declared shapes lie).
    private volatile bool _preallocateOutputs = true;

    // The success counter and latency histogram of this version, looked up once on first use rather than by label values on every request.
    private Prometheus.Counter.Child? _succeeded;
    private Prometheus.Histogram.Child? _latency;
    private int _references = 1;

    private LoadedModel(InferenceSession session, ModelMetadata metadata, ModelOptions options, ServingMetrics metrics, Dictionary<string, long[]> outputShapes)
    {
        _outputShapes = outputShapes;
        _session = session;
        Metadata = metadata;
        Options = options;
        _rowsAreDimensionZero = metadata.Inputs.All(i => i.IsBatchable) && metadata.Outputs.All(o => o.IsBatchable);
        CanBatch = options.MaxBatchSize > 1 && _rowsAreDimensionZero;
        _inputNames = [.. metadata.Inputs.Select(i => i.Name)];
        _outputNames = [.. metadata.Outputs.Select(o => o.Name)];
        _metrics = metrics;
        _batcher = new ModelBatcher(this, metrics);
    }

    public ModelMetadata Metadata { get; }

    public ModelOptions Options { get; }

    /// <summary>True when requests may be concatenated along dimension 0 (every input and output has it dynamic).</summary>
    public bool CanBatch { get; }

    /// <summary>Loads an ONNX model from a file or from its bytes.</summary>
    public static LoadedModel Load(string name, string version, ModelSource source, ModelOptions options, ServingMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        using var activity = ServingActivity.Source.StartActivity("load model");
        activity?.SetTag("capstan.model.name", name).SetTag("capstan.model.version", version);
        var (sessionOptions, provider) = CreateSessionOptions(options);
        activity?.SetTag("capstan.execution_provider", provider);
        InferenceSession session;
        try
        {
            session = source.Bytes is { } bytes ? new InferenceSession(bytes, sessionOptions) : new InferenceSession(source.Path!, sessionOptions);
        }
        catch (OnnxRuntimeException ex)
        {
            var error = new InvalidOperationException($"Cannot load model '{name}' version {version}: {ex.Message}", ex);
            activity?.SetStatus(ActivityStatusCode.Error, error.Message);
            throw error;
        }
        finally
        {
            sessionOptions.Dispose();
        }

        try
        {
            var metadata = new ModelMetadata(
                name,
                version,
                Describe(session.InputNames, session.InputMetadata, name),
                Describe(session.OutputNames, session.OutputMetadata, name),
                provider);
            return new LoadedModel(session, metadata, options, metrics, KnownOutputShapes(session, metadata));
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    internal bool TryAcquire()
    {
        while (true)
        {
            var current = Volatile.Read(ref _references);
            if (current == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _references, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    internal void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            _batcher.Complete();
            _session.Dispose();
            _runOptions.Dispose();
        }
    }

    /// <summary>Triton's statistics extension for this version: counts and cumulative times since it loaded.</summary>
    public ModelStatistics Statistics { get; } = new();

    /// <summary>Counts a successful request, its latency and (for the statistics extension) its rows and time.</summary>
    internal void RecordSuccess(InferRequest request, InferResponse response, long started)
    {
        var ended = Stopwatch.GetTimestamp();
        (_succeeded ??= _metrics.Requests.WithLabels(Metadata.Name, Metadata.Version, "success")).Inc();
        (_latency ??= _metrics.Latency.WithLabels(Metadata.Name, Metadata.Version)).Observe(Stopwatch.GetElapsedTime(started, ended).TotalSeconds);
        Statistics.RecordSuccess(_rowsAreDimensionZero ? request.Rows : 1, ended - started, response.Timing, ended);
    }

    /// <summary>A request this version failed (not one for a model that is not loaded), for the statistics extension.</summary>
    internal void RecordFailure(long started) => Statistics.RecordFailure(Stopwatch.GetTimestamp() - started);

    /// <summary>The RunOptions for runs that may overlap (no batching): never terminated, so one request cannot stop another's run.</summary>
    internal RunOptions SharedRunOptions => _runOptions;

    /// <summary>Runs a validated request, through the batch queue when batching is on. The caller holds a reference.</summary>
    internal Task<InferResponse> InferAsync(InferRequest request, CancellationToken cancellationToken) =>
        _batcher.InferAsync(request, cancellationToken);

    /// <summary>Checks a request against the graph: names, datatypes, shapes and element counts.</summary>
    internal void Validate(InferRequest request)
    {
        foreach (var input in request.Inputs)
        {
            var expected = Metadata.FindInput(input.Name)
                ?? throw InferenceException.Invalid($"Unexpected input '{input.Name}': model '{Metadata.Name}' has inputs {string.Join(", ", Metadata.Inputs.Select(i => $"'{i.Name}'"))}.");
            if (input.Datatype != expected.Datatype)
            {
                throw InferenceException.Invalid($"Input '{input.Name}' has datatype {input.Datatype.Name()}; the model expects {expected.Datatype.Name()}.");
            }

            if (!ShapeMatches(input.Shape, expected.Shape))
            {
                throw InferenceException.Invalid($"Input '{input.Name}' has shape {FormatShape(input.Shape)}; the model expects {FormatShape(expected.Shape)} (-1: any size).");
            }

            var count = input.ElementCount;
            var actual = input.Strings?.LongLength ?? (long)input.ByteLength / Math.Max(1, input.Datatype.ElementSize());
            if (actual != count)
            {
                throw InferenceException.Invalid($"Input '{input.Name}' has {actual} elements; shape {FormatShape(input.Shape)} needs {count}.");
            }
        }

        foreach (var expected in Metadata.Inputs)
        {
            if (InferRequest.FindInput(request.Inputs, expected.Name) is null)
            {
                throw InferenceException.Invalid($"Missing input '{expected.Name}' ({expected.Datatype.Name()} {FormatShape(expected.Shape)}).");
            }
        }

        foreach (var output in request.Outputs)
        {
            if (Metadata.FindOutput(output.Name) is null)
            {
                throw InferenceException.Invalid($"Unknown output '{output.Name}': model '{Metadata.Name}' has outputs {string.Join(", ", Metadata.Outputs.Select(o => $"'{o.Name}'"))}.");
            }
        }
    }

    /// <summary>
    /// Runs requests of identical trailing shapes as one ONNX run concatenated along dimension 0, and splits the results.
    /// Inputs are read in place from the requests' buffers (pinned for the run). An output whose shape the graph
    /// fixes, up to the rows, is written by ONNX Runtime straight into a pooled buffer that the response then owns.
    /// </summary>
    internal InferResponse[] Run(IReadOnlyList<InferRequest> requests, RunOptions runOptions)
    {
        var runStarted = Stopwatch.GetTimestamp();
        var inputs = Metadata.Inputs;
        var rows = requests.Count == 1 ? null : new long[requests.Count];
        long totalRows = 0;
        if (rows is not null)
        {
            for (var r = 0; r < requests.Count; r++)
            {
                rows[r] = InferRequest.FindInput(requests[r].Inputs, inputs[0].Name)!.Shape[0];
                totalRows += rows[r];
            }
        }
        else if (inputs.Count > 0 && InferRequest.FindInput(requests[0].Inputs, inputs[0].Name)!.Shape is [var first, ..])
        {
            totalRows = first;
        }

        var outputNames = SelectOutputs(requests);
        var values = new RunValue[inputs.Count];
        RunValue[]? preallocated = null;
        try
        {
            for (var i = 0; i < inputs.Count; i++)
            {
                values[i] = CreateInput(inputs[i], requests, totalRows);
            }

            preallocated = _preallocateOutputs ? PreallocateOutputs(outputNames, totalRows) : null;
            var inputValues = new OrtValue[values.Length];
            for (var i = 0; i < values.Length; i++)
            {
                inputValues[i] = values[i].Value;
            }

            if (preallocated is not null)
            {
                var outputValues = new OrtValue[preallocated.Length];
                for (var o = 0; o < preallocated.Length; o++)
                {
                    outputValues[o] = preallocated[o].Value;
                }

                var started = Stopwatch.GetTimestamp();
                try
                {
                    _session.Run(runOptions, _inputNames, inputValues, outputNames, outputValues);
                }
                catch (OnnxRuntimeException) when (!runOptions.Terminate)
                {
                    // Either the input is bad (the run below fails the same way) or the graph's declared output shape is
                    // not what it produces (the run below succeeds): then ONNX Runtime allocates the outputs from now on.
                    foreach (var value in preallocated)
                    {
                        value.Dispose();
                    }

                    preallocated = null;
                    var responses = RunAllocating(requests, rows, totalRows, outputNames, inputValues, runOptions, runStarted);
                    _preallocateOutputs = false;
                    return responses;
                }

                var ended = Stopwatch.GetTimestamp();
                var outputs = new RunOutput[preallocated.Length];
                for (var o = 0; o < preallocated.Length; o++)
                {
                    outputs[o] = RunOutput.Of(outputNames[o], preallocated[o]);
                }

                return Split(requests, rows, totalRows, outputNames, outputs, new RunTiming(runStarted, started, ended));
            }

            return RunAllocating(requests, rows, totalRows, outputNames, inputValues, runOptions, runStarted);
        }
        catch (OnnxRuntimeException ex)
        {
            throw InferenceException.Invalid($"ONNX Runtime rejected the request for model '{Metadata.Name}': {ex.Message}");
        }
        finally
        {
            foreach (var value in values)
            {
                value?.Dispose();
            }

            if (preallocated is not null)
            {
                foreach (var value in preallocated)
                {
                    value?.Dispose();
                }
            }
        }
    }

    private InferResponse[] RunAllocating(IReadOnlyList<InferRequest> requests, long[]? rows, long totalRows, string[] outputNames, OrtValue[] inputValues, RunOptions runOptions, long runStarted)
    {
        var started = Stopwatch.GetTimestamp();
        using var results = _session.Run(runOptions, _inputNames, inputValues, outputNames);
        var ended = Stopwatch.GetTimestamp();

        // Type and shape once per output, not once per request and output.
        var outputs = new RunOutput[outputNames.Length];
        for (var o = 0; o < outputNames.Length; o++)
        {
            outputs[o] = RunOutput.Of(outputNames[o], results[o], rows is null, totalRows);
        }

        return Split(requests, rows, totalRows, outputNames, outputs, new RunTiming(runStarted, started, ended));
    }

    private static RunValue CreateInput(TensorMetadata input, IReadOnlyList<InferRequest> requests, long totalRows)
    {
        var first = InferRequest.FindInput(requests[0].Inputs, input.Name)!;
        var shape = first.Shape;
        if (requests.Count > 1)
        {
            shape = (long[])shape.Clone();
            shape[0] = totalRows;
        }

        if (input.Datatype == OipDatatype.Bytes)
        {
            var value = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, shape);
            var index = 0;
            foreach (var request in requests)
            {
                foreach (var s in InferRequest.FindInput(request.Inputs, input.Name)!.Strings!)
                {
                    value.StringTensorSetElementAt(s.AsSpan(), index++);
                }
            }

            return new RunValue(value);
        }

        if (requests.Count == 1)
        {
            // The request's own buffer, read in place.
            return RunValue.Pin(input.Datatype, shape, first.Segment, null);
        }

        var byteLength = 0;
        foreach (var request in requests)
        {
            byteLength += InferRequest.FindInput(request.Inputs, input.Name)!.ByteLength;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(byteLength, 1));
        var offset = 0;
        foreach (var request in requests)
        {
            var bytes = InferRequest.FindInput(request.Inputs, input.Name)!.Bytes;
            bytes.CopyTo(buffer.AsSpan(offset));
            offset += bytes.Length;
        }

        return RunValue.Pin(input.Datatype, shape, new ArraySegment<byte>(buffer, 0, byteLength), buffer);
    }

    /// <summary>Pooled, pinned buffers for every wanted output, or null when any output's shape is only known after the run.</summary>
    private RunValue[]? PreallocateOutputs(string[] outputNames, long totalRows)
    {
        var values = new RunValue[outputNames.Length];
        for (var o = 0; o < outputNames.Length; o++)
        {
            if (!_outputShapes.TryGetValue(outputNames[o], out var declared))
            {
                for (var d = 0; d < o; d++)
                {
                    values[d].Dispose();
                }

                return null;
            }

            var shape = (long[])declared.Clone();
            if (shape[0] < 0)
            {
                shape[0] = totalRows;
            }

            var datatype = Metadata.FindOutput(outputNames[o])!.Datatype;
            var byteLength = checked((int)(InferTensor.CountElements(shape) * datatype.ElementSize()));
            var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(byteLength, 1));
            values[o] = RunValue.Pin(datatype, shape, new ArraySegment<byte>(buffer, 0, byteLength), buffer);
        }

        return values;
    }

    /// <summary>
    /// The outputs whose shape is known before a run: every dimension fixed, or all fixed but dimension 0
    /// when it is the same named dimension as the first input's (the rows). Not BYTES, not empty.
    /// </summary>
    private static Dictionary<string, long[]> KnownOutputShapes(InferenceSession session, ModelMetadata metadata)
    {
        var known = new Dictionary<string, long[]>(StringComparer.Ordinal);
        var rowsName = metadata.Inputs.Count > 0 && session.InputMetadata[metadata.Inputs[0].Name].SymbolicDimensions is [{ Length: > 0 } name, ..]
            && metadata.Inputs[0].Shape is [< 0, ..] ? name : null;
        foreach (var output in metadata.Outputs)
        {
            if (output.Datatype == OipDatatype.Bytes || output.Shape.Length == 0)
            {
                continue;
            }

            var restFixed = true;
            for (var d = 1; d < output.Shape.Length; d++)
            {
                restFixed &= output.Shape[d] >= 0;
            }

            var symbols = session.OutputMetadata[output.Name].SymbolicDimensions;
            var rows = output.Shape[0] < 0 && rowsName is not null && symbols.Length > 0 && symbols[0] == rowsName;
            if (restFixed && (output.Shape[0] >= 0 || rows))
            {
                known[output.Name] = (long[])output.Shape.Clone();
            }
        }

        return known;
    }

    private string[] SelectOutputs(IReadOnlyList<InferRequest> requests)
    {
        List<string>? wanted = null;
        foreach (var request in requests)
        {
            if (request.Outputs.Count == 0)
            {
                return _outputNames;
            }

            wanted ??= [];
            foreach (var output in request.Outputs)
            {
                if (!wanted.Contains(output.Name))
                {
                    wanted.Add(output.Name);
                }
            }
        }

        return wanted is null ? _outputNames : [.. wanted];
    }

    private InferResponse[] Split(IReadOnlyList<InferRequest> requests, long[]? rows, long totalRows, string[] outputNames, RunOutput[] outputs, RunTiming timing)
    {
        var responses = new InferResponse[requests.Count];
        long rowOffset = 0;
        for (var r = 0; r < requests.Count; r++)
        {
            var request = requests[r];
            var rowCount = rows?[r] ?? 0;
            var tensors = new List<InferTensor>(outputNames.Length);
            for (var o = 0; o < outputNames.Length; o++)
            {
                if (request.Outputs.Count > 0 && !Requested(request.Outputs, outputNames[o]))
                {
                    continue;
                }

                tensors.Add(outputs[o].Slice(rows is null, rowOffset, rowCount, totalRows));
            }

            rowOffset += rowCount;
            responses[r] = new InferResponse(Metadata.Name, Metadata.Version, request.Id, tensors) { RunRows = totalRows };
        }

        // The run's three phases as Triton's statistics split them; every request of a batch shares its run's.
        timing = timing with { Finished = Stopwatch.GetTimestamp() };
        foreach (var response in responses)
        {
            response.Timing = timing;
        }

        Statistics.RecordExecution(totalRows, timing);
        return responses;
    }

    private static bool Requested(List<RequestedOutput> outputs, string name)
    {
        foreach (var output in outputs)
        {
            if (output.Name == name)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// A tensor handed to ONNX Runtime for one run: a managed buffer pinned and wrapped without a copy
    /// (<see cref="Owned"/> is the pooled buffer it rented, if any, returned on dispose unless taken),
    /// or a value ONNX Runtime allocated (strings).
    /// </summary>
    private sealed class RunValue : IDisposable
    {
        private GCHandle _pin;

        public RunValue(OrtValue value) => Value = value;

        private RunValue(OrtValue value, GCHandle pin, byte[]? owned, long[] shape, OipDatatype datatype, int byteLength)
        {
            Value = value;
            _pin = pin;
            Owned = owned;
            Shape = shape;
            Datatype = datatype;
            ByteLength = byteLength;
        }

        public OrtValue Value { get; }

        public byte[]? Owned { get; private set; }

        public long[] Shape { get; } = [];

        public OipDatatype Datatype { get; }

        public int ByteLength { get; }

        public static RunValue Pin(OipDatatype datatype, long[] shape, ArraySegment<byte> memory, byte[]? owned)
        {
            var pin = GCHandle.Alloc(memory.Array, GCHandleType.Pinned);
            try
            {
                var address = Marshal.UnsafeAddrOfPinnedArrayElement(memory.Array!, memory.Offset);
                var value = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, datatype.ToOnnx(), shape, address, memory.Count);
                return new RunValue(value, pin, owned, shape, datatype, memory.Count);
            }
            catch
            {
                pin.Free();
                if (owned is not null)
                {
                    ArrayPool<byte>.Shared.Return(owned);
                }

                throw;
            }
        }

        /// <summary>The pooled buffer, now the caller's to return.</summary>
        public byte[] Take()
        {
            var owned = Owned!;
            Owned = null;
            return owned;
        }

        public void Dispose()
        {
            Value.Dispose();
            if (_pin.IsAllocated)
            {
                _pin.Free();
            }

            if (Owned is { } owned)
            {
                Owned = null;
                ArrayPool<byte>.Shared.Return(owned);
            }
        }
    }

    /// <summary>One output of a run, read once: its datatype, shape and data.</summary>
    private readonly struct RunOutput(string name, OrtValue? value, RunValue? preallocated, OipDatatype datatype, long[] shape)
    {
        public static RunOutput Of(string name, RunValue preallocated) =>
            new(name, null, preallocated, preallocated.Datatype, preallocated.Shape);

        public static RunOutput Of(string name, OrtValue value, bool whole, long totalRows)
        {
            var info = value.GetTensorTypeAndShape();
            var shape = info.Shape;
            var datatype = OipDatatypes.FromOnnx(info.ElementDataType)
                ?? throw InferenceException.Invalid($"Output '{name}' has ONNX type {info.ElementDataType}, which the protocol cannot carry.");
            if (!whole && (shape.Length == 0 || shape[0] != totalRows))
            {
                throw new InvalidOperationException($"Output '{name}' of a batch of {totalRows} rows has shape {FormatShape(shape)}.");
            }

            return new RunOutput(name, value, null, datatype, shape);
        }

        public InferTensor Slice(bool whole, long rowOffset, long rowCount, long totalRows)
        {
            var outShape = (long[])shape.Clone();
            if (!whole)
            {
                outShape[0] = rowCount;
            }

            if (preallocated is not null)
            {
                if (whole)
                {
                    // The response takes the buffer ONNX Runtime wrote into: no copy.
                    return new InferTensor(name, datatype, outShape, preallocated.Take(), preallocated.ByteLength);
                }

                var all = preallocated.Owned.AsSpan(0, preallocated.ByteLength);
                var rowBytes = totalRows == 0 ? 0 : preallocated.ByteLength / (int)totalRows;
                return InferTensor.Copy(name, datatype, outShape, all.Slice((int)rowOffset * rowBytes, (int)rowCount * rowBytes));
            }

            if (datatype == OipDatatype.Bytes)
            {
                var strings = value!.GetStringTensorAsArray();
                if (whole)
                {
                    return new InferTensor(name, outShape, strings);
                }

                var perRow = strings.Length / totalRows;
                return new InferTensor(name, outShape, strings.AsSpan((int)(rowOffset * perRow), (int)(rowCount * perRow)).ToArray());
            }

            var bytes = value!.GetTensorMutableRawData();
            if (whole)
            {
                return InferTensor.Copy(name, datatype, outShape, bytes);
            }

            var bytesPerRow = bytes.Length / (int)totalRows;
            return InferTensor.Copy(name, datatype, outShape, bytes.Slice((int)rowOffset * bytesPerRow, (int)rowCount * bytesPerRow));
        }
    }

    private static bool ShapeMatches(long[] actual, long[] expected)
    {
        if (actual.Length != expected.Length)
        {
            return false;
        }

        for (var i = 0; i < actual.Length; i++)
        {
            if (actual[i] < 0 || (expected[i] >= 0 && actual[i] != expected[i]))
            {
                return false;
            }
        }

        return true;
    }

    internal static string FormatShape(ReadOnlySpan<long> shape) => "[" + string.Join(",", shape.ToArray()) + "]";

    private static List<TensorMetadata> Describe(IReadOnlyList<string> names, IReadOnlyDictionary<string, NodeMetadata> nodes, string model)
    {
        var tensors = new List<TensorMetadata>(names.Count);
        foreach (var name in names)
        {
            var node = nodes[name];
            if (!node.IsTensor)
            {
                throw new InvalidOperationException($"Model '{model}': '{name}' is a {node.OnnxValueType}; only tensors can be served.");
            }

            var datatype = OipDatatypes.FromOnnx(node.ElementDataType)
                ?? throw new InvalidOperationException($"Model '{model}': '{name}' has ONNX type {node.ElementDataType}, which the protocol cannot carry.");
            tensors.Add(new TensorMetadata(name, datatype, [.. node.Dimensions.Select(d => d < 0 ? -1L : d)]));
        }

        return tensors;
    }

    /// <summary>The ONNX Runtime session options a model is loaded with (also used for like-for-like baselines).</summary>
    public static SessionOptions CreateCpuSessionOptions(ModelOptions options) => CreateSessionOptions(options with { PreferCuda = false }).Options;

    private static (SessionOptions Options, string Provider) CreateSessionOptions(ModelOptions options)
    {
        var sessionOptions = new SessionOptions();
        sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", options.IntraOpSpinning ? "1" : "0");
        if (options.IntraOpThreads > 0)
        {
            sessionOptions.IntraOpNumThreads = options.IntraOpThreads;
        }

        return (sessionOptions, ExecutionProviderChoice.Apply(sessionOptions, options.PreferCuda).Name);
    }
}

/// <summary>Where a model's ONNX bytes come from: a file, or bytes already in memory.</summary>
public sealed record ModelSource(string? Path, byte[]? Bytes)
{
    public static ModelSource FromFile(string path) => new(path, null);

    public static ModelSource FromBytes(byte[] bytes) => new(null, bytes);
}
