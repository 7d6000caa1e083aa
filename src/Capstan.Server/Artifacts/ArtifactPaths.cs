using Capstan.Core;
using Microsoft.AspNetCore.StaticFiles;

namespace Capstan.Server.Artifacts;

/// <summary>Validates and joins the slash-separated artifact paths clients send.</summary>
internal static class ArtifactPaths
{
    private static readonly FileExtensionContentTypeProvider s_contentTypes = new();

    /// <summary>
    /// A relative path with empty segments dropped; <c>..</c>, <c>.</c>, absolute paths, backslashes
    /// and drive letters are rejected so no request can name a file outside the folder it is scoped to.
    /// </summary>
    public static string Normalize(string? path, string field)
    {
        if (string.IsNullOrEmpty(path))
        {
            return string.Empty;
        }

        if (path[0] == '/' || path.Contains('\\', StringComparison.Ordinal) || path.Contains(':', StringComparison.Ordinal) || path.Contains('\0', StringComparison.Ordinal))
        {
            throw CapstanException.Invalid($"Invalid value '{path}' for parameter '{field}': the path must be relative, without backslashes or drive letters.");
        }

        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        foreach (var segment in segments)
        {
            if (segment is ".." or ".")
            {
                throw CapstanException.Invalid($"Invalid value '{path}' for parameter '{field}': the path must not contain '.' or '..' segments.");
            }
        }

        return segments.Length == 1 ? segments[0] : string.Join('/', segments);
    }

    public static string Join(string root, string relative) =>
        relative.Length == 0 ? root : root.Length == 0 ? relative : $"{root}/{relative}";

    /// <summary>A store path made relative to <paramref name="root"/>.</summary>
    public static string RelativeTo(string root, string storePath) =>
        root.Length > 0 && storePath.Length > root.Length && storePath.StartsWith(root, StringComparison.Ordinal) && storePath[root.Length] == '/'
            ? storePath[(root.Length + 1)..]
            : storePath;

    public static string FileName(string path)
    {
        var slash = path.LastIndexOf('/');
        return slash < 0 ? path : path[(slash + 1)..];
    }

    /// <summary>A text or image content type by extension; anything else is served as bytes.</summary>
    public static string ContentType(string path) =>
        s_contentTypes.TryGetContentType(path, out var type) && (type.StartsWith("text/", StringComparison.Ordinal) || type.StartsWith("image/", StringComparison.Ordinal))
            ? type
            : "application/octet-stream";
}
