using System.Globalization;

namespace Capstan.Tuning;

/// <summary>
/// How the algorithms see one parameter. Numeric parameters (double, int, discrete) live on a model axis: the value
/// itself, its logarithm for log distributions, or its index in the sorted list for discrete ones, between
/// <see cref="Low"/> and <see cref="High"/> (widened by half a step for stepped parameters, as Optuna does). A
/// categorical parameter is a choice index. <see cref="FromUnit"/> maps [0, 1] onto the parameter for the
/// algorithms that work in the unit cube.
/// </summary>
internal sealed class Dimension
{
    private readonly double _min;
    private readonly double _max;
    private readonly double? _step;
    private readonly int _decimals;
    private readonly double[] _listValues;
    private readonly string[] _labels;

    private Dimension(ParameterSpec spec, double min, double max, double? step, int decimals, double[] listValues, string[] labels)
    {
        Spec = spec;
        _min = min;
        _max = max;
        _step = step;
        _decimals = decimals;
        _listValues = listValues;
        _labels = labels;
        var d = spec.FeasibleSpace.Distribution;
        IsLog = spec.Type is ParameterType.Double or ParameterType.Int && d is Distribution.LogUniform or Distribution.LogNormal;
        IsNormal = spec.Type is ParameterType.Double or ParameterType.Int && d is Distribution.Normal or Distribution.LogNormal;
        switch (spec.Type)
        {
            case ParameterType.Categorical:
                Low = 0;
                High = labels.Length - 1;
                break;
            case ParameterType.Discrete:
                Low = -0.5;
                High = listValues.Length - 0.5;
                ModelStep = 1;
                break;
            default:
                var half = step is { } s ? s / 2 : 0;
                var lo = min - half;
                var hi = max + half;
                if (IsLog && lo <= 0)
                {
                    lo = min;
                }

                Low = IsLog ? Math.Log(lo) : lo;
                High = IsLog ? Math.Log(hi) : hi;
                ModelStep = IsLog ? null : step;
                break;
        }
    }

    public ParameterSpec Spec { get; }

    public string Name => Spec.Name;

    public bool IsCategorical => Spec.Type == ParameterType.Categorical;

    public bool IsLog { get; }

    public bool IsNormal { get; }

    /// <summary>Number of choices of a categorical parameter.</summary>
    public int Choices => _labels.Length;

    public double Low { get; }

    public double High { get; }

    /// <summary>The spacing of values on the model axis, when it is regular (stepped linear, int, discrete index).</summary>
    public double? ModelStep { get; }

    /// <summary>The distinct values of the parameter, or null when it is continuous.</summary>
    public IReadOnlyList<ParameterValue>? Grid()
    {
        switch (Spec.Type)
        {
            case ParameterType.Categorical:
            case ParameterType.Discrete:
                return Enumerable.Range(0, _labels.Length).Select(ValueAt).ToArray();
            default:
                if (_step is not { } step)
                {
                    return null;
                }

                var n = (long)Math.Floor(((_max - _min) / step) + 1e-9) + 1;
                return Enumerable.Range(0, (int)Math.Min(n, int.MaxValue)).Select(k => Numeric(_min + (k * step))).ToArray();
        }
    }

    /// <summary>The value at a point of the model axis, snapped to the parameter's step, int or list.</summary>
    public ParameterValue FromModel(double x)
    {
        switch (Spec.Type)
        {
            case ParameterType.Categorical:
            case ParameterType.Discrete:
                return ValueAt((int)Math.Clamp(Math.Round(x), 0, _labels.Length - 1));
            default:
                var v = IsLog ? Math.Exp(x) : x;
                return Numeric(v);
        }
    }

    /// <summary>A value's point on the model axis.</summary>
    public double ToModel(ParameterValue value)
    {
        switch (Spec.Type)
        {
            case ParameterType.Categorical:
            case ParameterType.Discrete:
                return Array.IndexOf(_labels, value.Text) is >= 0 and var i ? i : IndexOfNumber(value.Number ?? double.NaN);
            default:
                var v = value.Number ?? double.Parse(value.Text, CultureInfo.InvariantCulture);
                return IsLog ? Math.Log(v) : v;
        }
    }

