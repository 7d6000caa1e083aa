using System.Buffers;
using System.Diagnostics;
using Capstan.Serving.Models;

namespace Capstan.Serving.Inference;

/// <summary>
/// A tensor on its way in or out: flat row-major little-endian bytes in a pooled buffer
/// (or strings for BYTES). The one form REST JSON, the binary extension and gRPC all decode to,
/// so batching can concatenate requests byte-wise. Dispose returns the buffer to the pool.
/// </summary>
public sealed class InferTensor : IDisposable
{
    private byte[]? _buffer;

    public InferTensor(string name, OipDatatype datatype, long[] shape, byte[] pooledBuffer, int byteLength)
    {
        Name = name;
        Datatype = datatype;
        Shape = shape;
        _buffer = pooledBuffer;
        ByteLength = byteLength;
    }

    public InferTensor(string name, long[] shape, string[] strings)
    {
        Name = name;
        Datatype = OipDatatype.Bytes;
        Shape = shape;
        Strings = strings;
        _buffer = [];
    }

    public string Name { get; }

    public OipDatatype Datatype { get; }

    public long[] Shape { get; }

    public int ByteLength { get; }

    /// <summary>The elements of a BYTES tensor; null for every other datatype.</summary>
    public string[]? Strings { get; }

    public ReadOnlySpan<byte> Bytes => _buffer.AsSpan(0, ByteLength);

    public ReadOnlyMemory<byte> Memory => _buffer.AsMemory(0, ByteLength);

    /// <summary>The pooled array and the tensor's bytes in it (for ONNX Runtime to read in place).</summary>
    internal ArraySegment<byte> Segment => new(_buffer ?? throw new ObjectDisposedException(Name), 0, ByteLength);

    public long ElementCount => CountElements(Shape);

    public static long CountElements(ReadOnlySpan<long> shape)
    {
        long count = 1;
        foreach (var dim in shape)
        {
            count *= dim;
        }

        return count;
    }

    public static InferTensor Copy(string name, OipDatatype datatype, long[] shape, ReadOnlySpan<byte> bytes)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(bytes.Length, 1));
        bytes.CopyTo(buffer);
        return new InferTensor(name, datatype, shape, buffer, bytes.Length);
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is { Length: > 0 })
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>An output the client asked for; <see cref="Binary"/> asks for the binary-data extension.</summary>
public sealed record RequestedOutput(string Name, bool Binary);

/// <summary>A decoded inference request, whichever transport it came by.</summary>
public sealed class InferRequest : IDisposable
{
    private int _queueOwned;

    public string? Id { get; set; }

    public List<InferTensor> Inputs { get; } = [];

    /// <summary>Empty: every output of the model.</summary>
    public List<RequestedOutput> Outputs { get; } = [];

    /// <summary>The rows a batch would count for this request: its first input's dimension 0, else 1.</summary>
    internal long Rows => Inputs.Count > 0 && Inputs[0].Shape.Length > 0 ? Inputs[0].Shape[0] : 1;

    /// <summary>The input named <paramref name="name"/>, or null (a loop, not a capturing lambda: this is on every request's path).</summary>
    internal static InferTensor? FindInput(List<InferTensor> inputs, string name)
    {
        foreach (var input in inputs)
        {
            if (input.Name == name)
            {
                return input;
            }
        }

        return null;
    }

    /// <summary>The request-level <c>binary_data_output</c> parameter: every output as binary.</summary>
    public bool BinaryDataOutput { get; set; }

    public void Dispose()
    {
        if (Volatile.Read(ref _queueOwned) == 0)
        {
            DisposeInputs();
        }
    }

    /// <summary>A caller that gave up on a queued request leaves its buffers to the queue, which may still be reading them.</summary>
    internal void HandToQueue() => Interlocked.Exchange(ref _queueOwned, 1);

    internal void ReleaseFromQueue() => DisposeInputs();

    private void DisposeInputs()
    {
        foreach (var input in Inputs)
        {
            input.Dispose();
        }
    }
}

/// <summary>The result of one request: the model version that ran it and the selected outputs.</summary>
public sealed class InferResponse(string modelName, string modelVersion, string? id, List<InferTensor> outputs) : IDisposable
{
    public string ModelName { get; } = modelName;

    public string ModelVersion { get; } = modelVersion;

    public string? Id { get; } = id;

    public List<InferTensor> Outputs { get; } = outputs;

    /// <summary>Microseconds spent inside ONNX Runtime's Run for the batch that held this request.</summary>
    public double OnnxMicroseconds => Stopwatch.GetElapsedTime(Timing.OnnxStarted, Timing.OnnxEnded).TotalMicroseconds;

    /// <summary>When the run that held this request prepared its inputs, ran, and split its outputs (Stopwatch ticks).</summary>
    internal RunTiming Timing { get; set; }

    /// <summary>Rows in the ONNX run that held this request: its own, or the whole batch's.</summary>
    public long RunRows { get; init; }

    public void Dispose()
    {
        foreach (var output in Outputs)
        {
            output.Dispose();
        }
    }
}
