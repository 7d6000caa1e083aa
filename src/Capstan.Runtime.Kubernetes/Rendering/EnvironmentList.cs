using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Rendering;

/// <summary>A container's <c>env</c> built in layers: a later variable of the same name replaces the earlier one in its place, so no name appears twice.</summary>
internal sealed class EnvironmentList
{
    private readonly List<V1EnvVar> _variables = [];
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);

    public void Set(string name, string value) => Set(new V1EnvVar { Name = name, Value = value });

    public void Set(V1EnvVar variable)
    {
        if (_index.TryGetValue(variable.Name, out var at))
        {
            _variables[at] = variable;
        }
        else
        {
            _index[variable.Name] = _variables.Count;
            _variables.Add(variable);
        }
    }

    public List<V1EnvVar> ToList() => [.. _variables];
}
