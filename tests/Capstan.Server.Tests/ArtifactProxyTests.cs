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
