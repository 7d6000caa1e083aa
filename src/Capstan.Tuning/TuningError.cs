namespace Capstan.Tuning;

/// <summary>
/// One thing wrong with a tuning spec. <see cref="Subject"/> is the parameter (or algorithm, or early-stopping rule) it
/// concerns and <see cref="Field"/> the field within it, e.g. <c>lr</c> / <c>feasibleSpace.min</c>, or <c>tpe</c> /
/// <c>n_startup_trials</c>, so a caller can point at the spot in the user's file.
/// </summary>
public sealed record TuningError(string Subject, string Field, string Message)
{
    public override string ToString() => $"{Subject}: {Field}: {Message}";
}

/// <summary>Thrown when a search space, an algorithm's settings or an early-stopping rule is invalid.</summary>
public sealed class TuningSpecException(IReadOnlyList<TuningError> errors)
    : Exception(string.Join(Environment.NewLine, errors.Select(e => e.ToString())))
{
    public IReadOnlyList<TuningError> Errors { get; } = errors;
}
