using YamlDotNet.RepresentationModel;

namespace Capstan.Core.Resources;

/// <summary>
/// Collects the errors of one resource. When the resource was read from YAML it knows the node
/// behind every field path, so an error named by path still points at a line and column; a field
/// that is missing points at its parent.
/// </summary>
public sealed class ResourceValidation
{
    private readonly string _source;
    private readonly YamlNode? _document;
    private readonly Dictionary<string, (YamlNode? Key, YamlNode Value)> _nodes = new(StringComparer.Ordinal);
    private readonly List<ResourceError> _errors = [];

    /// <summary>Validation without positions, for a resource that came as JSON or from code.</summary>
    public ResourceValidation(string source)
    {
        _source = source;
    }

    internal ResourceValidation(string source, YamlNode document)
        : this(source)
    {
        _document = document;
    }

    public IReadOnlyList<ResourceError> Errors => _errors;

    /// <summary>Validates a resource built in code or bound from JSON, and returns what is wrong.</summary>
    public static IReadOnlyList<ResourceError> Validate(Resource resource, string source)
    {
        ArgumentNullException.ThrowIfNull(resource);
        var validation = new ResourceValidation(source);
        resource.Validate(validation);
        return validation.Errors;
    }

    public void Error(string fieldPath, string message)
    {
        var node = Locate(fieldPath);
        Add(node, fieldPath, message);
    }

    /// <summary>An error about a field's name (a map key) rather than its value: points at the key.</summary>
    public void ErrorAtName(string fieldPath, string message)
    {
        var node = _nodes.TryGetValue(fieldPath, out var found) && found.Key is { } key ? key : Locate(fieldPath);
        Add(node, fieldPath, message);
    }

    internal void Error(YamlNode node, string fieldPath, string message) => Add(node, fieldPath, message);

    internal void Record(string fieldPath, YamlNode? key, YamlNode value) => _nodes[fieldPath] = (key, value);

    private void Add(YamlNode? node, string fieldPath, string message)
    {
        var line = node is null ? 0 : (int)node.Start.Line;
        var column = node is null ? 0 : (int)node.Start.Column;
        _errors.Add(new ResourceError(_source, line, column, fieldPath, message));
    }

    private YamlNode? Locate(string fieldPath)
    {
        if (_nodes.TryGetValue(fieldPath, out var found))
        {
            return found.Value;
        }

        // A missing field: point at the field that should contain it.
        for (var path = FieldPath.Parent(fieldPath); path.Length > 0; path = FieldPath.Parent(path))
        {
            if (_nodes.TryGetValue(path, out var parent))
            {
                return parent.Key ?? parent.Value;
            }
        }

        return _document;
    }
}
