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
    private int _references = 1;

    private LoadedModel(InferenceSession session, ModelMetadata metadata, ModelOptions options, ServingMetrics metrics)
    {
        _session = session;
        Metadata = metadata;
        Options = options;
        CanBatch = options.MaxBatchSize > 1
            && metadata.Inputs.All(i => i.IsBatchable)
            && metadata.Outputs.All(o => o.IsBatchable);
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
            if (!request.Inputs.Exists(i => i.Name == expected.Name))
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
    internal InferResponse[] Run(IReadOnlyList<InferRequest> requests)
    {
        var inputs = Metadata.Inputs;
        var names = new string[inputs.Count];
        var values = new OrtValue[inputs.Count];
        var rows = new long[requests.Count];
        long totalRows = 0;
        for (var r = 0; r < requests.Count; r++)
        {
            rows[r] = requests.Count == 1 ? 0 : requests[r].Inputs.Find(t => t.Name == inputs[0].Name)!.Shape[0];
            totalRows += rows[r];
        }

        try
        {
            for (var i = 0; i < inputs.Count; i++)
            {
                names[i] = inputs[i].Name;
                values[i] = CreateInput(inputs[i], requests, totalRows);
            }

            var outputNames = SelectOutputs(requests);
            var started = Stopwatch.GetTimestamp();
            using var results = _session.Run(_runOptions, names, values, outputNames);
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
        var first = requests[0].Inputs.Find(t => t.Name == input.Name)!;
        var shape = (long[])first.Shape.Clone();
        if (requests.Count > 1)
        {
            shape[0] = totalRows;
        }

        if (input.Datatype == OipDatatype.Bytes)
        {
            var value = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, shape);
            var index = 0;
            foreach (var request in requests)
            {
                foreach (var s in request.Inputs.Find(t => t.Name == input.Name)!.Strings!)
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
            var bytes = request.Inputs.Find(t => t.Name == input.Name)!.Bytes;
            bytes.CopyTo(destination[offset..]);
            offset += bytes.Length;
        }

        return tensor;
    }

    private string[] SelectOutputs(IReadOnlyList<InferRequest> requests)
    {
        var wanted = new List<string>();
        foreach (var request in requests)
        {
            if (request.Outputs.Count == 0)
            {
                return [.. Metadata.Outputs.Select(o => o.Name)];
            }

            foreach (var output in request.Outputs)
            {
                if (!wanted.Contains(output.Name))
                {
                    wanted.Add(output.Name);
                }
            }
        }

        return [.. wanted];
    }

    private InferResponse[] Split(IReadOnlyList<InferRequest> requests, long[] rows, long totalRows, string[] outputNames, IReadOnlyList<OrtValue> results, double onnxMicroseconds)
    {
        var responses = new InferResponse[requests.Count];
        for (var r = 0; r < requests.Count; r++)
        {
            var request = requests[r];
            var outputs = new List<InferTensor>(outputNames.Length);
            long rowOffset = 0;
            for (var p = 0; p < r; p++)
            {
                rowOffset += rows[p];
            }

            for (var o = 0; o < outputNames.Length; o++)
            {
                if (request.Outputs.Count > 0 && !request.Outputs.Exists(x => x.Name == outputNames[o]))
                {
                    continue;
                }

                outputs.Add(SliceOutput(outputNames[o], results[o], requests.Count == 1, rowOffset, rows[r], totalRows));
            }

            responses[r] = new InferResponse(Metadata.Name, Metadata.Version, request.Id, outputs) { OnnxMicroseconds = onnxMicroseconds };
        }

        return responses;
    }

    private static InferTensor SliceOutput(string name, OrtValue value, bool whole, long rowOffset, long rowCount, long totalRows)
    {
        var info = value.GetTensorTypeAndShape();
        var shape = info.Shape;
        var datatype = OipDatatypes.FromOnnx(info.ElementDataType)
            ?? throw InferenceException.Invalid($"Output '{name}' has ONNX type {info.ElementDataType}, which the protocol cannot carry.");
        if (!whole && (shape.Length == 0 || shape[0] != totalRows))
        {
            throw new InvalidOperationException($"Output '{name}' of a batch of {totalRows} rows has shape {FormatShape(shape)}.");
        }

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
