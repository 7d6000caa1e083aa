using System.Diagnostics;
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

    // The success counter and latency histogram of this version, looked up once on first use rather than by label values on every request.
    private Prometheus.Counter.Child? _succeeded;
    private Prometheus.Histogram.Child? _latency;
    private int _references = 1;

    private LoadedModel(InferenceSession session, ModelMetadata metadata, ModelOptions options, ServingMetrics metrics)
    {
        _session = session;
        Metadata = metadata;
        Options = options;
        CanBatch = options.MaxBatchSize > 1
            && metadata.Inputs.All(i => i.IsBatchable)
            && metadata.Outputs.All(o => o.IsBatchable);
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
        var (sessionOptions, provider) = CreateSessionOptions(options);
        InferenceSession session;
        try
        {
            session = source.Bytes is { } bytes ? new InferenceSession(bytes, sessionOptions) : new InferenceSession(source.Path!, sessionOptions);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new InvalidOperationException($"Cannot load model '{name}' version {version}: {ex.Message}", ex);
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
            return new LoadedModel(session, metadata, options, metrics);
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

    /// <summary>Counts a successful request and its latency.</summary>
    internal void RecordSuccess(double seconds)
    {
        (_succeeded ??= _metrics.Requests.WithLabels(Metadata.Name, Metadata.Version, "success")).Inc();
        (_latency ??= _metrics.Latency.WithLabels(Metadata.Name, Metadata.Version)).Observe(seconds);
    }

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

    /// <summary>Runs requests of identical trailing shapes as one ONNX run concatenated along dimension 0, and splits the results.</summary>
    internal InferResponse[] Run(IReadOnlyList<InferRequest> requests, RunOptions runOptions)
    {
        var inputs = Metadata.Inputs;
        var values = new OrtValue[inputs.Count];
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

        try
        {
            for (var i = 0; i < inputs.Count; i++)
            {
                values[i] = CreateInput(inputs[i], requests, totalRows);
            }

            var outputNames = SelectOutputs(requests);
            var started = Stopwatch.GetTimestamp();
            using var results = _session.Run(runOptions, _inputNames, values, outputNames);
            var onnxMicroseconds = Stopwatch.GetElapsedTime(started).TotalMicroseconds;
            return Split(requests, rows, totalRows, outputNames, results, onnxMicroseconds);
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
        }
    }

    private static OrtValue CreateInput(TensorMetadata input, IReadOnlyList<InferRequest> requests, long totalRows)
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

            return value;
        }

        var tensor = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, input.Datatype.ToOnnx(), shape);
        var destination = tensor.GetTensorMutableRawData();
        var offset = 0;
        foreach (var request in requests)
        {
            var bytes = InferRequest.FindInput(request.Inputs, input.Name)!.Bytes;
            bytes.CopyTo(destination[offset..]);
            offset += bytes.Length;
        }

        return tensor;
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

    private InferResponse[] Split(IReadOnlyList<InferRequest> requests, long[]? rows, long totalRows, string[] outputNames, IReadOnlyList<OrtValue> results, double onnxMicroseconds)
    {
        // Type and shape once per output, not once per request and output.
        var outputs = new RunOutput[outputNames.Length];
        for (var o = 0; o < outputNames.Length; o++)
        {
            outputs[o] = RunOutput.Of(outputNames[o], results[o], rows is null, totalRows);
        }

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
            responses[r] = new InferResponse(Metadata.Name, Metadata.Version, request.Id, tensors) { OnnxMicroseconds = onnxMicroseconds };
        }

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

    /// <summary>One output of a run, read once: its datatype, shape and data.</summary>
    private readonly struct RunOutput(string name, OrtValue value, OipDatatype datatype, long[] shape)
    {
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

            return new RunOutput(name, value, datatype, shape);
        }

        public InferTensor Slice(bool whole, long rowOffset, long rowCount, long totalRows)
        {
            var outShape = (long[])shape.Clone();
            if (!whole)
            {
                outShape[0] = rowCount;
            }

            if (datatype == OipDatatype.Bytes)
            {
                var all = value.GetStringTensorAsArray();
                if (whole)
                {
                    return new InferTensor(name, outShape, all);
                }

                var perRow = all.Length / totalRows;
                return new InferTensor(name, outShape, all.AsSpan((int)(rowOffset * perRow), (int)(rowCount * perRow)).ToArray());
            }

            var bytes = value.GetTensorMutableRawData();
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
