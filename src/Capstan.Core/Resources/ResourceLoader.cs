using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Capstan.Core.Resources;

/// <summary>What reading a YAML file gave: the valid resources, defaults applied, and every error found.</summary>
public sealed record ResourceLoadResult(IReadOnlyList<Resource> Resources, IReadOnlyList<ResourceError> Errors)
{
    /// <summary>What was translated from a foreign format (a Katib Experiment) and what could not be, to show the user.</summary>
    public IReadOnlyList<ResourceNote> Notes { get; init; } = [];
}

/// <summary>
/// Reads multi-document YAML into typed resources. Every document is validated before anything is
/// returned, and every error in every document is reported with its file, line, column and field
/// path; defaults are applied to resources that are valid.
/// </summary>
public static partial class ResourceLoader
{
    /// <summary>The resources of a file; throws <see cref="ResourceValidationException"/> listing every error.</summary>
    public static IReadOnlyList<Resource> LoadFile(string path) => Load(File.ReadAllText(path), path);

    /// <summary>The resources of YAML text; <paramref name="source"/> names it in errors.</summary>
    public static IReadOnlyList<Resource> Load(string yaml, string source)
    {
        var result = Read(yaml, source);
        return result.Errors.Count > 0 ? throw new ResourceValidationException(result.Errors) : result.Resources;
    }

    /// <summary>Reads without throwing: the valid resources and the errors of the others.</summary>
    public static ResourceLoadResult Read(string yaml, string source)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        var stream = new YamlStream();
        var scanner = new Scanner(new StringReader(yaml));
        try
        {
            stream.Load(new Parser(scanner));
        }
        catch (YamlException e)
        {
            var error = new ResourceError(source, (int)e.Start.Line, (int)e.Start.Column, "", MarkPrefix().Replace(e.Message, ""));
            return new ResourceLoadResult([], [error]);
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner fails this way, without a mark, on some unterminated flow collections.
            var at = scanner.CurrentPosition;
            var error = new ResourceError(source, (int)at.Line, (int)at.Column, "", "invalid YAML: is a '[' or '{' left unclosed?");
            return new ResourceLoadResult([], [error]);
        }

        var resources = new List<Resource>();
        var errors = new List<ResourceError>();
        var notes = new List<ResourceNote>();
        var seen = new Dictionary<(string, string, string), YamlNode>();
        foreach (var document in stream.Documents)
        {
            if (document.RootNode is YamlScalarNode empty && YamlScalars.IsNull(empty))
            {
                continue;
            }

            var validation = new ResourceValidation(source, document.RootNode);
            var resource = KatibTranslation.IsKatib(document.RootNode)
                ? KatibTranslation.Translate((YamlMappingNode)document.RootNode, validation, source, notes)
                : ReadDocument(document.RootNode, validation);
            if (resource?.Metadata.Name is { } name)
            {
                var identity = (resource.Kind, resource.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace, name);
                if (!seen.TryAdd(identity, document.RootNode))
                {
                    validation.Error("metadata.name", $"{resource.Kind} '{name}' is defined twice (first at line {seen[identity].Start.Line})");
                }
            }

            errors.AddRange(validation.Errors);
            if (resource is not null && validation.Errors.Count == 0)
            {
                resource.ApplyDefaults();
                resources.Add(resource);
            }
        }

        return new ResourceLoadResult(resources, [.. errors.OrderBy(e => (e.Line, e.Column))]) { Notes = notes };
    }

    internal static Resource? ReadDocument(YamlNode root, ResourceValidation validation)
    {
        if (root is not YamlMappingNode mapping)
        {
            validation.Error(root, "", "expected a resource: a map with apiVersion, kind, metadata and spec");
            return null;
        }

        CheckApiVersion(mapping, validation);
        var type = KindType(mapping, validation);
        if (type is null)
        {
            return null;
        }

        var resource = (Resource)new YamlBinder(validation).Bind(root, type, "")!;
        resource.Validate(validation);
        return resource;
    }

    private static void CheckApiVersion(YamlMappingNode mapping, ResourceValidation validation)
    {
        if (!mapping.Children.TryGetValue(new YamlScalarNode("apiVersion"), out var node))
        {
            validation.Error(mapping, "apiVersion", $"missing required field 'apiVersion' (use {Resource.V1Alpha1})");
        }
        else if (node is YamlScalarNode { Value: { } version } && version != Resource.V1Alpha1)
        {
            validation.Error(node, "apiVersion", $"unknown apiVersion '{version}' (expected {Resource.V1Alpha1})");
        }
    }

    private static Type? KindType(YamlMappingNode mapping, ResourceValidation validation)
    {
        var known = string.Join(", ", ResourceKinds.Names);
        if (!mapping.Children.TryGetValue(new YamlScalarNode("kind"), out var node))
        {
            validation.Error(mapping, "kind", $"missing required field 'kind' (one of: {known})");
            return null;
        }

        var kind = (node as YamlScalarNode)?.Value ?? "";
        if (!ResourceKinds.IsKnown(kind))
        {
            var suggestion = SpellingSuggestion.Closest(kind, ResourceKinds.Names);
            var hint = suggestion is null ? $"one of: {known}" : $"did you mean '{suggestion}'?";
            validation.Error(node, "kind", $"unknown kind '{kind}' ({hint})");
            return null;
        }

        var type = ResourceKinds.TypeOf(kind);
        if (type is null)
        {
            validation.Error(node, "kind", $"kind '{kind}' is not supported yet");
        }

        return type;
    }

    [GeneratedRegex(@"^\(Line: \d+, Col: \d+, Idx: \d+\) - \(Line: \d+, Col: \d+, Idx: \d+\): ")]
    private static partial Regex MarkPrefix();
}
