using System.Collections;

namespace Capstan.Tuning;

/// <summary>
/// One parameter's value: <see cref="Text"/> is what Katib substitutes into <c>${trialParameters.x}</c>;
/// <see cref="Number"/> is the numeric value for double, int and discrete parameters, null for categorical ones.
/// </summary>
public readonly record struct ParameterValue(string Text, double? Number)
{
    public override string ToString() => Text;
}

/// <summary>A value for every parameter of a search space, in the space's order.</summary>
public sealed class ParameterAssignment : IReadOnlyDictionary<string, ParameterValue>, IEquatable<ParameterAssignment>
{
    private readonly ParameterValue[] _values;

    internal ParameterAssignment(SearchSpace space, ParameterValue[] values)
    {
        Space = space;
        _values = values;
    }

    public SearchSpace Space { get; }

    public ParameterValue this[string key] =>
        Space.IndexOf(key) is >= 0 and var i ? _values[i] : throw new KeyNotFoundException($"no parameter '{key}'");

    public ParameterValue this[int index] => _values[index];

    public IEnumerable<string> Keys => Space.Parameters.Select(p => p.Name);

    public IEnumerable<ParameterValue> Values => _values;

    public int Count => _values.Length;

    /// <summary>The values as Katib passes them to a trial: name to formatted string.</summary>
    public IReadOnlyDictionary<string, string> ToStrings() =>
        Space.Parameters.Select((p, i) => (p.Name, _values[i].Text)).ToDictionary(x => x.Name, x => x.Text, StringComparer.Ordinal);

    public bool ContainsKey(string key) => Space.IndexOf(key) >= 0;

    public bool TryGetValue(string key, out ParameterValue value)
    {
        var i = Space.IndexOf(key);
        value = i >= 0 ? _values[i] : default;
        return i >= 0;
    }

    public IEnumerator<KeyValuePair<string, ParameterValue>> GetEnumerator() =>
        Space.Parameters.Select((p, i) => new KeyValuePair<string, ParameterValue>(p.Name, _values[i])).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public bool Equals(ParameterAssignment? other) =>
        other is not null && other.Count == Count && _values.Zip(other._values).All(x => x.First.Text == x.Second.Text);

    public override bool Equals(object? obj) => Equals(obj as ParameterAssignment);

    public override int GetHashCode()
    {
        var hash = default(HashCode);
        foreach (var v in _values)
        {
            hash.Add(v.Text, StringComparer.Ordinal);
        }

        return hash.ToHashCode();
    }

    public override string ToString() => string.Join(", ", this.Select(kv => $"{kv.Key}={kv.Value.Text}"));
}
