namespace Capstan.Tuning;

/// <summary>
/// The resource parameter Hyperband and ASHA hand out (epochs, steps): read from the settings <c>resource_name</c>,
/// <c>eta</c> (3) and <c>r_l</c> (the most resource a trial gets, by default the parameter's max). The least resource
/// is the parameter's min.
/// </summary>
internal sealed class ResourceSchedule
{
    private ResourceSchedule(int index, Dimension dimension, double min, double max, double eta)
    {
        Index = index;
        Dimension = dimension;
        Min = min;
        Max = max;
        Eta = eta;
        Rungs = (int)Math.Floor((Math.Log(max / min) / Math.Log(eta)) + 1e-9);
    }

    public int Index { get; }

    public Dimension Dimension { get; }

    public double Min { get; }

    public double Max { get; }

    public double Eta { get; }

    /// <summary>How many times the resource can be multiplied by eta between min and max.</summary>
    public int Rungs { get; }

    public static ResourceSchedule? Read(AlgorithmContext context, SettingsReader reader)
    {
        var name = reader.String("resource_name");
        var eta = reader.Double("eta", 3, e => e > 1, "greater than 1");
        var rl = reader.Double("r_l", double.NaN, v => v > 0, "greater than 0");
        if (string.IsNullOrWhiteSpace(name))
        {
            reader.Fail("resource_name", $"{reader.Owner} needs resource_name: the int or double parameter that sets a trial's budget (epochs, steps)");
            return null;
        }

        var index = context.Space.IndexOf(name);
        if (index < 0)
        {
            reader.Fail("resource_name", $"'{name}' is not a parameter of the search space");
            return null;
        }

        var spec = context.Space.Parameters[index];
        if (spec.Type is not (ParameterType.Int or ParameterType.Double))
        {
            reader.Fail("resource_name", $"'{name}' must be an int or double parameter");
            return null;
        }

        var dim = context.Space.Dimensions[index];
        var min = dim.Numeric(double.NegativeInfinity).Number!.Value;
        var max = double.IsNaN(rl) ? dim.Numeric(double.PositiveInfinity).Number!.Value : rl;
        if (min <= 0)
        {
            reader.Fail("resource_name", $"'{name}' must have a positive min (the least resource a trial gets)");
            return null;
        }

        if (max < min * eta)
        {
            reader.Fail("r_l", $"the most resource ({max}) must be at least eta × the least ({min} × {eta})");
            return null;
        }

        return new ResourceSchedule(index, dim, min, max, eta);
    }

    /// <summary>The resource at a rung: min·eta^rung, the top rung max.</summary>
    public ParameterValue At(int rung) =>
        rung >= Rungs ? Dimension.Numeric(Max) : Dimension.Numeric(Min * Math.Pow(Eta, rung));

    /// <summary>The same configuration with a different resource.</summary>
    public ParameterAssignment With(ParameterAssignment assignment, ParameterValue resource)
    {
        var values = assignment.Values.ToArray();
        values[Index] = resource;
        return new ParameterAssignment(assignment.Space, values);
    }

    /// <summary>True when two assignments differ only in the resource.</summary>
    public bool SameConfiguration(ParameterAssignment a, ParameterAssignment b)
    {
        for (var i = 0; i < a.Count; i++)
        {
            if (i != Index && a[i].Text != b[i].Text)
            {
                return false;
            }
        }

        return true;
    }
}