    public ParameterValue FromUnit(double u)
    {
        u = Math.Clamp(u, 0, 1);
        if (IsCategorical)
        {
            return ValueAt(Math.Min((int)(u * Choices), Choices - 1));
        }

        return FromModel(Low + (u * (High - Low)));
    }

    public double ToUnit(ParameterValue value)
    {
        if (IsCategorical)
        {
            return (ToModel(value) + 0.5) / Choices;
        }

        return High > Low ? Math.Clamp((ToModel(value) - Low) / (High - Low), 0, 1) : 0.5;
    }

    public bool TryParse(string text, out ParameterValue value, out string message)
    {
        value = default;
        switch (Spec.Type)
        {
            case ParameterType.Categorical:
            case ParameterType.Discrete:
                var i = Array.IndexOf(_labels, text);
                if (i < 0 && Spec.Type == ParameterType.Discrete && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
                {
                    i = IndexOfNumber(number);
                }

                if (i < 0)
                {
                    message = $"'{text}' is not in the list [{string.Join(", ", _labels)}]";
                    return false;
                }

                value = ValueAt(i);
                message = "";
                return true;
            default:
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                {
                    message = $"'{text}' is not a number";
                    return false;
                }

                if (Spec.Type == ParameterType.Int && v != Math.Round(v))
                {
                    message = $"'{text}' is not an integer";
                    return false;
                }

                value = new ParameterValue(text, v);
                message = "";
                return true;
        }
    }

    private int IndexOfNumber(double number)
    {
        for (var i = 0; i < _listValues.Length; i++)
        {
            if (_listValues[i] == number)
            {
                return i;
            }
        }

        return -1;
    }

    private ParameterValue ValueAt(int index) =>
        new(_labels[index], Spec.Type == ParameterType.Discrete ? _listValues[index] : null);

    /// <summary>A numeric value snapped to the parameter's step and bounds.</summary>
    public ParameterValue Numeric(double v)
    {
        if (_step is { } step)
        {
            var k = Math.Round((v - _min) / step);
            var n = Math.Floor(((_max - _min) / step) + 1e-9);
            v = _min + (Math.Clamp(k, 0, n) * step);
        }

        v = Math.Clamp(v, _min, _max);
        if (Spec.Type == ParameterType.Int)
        {
            var l = (long)Math.Round(v);
            return new ParameterValue(l.ToString(CultureInfo.InvariantCulture), l);
        }

        if (_step is not null && _decimals <= 15)
        {
            v = Math.Round(v, _decimals);
        }

        return new ParameterValue(v.ToString("R", CultureInfo.InvariantCulture), v);
    }

    public static Dimension Create(ParameterSpec spec)
    {
        var fs = spec.FeasibleSpace;
        switch (spec.Type)
        {
            case ParameterType.Categorical:
                return new Dimension(spec, 0, 0, null, 0, [], fs.List!.ToArray());
            case ParameterType.Discrete:
                var sorted = fs.List!.Select(s => (Text: s, Value: ParseNumber(s)!.Value)).OrderBy(x => x.Value).ToArray();
                return new Dimension(spec, 0, 0, null, 0, sorted.Select(x => x.Value).ToArray(), sorted.Select(x => x.Text).ToArray());
            default:
                var decimals = Math.Max(Decimals(fs.Min!), Decimals(fs.Step ?? "0"));
                var step = ParseNumber(fs.Step) ?? (spec.Type == ParameterType.Int ? 1 : null);
                return new Dimension(spec, ParseNumber(fs.Min)!.Value, ParseNumber(fs.Max)!.Value, step, decimals, [], []);
        }
    }

    public static void Validate(ParameterSpec p, List<TuningError> errors)
    {
        var fs = p.FeasibleSpace;
        var log = fs.Distribution is Distribution.LogUniform or Distribution.LogNormal;
        switch (p.Type)
        {
            case ParameterType.Double:
            case ParameterType.Int:
                var intType = p.Type == ParameterType.Int;
                var min = Number(fs.Min, "feasibleSpace.min", required: true);
                var max = Number(fs.Max, "feasibleSpace.max", required: true);
                var step = Number(fs.Step, "feasibleSpace.step", required: false);
                if (fs.List is { Count: > 0 })
                {
                    errors.Add(new TuningError(p.Name, "feasibleSpace.list", $"a {Lower(p.Type)} parameter takes min and max, not a list"));
                }

                if (min is { } a && max is { } b)
                {
                    if (a > b)
                    {
                        errors.Add(new TuningError(p.Name, "feasibleSpace.min", $"min {fs.Min} is greater than max {fs.Max}"));
                    }
                    else if (step is { } s and > 0 && s > b - a && b > a)
                    {
                        errors.Add(new TuningError(p.Name, "feasibleSpace.step", $"step {fs.Step} is larger than the range {fs.Min}..{fs.Max}"));
                    }

                    if (log && a <= 0)
                    {
                        errors.Add(new TuningError(p.Name, "feasibleSpace.distribution", $"a log scale needs a positive range, but min is {fs.Min}"));
                    }
                }

                if (step is { } st && st <= 0)
                {
                    errors.Add(new TuningError(p.Name, "feasibleSpace.step", $"step {fs.Step} must be greater than 0"));
                }

                break;

                double? Number(string? text, string field, bool required)
                {
                    if (string.IsNullOrWhiteSpace(text))
                    {
                        if (required)
                        {
                            errors.Add(new TuningError(p.Name, field, $"a {Lower(p.Type)} parameter needs {field["feasibleSpace.".Length..]}"));
                        }

                        return null;
                    }

                    var v = ParseNumber(text);
                    if (v is null)
                    {
                        errors.Add(new TuningError(p.Name, field, $"'{text}' is not a number"));
                    }
                    else if (intType && v != Math.Round(v.Value))
                    {
                        errors.Add(new TuningError(p.Name, field, $"'{text}' is not an integer"));
                        return null;
                    }

                    return v;
                }

            case ParameterType.Discrete:
            case ParameterType.Categorical:
                if (fs.List is not { Count: > 0 } list)
                {
                    errors.Add(new TuningError(p.Name, "feasibleSpace.list", $"a {Lower(p.Type)} parameter needs a non-empty list"));
                    break;
                }

                if (fs.Min is not null || fs.Max is not null || fs.Step is not null)
                {
                    errors.Add(new TuningError(p.Name, "feasibleSpace.list", $"a {Lower(p.Type)} parameter takes a list, not min, max or step"));
                }

                if (list.Distinct(StringComparer.Ordinal).Count() != list.Count)
                {
                    errors.Add(new TuningError(p.Name, "feasibleSpace.list", "the list has duplicate values"));
                }

                if (p.Type == ParameterType.Discrete)
                {
                    for (var i = 0; i < list.Count; i++)
                    {
                        if (ParseNumber(list[i]) is null)
                        {
                            errors.Add(new TuningError(p.Name, $"feasibleSpace.list[{i}]", $"'{list[i]}' is not a number (a discrete parameter lists numbers; use categorical for strings)"));
                        }
                    }

                    if (list.Select(ParseNumber).Where(v => v is not null).Distinct().Count() != list.Count(s => ParseNumber(s) is not null))
                    {
                        errors.Add(new TuningError(p.Name, "feasibleSpace.list", "the list has the same number twice"));
                    }
                }

                break;
            default:
                errors.Add(new TuningError(p.Name, "parameterType", $"unknown parameter type {p.Type}; accepted: double, int, discrete, categorical"));
                break;
        }
    }

    private static string Lower(ParameterType t) => t.ToString().ToLowerInvariant();

    private static double? ParseNumber(string? text) =>
        text is not null && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) ? v : null;

    private static int Decimals(string text)
    {
        if (text.Contains('e', StringComparison.OrdinalIgnoreCase))
        {
            return 16;
        }

        var dot = text.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? 0 : text.Length - dot - 1;
    }
}
