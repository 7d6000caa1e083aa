using System.Security.Cryptography;
using Capstan.Core;
using Capstan.Store.Artifacts;

namespace Capstan.Store.Tests.Artifacts;

public sealed class FolderArtifactStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "capstan-artifacts-" + Guid.NewGuid().ToString("N"));
    private readonly FolderArtifactStore _store;

    public FolderArtifactStoreTests() => _store = new FolderArtifactStore(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task Put_ThenOpenRead_ReturnsSameBytes()
    {
        var bytes = RandomNumberGenerator.GetBytes(300_000);

        var stored = await _store.PutAsync("1/run/artifacts/model/model.bin", new MemoryStream(bytes));
        await using var read = await _store.OpenReadAsync("1/run/artifacts/model/model.bin");
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);

        Assert.Equal(bytes.Length, stored.FileSize);
        Assert.Equal(bytes, copy.ToArray());
    }

    [Fact]
    public async Task Put_SameContentTwice_StoresOneBlob()
    {
        var bytes = "same content"u8.ToArray();

        await _store.PutAsync("a/one.txt", new MemoryStream(bytes));
        await _store.PutAsync("b/two.txt", new MemoryStream(bytes));

        var blobs = Directory.GetFiles(Path.Combine(_root, "blobs"), "*", SearchOption.AllDirectories);
        Assert.Single(blobs);
    }

    [Fact]
    public async Task Put_OverExistingPath_ReplacesContent()
    {
        await _store.PutAsync("notes.txt", new MemoryStream("first"u8.ToArray()));
        await _store.PutAsync("notes.txt", new MemoryStream("second"u8.ToArray()));

        await using var read = await _store.OpenReadAsync("notes.txt");
        using var reader = new StreamReader(read);
        Assert.Equal("second", await reader.ReadToEndAsync());
    }

    [Fact]
    public async Task List_Folder_ReturnsChildrenWithSizesAndFolders()
    {
        await _store.PutAsync("r/artifacts/model/model.zip", new MemoryStream(new byte[10]));
        await _store.PutAsync("r/artifacts/log.txt", new MemoryStream(new byte[3]));

        var entries = await _store.ListAsync("r/artifacts");

        Assert.Equal(
            [("r/artifacts/log.txt", false, (long?)3), ("r/artifacts/model", true, null)],
            entries.Select(e => (e.Path, e.IsDir, e.FileSize)).ToArray());
    }

    [Fact]
    public async Task List_MissingFolder_ReturnsEmpty()
    {
        Assert.Empty(await _store.ListAsync("nothing/here"));
    }

    [Theory]
    [InlineData("../outside.txt")]
    [InlineData("a/../../outside.txt")]
    [InlineData("/etc/passwd")]
    [InlineData("a\\..\\b")]
    [InlineData("a/./b")]
    public async Task Put_PathEscapingRoot_IsRejectedAndWritesNothingOutside(string path)
    {
        var error = await Assert.ThrowsAsync<CapstanException>(() => _store.PutAsync(path, new MemoryStream([1])));

        Assert.Equal(ErrorCode.InvalidParameterValue, error.Code);
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(_root)!, "outside.txt")));
    }

    [Fact]
    public async Task OpenRead_Missing_ThrowsNotFound()
    {
        var error = await Assert.ThrowsAsync<CapstanException>(() => _store.OpenReadAsync("missing.bin"));

        Assert.Equal(ErrorCode.ResourceDoesNotExist, error.Code);
    }

    [Fact]
    public async Task Delete_Folder_RemovesEverythingBeneath()
    {
        await _store.PutAsync("run/artifacts/a.txt", new MemoryStream([1]));
        await _store.PutAsync("run/artifacts/sub/b.txt", new MemoryStream([2]));

        await _store.DeleteAsync("run/artifacts");

        Assert.Empty(await _store.ListAsync("run"));
        await Assert.ThrowsAsync<CapstanException>(() => _store.OpenReadAsync("run/artifacts/sub/b.txt"));
    }

    [Fact]
    public async Task Put_UnderExistingFile_IsRejected()
    {
        await _store.PutAsync("model", new MemoryStream([1]));

        var error = await Assert.ThrowsAsync<CapstanException>(() => _store.PutAsync("model/weights.bin", new MemoryStream([2])));

        Assert.Equal(ErrorCode.InvalidParameterValue, error.Code);
    }

    [Fact]
    public async Task Put_FailingSourceStream_LeavesNoArtifactVisible()
    {
        await Assert.ThrowsAsync<IOException>(() => _store.PutAsync("broken.bin", new FailingStream()));

        Assert.Empty(await _store.ListAsync(null));
        Assert.Empty(Directory.GetFiles(Path.Combine(_root, "staging")));
    }

    private sealed class FailingStream : MemoryStream
    {
        private int _reads;

        public FailingStream()
            : base(new byte[1000])
        {
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            _reads++ == 0 ? base.ReadAsync(buffer[..10], cancellationToken) : throw new IOException("connection reset");
    }
}
