using System.Globalization;
using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.Registry;
using Capstan.Core.Storage;

namespace Capstan.Serving.Registry;

/// <summary>A model to serve, found: its served name and version, and a local .onnx file.</summary>
public sealed record ResolvedModel(string Name, string Version, string OnnxPath);

/// <summary>
/// Turns what a user names into a local ONNX file: a path to an .onnx file, <c>models:/name/3</c>,
/// or <c>models:/name@alias</c>. Registry versions are fetched through the artifact store
/// (<c>model.onnx</c> inside the version's source folder) into a cache folder, once per version.
/// Shared by <c>capstan serve</c> and the InferenceService reconciler.
/// </summary>
public sealed class ModelResolver(IMetadataStore metadata, IArtifactStore artifacts, string cacheRoot)
{
    public const string RegistryScheme = "models:/";
    public const string OnnxFileName = "model.onnx";

    public async Task<ResolvedModel> ResolveAsync(string reference, string? servedName = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reference);
        if (!reference.StartsWith(RegistryScheme, StringComparison.Ordinal))
        {
            return ResolveFile(reference, servedName);
        }

        var version = await FindVersionAsync(reference[RegistryScheme.Length..], cancellationToken).ConfigureAwait(false);
        var local = await FetchAsync(version, cancellationToken).ConfigureAwait(false);
        return new ResolvedModel(servedName ?? version.Name, version.Version.ToString(CultureInfo.InvariantCulture), local);
    }

    /// <summary>A local .onnx file, served as version 1 under its file name unless named.</summary>
    public static ResolvedModel ResolveFile(string reference, string? servedName = null)
    {
        var path = Path.GetFullPath(reference);
        if (!File.Exists(path))
        {
            throw CapstanException.Invalid($"Model file '{reference}' does not exist (give a .onnx file, models:/name/VERSION or models:/name@ALIAS).");
        }

        return new ResolvedModel(servedName ?? Path.GetFileNameWithoutExtension(path), "1", path);
    }

    private Task<ModelVersion> FindVersionAsync(string rest, CancellationToken cancellationToken)
    {
        var at = rest.LastIndexOf('@');
        if (at > 0)
        {
            return metadata.GetModelVersionByAliasAsync(rest[..at], rest[(at + 1)..], cancellationToken);
        }

        var slash = rest.LastIndexOf('/');
        if (slash > 0 && long.TryParse(rest[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return metadata.GetModelVersionAsync(rest[..slash], number, cancellationToken);
        }

        throw CapstanException.Invalid($"'{RegistryScheme}{rest}' names no version: use {RegistryScheme}NAME/VERSION or {RegistryScheme}NAME@ALIAS.");
    }

    private async Task<string> FetchAsync(ModelVersion version, CancellationToken cancellationToken)
    {
        var folder = Path.Combine(cacheRoot, Sanitize(version.Name), version.Version.ToString(CultureInfo.InvariantCulture));
        var target = Path.Combine(folder, OnnxFileName);
        if (File.Exists(target))
        {
            return target;
        }

        var source = version.Source.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)
            ? ArtifactUri.ToStorePath(version.Source)
            : ArtifactUri.ToStorePath(version.Source).TrimEnd('/') + "/" + OnnxFileName;
        Directory.CreateDirectory(folder);
        var temporary = target + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            var input = await artifacts.OpenReadAsync(source, cancellationToken).ConfigureAwait(false);
            await using (input.ConfigureAwait(false))
            {
                var output = File.Create(temporary);
                await using (output.ConfigureAwait(false))
                {
                    await input.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
                }
            }

            File.Move(temporary, target, overwrite: true);
            return target;
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    private static string Sanitize(string name)
    {
        var invalid = Path.GetInvalidFileNameChars();
        return string.Concat(name.Select(c => invalid.Contains(c) || c == '/' ? '_' : c));
    }
}
