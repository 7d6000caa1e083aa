namespace Capstan.Tuning;

public enum TrialState
{
    Running,
    Completed,
    Failed,
    /// <summary>Stopped early by an early-stopping rule; its intermediate values still count.</summary>
    Pruned,
}

/// <summary>A metric reported at a step (epoch, iteration) while a trial runs.</summary>
public readonly record struct IntermediateValue(long Step, double Value);

/// <summary>
/// A trial as the search sees it: its number (order of suggestion), its parameters, its state, one final value per
/// objective (in the order the objectives were declared; null until it completes) and the objective's intermediate
/// values by step.
/// </summary>
public sealed record Trial(
    int Number,
    ParameterAssignment Parameters,
    TrialState State,
    IReadOnlyList<double>? Values = null,
    IReadOnlyList<IntermediateValue>? Intermediate = null)
{
    public IReadOnlyList<IntermediateValue> IntermediateValues => Intermediate ?? [];

    /// <summary>The first objective's final value.</summary>
    public double? Value => Values is { Count: > 0 } v ? v[0] : null;
}

public enum ObjectiveDirection
{
    Minimize,
    Maximize,
}

/// <summary>An objective metric, its direction and an optional goal that ends the search once reached.</summary>
public sealed record Objective(string Name, ObjectiveDirection Direction, double? Goal = null)
{
    public static Objective Minimize(string name, double? goal = null) => new(name, ObjectiveDirection.Minimize, goal);

    public static Objective Maximize(string name, double? goal = null) => new(name, ObjectiveDirection.Maximize, goal);

    /// <summary>True when <paramref name="a"/> is strictly better than <paramref name="b"/>.</summary>
    public bool IsBetter(double a, double b) => Direction == ObjectiveDirection.Minimize ? a < b : a > b;

    /// <summary>True when the value reaches the goal (≤ goal when minimising, ≥ goal when maximising).</summary>
    public bool GoalReached(double value) =>
        Goal is { } g && (Direction == ObjectiveDirection.Minimize ? value <= g : value >= g);

    /// <summary>The value turned into a loss: itself when minimising, negated when maximising.</summary>
    internal double Loss(double value) => Direction == ObjectiveDirection.Minimize ? value : -value;
}
