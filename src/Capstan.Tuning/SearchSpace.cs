using System.Globalization;

namespace Capstan.Tuning;

/// <summary>Katib's parameter types.</summary>
public enum ParameterType
{
    Double,
    Int,
    /// <summary>A list of numbers.</summary>
    Discrete,
    /// <summary>A list of strings.</summary>
    Categorical,
}

/// <summary>
/// Katib's distributions. <see cref="Normal"/> and <see cref="LogNormal"/> are honoured by random search (a normal with
/// mean the middle of the range and standard deviation a sixth of it, clipped to the range); the model-based algorithms
/// treat them as their uniform counterparts.
/// </summary>
public enum Distribution
{
    Uniform,
    LogUniform,
    Normal,
    LogNormal,
}

/// <summary>
/// A parameter's feasible space as Katib writes it: <c>min</c>, <c>max</c>, <c>step</c> for double and int;
/// <c>list</c> for discrete and categorical. Numbers stay as the user wrote them so values format back the same way.
/// </summary>
public sealed record FeasibleSpace(
    string? Min = null,
    string? Max = null,
    string? Step = null,
    IReadOnlyList<string>? List = null,
    Distribution Distribution = Distribution.Uniform);

/// <summary>One parameter of a search space.</summary>
public sealed record ParameterSpec(string Name, ParameterType Type, FeasibleSpace FeasibleSpace)
{
    public static ParameterSpec Double(string name, double min, double max, double? step = null, Distribution distribution = Distribution.Uniform) =>
        new(name, ParameterType.Double, new FeasibleSpace(Format(min), Format(max), step is { } s ? Format(s) : null, null, distribution));

    public static ParameterSpec Int(string name, long min, long max, long? step = null, Distribution distribution = Distribution.Uniform) =>
        new(name, ParameterType.Int, new FeasibleSpace(Format(min), Format(max), step is { } s ? Format(s) : null, null, distribution));

    public static ParameterSpec Discrete(string name, params double[] values) =>
        new(name, ParameterType.Discrete, new FeasibleSpace(List: values.Select(v => Format(v)).ToArray()));

    public static ParameterSpec Categorical(string name, params string[] values) =>
        new(name, ParameterType.Categorical, new FeasibleSpace(List: values));

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>
/// The parameters a search explores, in Katib's vocabulary. Build it with <see cref="Create"/>, which rejects an
/// invalid space with every error at once, or check one with <see cref="Validate"/>.
/// </summary>
public sealed class SearchSpace
{
    private readonly Dictionary<string, int> _index;

    private SearchSpace(IReadOnlyList<ParameterSpec> parameters, IReadOnlyList<Dimension> dimensions)
    {
        Parameters = parameters;
        Dimensions = dimensions;
        _index = parameters.Select((p, i) => (p.Name, i)).ToDictionary(x => x.Name, x => x.i, StringComparer.Ordinal);
    }

    public IReadOnlyList<ParameterSpec> Parameters { get; }

    internal IReadOnlyList<Dimension> Dimensions { get; }

    public int Count => Parameters.Count;

    public static SearchSpace Create(IEnumerable<ParameterSpec> parameters)
    {
        var list = parameters.ToArray();
        var errors = Validate(list);
        if (errors.Count > 0)
        {
            throw new TuningSpecException(errors);
        }

        return new SearchSpace(list, list.Select(Dimension.Create).ToArray());
    }

    public static SearchSpace Create(params ParameterSpec[] parameters) => Create((IEnumerable<ParameterSpec>)parameters);

    /// <summary>Every error in the space: names, bounds, steps, lists and distributions.</summary>
    public static IReadOnlyList<TuningError> Validate(IEnumerable<ParameterSpec> parameters)
    {
        var errors = new List<TuningError>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var any = false;
        foreach (var p in parameters)
        {
            any = true;
            if (string.IsNullOrWhiteSpace(p.Name))
            {
                errors.Add(new TuningError("(unnamed)", "name", "a parameter needs a name"));
                continue;
            }

            if (!seen.Add(p.Name))
            {
                errors.Add(new TuningError(p.Name, "name", "the name is used by more than one parameter"));
            }

            Dimension.Validate(p, errors);
        }

        if (!any)
        {
            errors.Add(new TuningError("parameters", "parameters", "a search space needs at least one parameter"));
        }

        return errors;
    }

    public int IndexOf(string name) => _index.TryGetValue(name, out var i) ? i : -1;

    /// <summary>
    /// Reads an assignment back from the strings a trial was given (what the store keeps), so a restarted control
    /// plane rebuilds the search from its history. Errors name the parameter whose value does not fit.
    /// </summary>
    public ParameterAssignment Parse(IReadOnlyDictionary<string, string> values)
    {
        var errors = new List<TuningError>();
        var parsed = new ParameterValue[Count];
        for (var i = 0; i < Count; i++)
        {
            var p = Parameters[i];
            if (!values.TryGetValue(p.Name, out var text))
            {
                errors.Add(new TuningError(p.Name, "value", "the assignment has no value for this parameter"));
                continue;
            }

            if (Dimensions[i].TryParse(text, out var value, out var message))
            {
                parsed[i] = value;
            }
            else
            {
                errors.Add(new TuningError(p.Name, "value", message));
            }
        }

        foreach (var name in values.Keys.Where(k => !_index.ContainsKey(k)))
        {
            errors.Add(new TuningError(name, "value", "the search space has no such parameter"));
        }

        return errors.Count > 0 ? throw new TuningSpecException(errors) : new ParameterAssignment(this, parsed);
    }
}
