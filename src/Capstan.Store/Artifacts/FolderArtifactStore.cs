using System.Globalization;
using System.Security.Cryptography;
using Capstan.Core;
using Capstan.Core.Artifacts;

namespace Capstan.Store.Artifacts;

/// <summary>
/// A content-addressed artifact folder. Bytes live once per content in <c>blobs/sha256/ab/abcd...</c>;
/// the logical tree lives in <c>refs/</c>, where each artifact path is a small file naming its blob
/// and size. Uploads stream to a temporary file while hashing, are flushed to disk, then renamed into
/// place, so a crash never leaves a half-written artifact visible and identical files are stored once.
/// </summary>
public sealed class FolderArtifactStore : IArtifactStore
{
    private const int BufferSize = 81_920;
    private readonly string _refs;
    private readonly string _blobs;
    private readonly string _staging;

    public FolderArtifactStore(string root)
    {
        var fullRoot = Path.GetFullPath(root);
        _refs = Path.Combine(fullRoot, "refs");
        _blobs = Path.Combine(fullRoot, "blobs", "sha256");
        _staging = Path.Combine(fullRoot, "staging");
        Directory.CreateDirectory(_refs);
        Directory.CreateDirectory(_blobs);
        Directory.CreateDirectory(_staging);
    }

    public async Task<ArtifactFile> PutAsync(string path, Stream content, CancellationToken cancellationToken = default)
    {
        var (logical, refPath) = Resolve(path, allowRoot: false);
        if (Directory.Exists(refPath))
        {
            throw CapstanException.Invalid($"Artifact path '{logical}' is a folder.");
        }

        var staged = Path.Combine(_staging, Guid.NewGuid().ToString("N"));
        try
        {
            string digest;
            long size;
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            await using (var file = new FileStream(staged, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.Asynchronous))
            {
                var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(BufferSize);
                try
                {
                    int read;
                    while ((read = await content.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false)) > 0)
                    {
                        hash.AppendData(buffer, 0, read);
                        await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    }
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }

                file.Flush(flushToDisk: true);
                size = file.Length;
                digest = Convert.ToHexStringLower(hash.GetHashAndReset());
            }

            var blob = BlobPath(digest);
            Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
            if (File.Exists(blob))
            {
                File.Delete(staged);
            }
            else
            {
                File.Move(staged, blob, overwrite: true);
            }

            WriteRef(refPath, digest, size);
            return new ArtifactFile(logical, IsDir: false, size);
        }
        finally
        {
            if (File.Exists(staged))
            {
                File.Delete(staged);
            }
        }
    }

    public Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default)
    {
        var (logical, refPath) = Resolve(path, allowRoot: false);
        if (!File.Exists(refPath))
        {
            throw CapstanException.NotFound($"Artifact '{logical}' does not exist.");
        }

        var (digest, _) = ReadRef(refPath);
        Stream stream = new FileStream(BlobPath(digest), FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize,
            FileOptions.Asynchronous | FileOptions.SequentialScan);
        return Task.FromResult(stream);
    }

    public Task<IReadOnlyList<ArtifactFile>> ListAsync(string? path, CancellationToken cancellationToken = default)
    {
        var (logical, refPath) = Resolve(path ?? string.Empty, allowRoot: true);
        if (!Directory.Exists(refPath))
        {
            return Task.FromResult<IReadOnlyList<ArtifactFile>>([]);
        }

        var prefix = logical.Length == 0 ? string.Empty : logical + "/";
        var entries = new List<ArtifactFile>();
        foreach (var dir in Directory.EnumerateDirectories(refPath))
        {
            entries.Add(new ArtifactFile(prefix + Path.GetFileName(dir), IsDir: true, FileSize: null));
        }

        foreach (var file in Directory.EnumerateFiles(refPath))
        {
            entries.Add(new ArtifactFile(prefix + Path.GetFileName(file), IsDir: false, ReadRef(file).Size));
        }

        entries.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return Task.FromResult<IReadOnlyList<ArtifactFile>>(entries);
    }

    public Task DeleteAsync(string path, CancellationToken cancellationToken = default)
    {
        var (_, refPath) = Resolve(path, allowRoot: false);
        if (Directory.Exists(refPath))
        {
            Directory.Delete(refPath, recursive: true);
        }
        else if (File.Exists(refPath))
        {
            File.Delete(refPath);
        }

        // Blobs are shared by content and left in place; a later sweep can collect unreferenced ones.
        return Task.CompletedTask;
    }

    /// <summary>
    /// Turns a slash-separated artifact path into its normalised logical form and the ref file's
    /// full path, rejecting anything that could leave the root: absolute paths, <c>..</c>,
    /// backslashes and control characters.
    /// </summary>
    private (string Logical, string RefPath) Resolve(string path, bool allowRoot)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.StartsWith('/') || path.Contains('\\', StringComparison.Ordinal) || path.Any(char.IsControl))
        {
            throw CapstanException.Invalid($"Invalid artifact path '{path}': it must be relative, use '/' and contain no control characters.");
        }

        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Any(s => s is "." or ".."))
        {
            throw CapstanException.Invalid($"Invalid artifact path '{path}': '.' and '..' segments are not allowed.");
        }

        if (segments.Length == 0 && !allowRoot)
        {
            throw CapstanException.Invalid("An artifact path is required.");
        }

        var logical = string.Join('/', segments);
        var full = Path.GetFullPath(Path.Combine(_refs, Path.Combine(segments)));
        if (full != _refs && !full.StartsWith(_refs + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw CapstanException.Invalid($"Invalid artifact path '{path}': it escapes the artifact root.");
        }

        return (logical, full);
    }

    private string BlobPath(string digest) => Path.Combine(_blobs, digest[..2], digest);

    private void WriteRef(string refPath, string digest, long size)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(refPath)!);
        }
        catch (IOException)
        {
            throw CapstanException.Invalid($"Cannot store artifact at '{Path.GetRelativePath(_refs, refPath)}': a parent of that path is a file.");
        }

        var temp = Path.Combine(_staging, Guid.NewGuid().ToString("N") + ".ref");
        using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        using (var writer = new StreamWriter(file))
        {
            writer.Write(string.Create(CultureInfo.InvariantCulture, $"sha256:{digest} {size}\n"));
            writer.Flush();
            file.Flush(flushToDisk: true);
        }

        File.Move(temp, refPath, overwrite: true);
    }

    private static (string Digest, long Size) ReadRef(string refPath)
    {
        var text = File.ReadAllText(refPath).Trim();
        var space = text.IndexOf(' ', StringComparison.Ordinal);
        if (!text.StartsWith("sha256:", StringComparison.Ordinal) || space < 0)
        {
            throw new InvalidDataException($"Artifact reference '{refPath}' is corrupt.");
        }

        return (text[7..space], long.Parse(text.AsSpan(space + 1), CultureInfo.InvariantCulture));
    }
}
