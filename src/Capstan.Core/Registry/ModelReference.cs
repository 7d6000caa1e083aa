using System.Globalization;

namespace Capstan.Core.Registry;

/// <summary>How a model to serve is named.</summary>
public enum ModelReferenceKind
{
    /// <summary><c>models:/name/3</c>: one registered version.</summary>
    RegistryVersion,

    /// <summary><c>models:/name@champion</c>: whatever version the alias points at, now and after it moves.</summary>
    RegistryAlias,

    /// <summary>A path or URI of an ONNX file (<c>model.onnx</c>, <c>file:///m.onnx</c>, <c>s3://bucket/m.onnx</c>).</summary>
    Uri,
}

/// <summary>
/// A parsed model reference, MLflow's <c>models:/</c> URI scheme or a file/URI, as <c>capstan serve</c> and
/// an InferenceService's <c>model</c> field take it.
/// </summary>
public sealed record ModelReference(ModelReferenceKind Kind, string Text, string? Name, long? Version, string? Alias)
{
    public const string RegistryScheme = "models:/";

    public bool IsRegistry => Kind != ModelReferenceKind.Uri;

    /// <summary>Parses <paramref name="text"/>; <paramref name="problem"/> says what is wrong when it returns null.</summary>
    public static ModelReference? TryParse(string? text, out string? problem)
    {
        problem = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            problem = "a model reference may not be empty";
            return null;
        }

        if (!text.StartsWith(RegistryScheme, StringComparison.Ordinal))
        {
            return new ModelReference(ModelReferenceKind.Uri, text, null, null, null);
        }

        var rest = text[RegistryScheme.Length..];
        var at = rest.LastIndexOf('@');
        if (at > 0 && at < rest.Length - 1)
        {
            return new ModelReference(ModelReferenceKind.RegistryAlias, text, rest[..at], null, rest[(at + 1)..]);
        }

        var slash = rest.LastIndexOf('/');
        if (slash > 0 && long.TryParse(rest[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var version) && version > 0)
        {
            return new ModelReference(ModelReferenceKind.RegistryVersion, text, rest[..slash], version, null);
        }

        problem = $"'{text}' names no version: use {RegistryScheme}NAME/VERSION, {RegistryScheme}NAME@ALIAS or a path to an .onnx file";
        return null;
    }

    public static ModelReference Parse(string text) =>
        TryParse(text, out var problem) ?? throw CapstanException.Invalid(problem!);

    public override string ToString() => Text;
}
