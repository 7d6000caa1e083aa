namespace Capstan.Serving.Inference;

public enum InferenceErrorKind
{
    /// <summary>The request is wrong (400 / InvalidArgument).</summary>
    InvalidArgument,

    /// <summary>No such model or version (404 / NotFound).</summary>
    NotFound,

    /// <summary>The model's queue is full (429 / ResourceExhausted).</summary>
    QueueFull,

    /// <summary>The request waited past its timeout (503 / DeadlineExceeded).</summary>
    Timeout,

    /// <summary>The model is not loaded or is shutting down (503 / Unavailable).</summary>
    Unavailable,
}

/// <summary>A failure the protocol answers with a status and <c>{"error": "..."}</c>.</summary>
public sealed class InferenceException(InferenceErrorKind kind, string message) : Exception(message)
{
    public InferenceErrorKind Kind { get; } = kind;

    public static InferenceException Invalid(string message) => new(InferenceErrorKind.InvalidArgument, message);

    public static InferenceException NotFound(string message) => new(InferenceErrorKind.NotFound, message);
}
