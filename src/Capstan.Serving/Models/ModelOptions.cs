namespace Capstan.Serving.Models;

/// <summary>How one model is run: batching, queueing and ONNX Runtime threading.</summary>
public sealed record ModelOptions
{
    /// <summary>Rows (dimension 0) one ONNX run may hold; 1 turns dynamic batching off.</summary>
    public int MaxBatchSize { get; init; } = 1;

    /// <summary>
    /// How long a batch that already holds two or more requests may wait for more before it runs.
    /// A lone request never waits; zero batches only what queued while the previous run was busy.
    /// </summary>
    public TimeSpan MaxLatency { get; init; } = TimeSpan.Zero;

    /// <summary>Requests waiting or running per model version before the server answers 429.</summary>
    public int QueueCapacity { get; init; } = 1024;

    /// <summary>How long a request may wait for its result before it is answered 503.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>ONNX Runtime intra-op threads; 0 lets it choose.</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>
    /// Let ONNX Runtime's intra-op threads spin between runs. Off by default: spinning threads take
    /// cores from Kestrel and the JSON work on a small machine.
    /// </summary>
    public bool IntraOpSpinning { get; init; }

    /// <summary>Use the CUDA execution provider when this ONNX Runtime build and the machine have it.</summary>
    public bool PreferCuda { get; init; } = true;
}
