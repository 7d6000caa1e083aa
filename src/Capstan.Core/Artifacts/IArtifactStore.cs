namespace Capstan.Core.Artifacts;

/// <summary>An entry of an artifact listing; <see cref="Path"/> is relative to the store root.</summary>
public sealed record ArtifactFile(string Path, bool IsDir, long? FileSize);

/// <summary>
/// Stores artifacts under slash-separated paths relative to the store's root
/// (e.g. <c>1/4f3c.../artifacts/model/model.zip</c>). Content is streamed in both directions;
/// a path that would leave the root is rejected with <see cref="ErrorCode.InvalidParameterValue"/>.
/// </summary>
public interface IArtifactStore
{
    /// <summary>Writes <paramref name="content"/> at <paramref name="path"/>, replacing what was there.</summary>
    Task<ArtifactFile> PutAsync(string path, Stream content, CancellationToken cancellationToken = default);

    /// <summary>Opens the artifact for reading; throws <see cref="ErrorCode.ResourceDoesNotExist"/> when absent.</summary>
    Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>Lists the direct children of the folder at <paramref name="path"/> (empty or null: the root).</summary>
    Task<IReadOnlyList<ArtifactFile>> ListAsync(string? path, CancellationToken cancellationToken = default);

    /// <summary>Deletes the artifact or folder at <paramref name="path"/>; absent paths are not an error.</summary>
    Task DeleteAsync(string path, CancellationToken cancellationToken = default);
}
