using System.Net;
using System.Net.Http.Headers;

namespace Capstan.Server.Tests;

public sealed class ArtifactProxyTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Proxy = "/api/2.0/mlflow-artifacts/artifacts";

    private async Task<(string RunId, string Root)> CreateRunAsync()
    {
        var experimentId = await server.CreateExperimentAsync($"art-{Guid.NewGuid():N}");
        var runId = await server.CreateRunAsync(experimentId);
        return (runId, $"{experimentId}/{runId}/artifacts");
    }

    [Fact]
    public async Task Proxy_UploadListDownload_RoundTripsTheBytes()
    {
        var (runId, root) = await CreateRunAsync();
        var bytes = new byte[300_000];
        Random.Shared.NextBytes(bytes);

        using (var content = new ByteArrayContent(bytes))
        {
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using var put = await server.Http.PutAsync($"{Proxy}/{root}/model/weights.bin", content);
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        }

        var listing = await server.GetAsync($"{Proxy}?path={root}/model");
        Assert.Equal(HttpStatusCode.OK, listing.Status);
        var file = Assert.Single(listing.Body.GetProperty("files").EnumerateArray());
        Assert.Equal("weights.bin", file.GetProperty("path").GetString());
        Assert.False(file.GetProperty("is_dir").GetBoolean());
        Assert.Equal(bytes.Length, file.GetProperty("file_size").GetInt64());

        var folder = Assert.Single((await server.GetAsync($"{Proxy}?path={root}")).Body.GetProperty("files").EnumerateArray());
        Assert.Equal("model", folder.GetProperty("path").GetString());
        Assert.True(folder.GetProperty("is_dir").GetBoolean());

        var downloaded = await server.Http.GetByteArrayAsync($"{Proxy}/{root}/model/weights.bin");
        Assert.Equal(bytes, downloaded);

        var runListing = await server.GetAsync($"/api/2.0/mlflow/artifacts/list?run_id={runId}&path=model");
        Assert.Equal($"mlflow-artifacts:/{root}", runListing.Body.GetProperty("root_uri").GetString());
        Assert.Equal("model/weights.bin", Assert.Single(runListing.Body.GetProperty("files").EnumerateArray()).GetProperty("path").GetString());

        using (var delete = await server.Http.DeleteAsync($"{Proxy}/{root}/model/weights.bin"))
        {
            Assert.Equal(HttpStatusCode.OK, delete.StatusCode);
        }

        var missing = await server.GetAsync($"{Proxy}/{root}/model/weights.bin");
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
        Assert.Equal("RESOURCE_DOES_NOT_EXIST", missing.ErrorCode);
    }

    [Fact]
    public async Task Proxy_UploadLargerThanKestrelsDefaultBodyLimit_StreamsThrough()
    {
        var (_, root) = await CreateRunAsync();
        const long Size = 40L * 1024 * 1024; // Kestrel's default request body limit is 30 MB.

        using (var content = new StreamContent(new PatternStream(Size)))
        {
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using var put = await server.Http.PutAsync($"{Proxy}/{root}/big.bin", content);
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        }

        var file = Assert.Single((await server.GetAsync($"{Proxy}?path={root}")).Body.GetProperty("files").EnumerateArray());
        Assert.Equal(Size, file.GetProperty("file_size").GetInt64());

        using var download = await server.Http.GetAsync($"{Proxy}/{root}/big.bin", HttpCompletionOption.ResponseHeadersRead);
        await using var body = await download.Content.ReadAsStreamAsync();
        var expected = new PatternStream(Size);
        var actual = new byte[81920];
        var want = new byte[81920];
        long total = 0;
        int read;
        while ((read = await body.ReadAsync(actual)) > 0)
        {
            await expected.ReadExactlyAsync(want.AsMemory(0, read));
            Assert.True(actual.AsSpan(0, read).SequenceEqual(want.AsSpan(0, read)), $"bytes differ near offset {total}");
            total += read;
        }

        Assert.Equal(Size, total);
    }

    /// <summary>A deterministic stream of <paramref name="length"/> bytes that never sits in memory whole.</summary>
    private sealed class PatternStream(long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            for (var i = 0; i < n; i++)
            {
                buffer[offset + i] = (byte)((_position + i) * 31 % 251);
            }

            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public async Task Proxy_PathEscapingTheRoot_Returns400()
    {
        var listing = await server.GetAsync($"{Proxy}?path=1/../../etc");
        Assert.Equal(HttpStatusCode.BadRequest, listing.Status);
        Assert.Equal("INVALID_PARAMETER_VALUE", listing.ErrorCode);

        var absolute = await server.GetAsync($"{Proxy}?path=/etc");
        Assert.Equal(HttpStatusCode.BadRequest, absolute.Status);

        var (runId, _) = await CreateRunAsync();
        var runListing = await server.GetAsync($"/api/2.0/mlflow/artifacts/list?run_id={runId}&path=../../other");
        Assert.Equal(HttpStatusCode.BadRequest, runListing.Status);
        Assert.Equal("INVALID_PARAMETER_VALUE", runListing.ErrorCode);
    }
}
