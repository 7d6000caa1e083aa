using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Capstan.Server.Tests;

public sealed class NativeApiTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private async Task<(string ExperimentId, string RunId)> CreateRunAsync()
    {
        var experiment = await server.PostAsync("/api/v1/experiments", $$"""{"name":"native-{{Guid.NewGuid():N}}","tags":[{"key":"a","value":"b"}]}""");
        Assert.Equal(HttpStatusCode.Created, experiment.Status);
        var experimentId = experiment.Body.GetProperty("experimentId").GetString()!;
        var run = await server.PostAsync("/api/v1/runs", $$"""{"experimentId":"{{experimentId}}","runName":"native"}""");
        Assert.Equal(HttpStatusCode.Created, run.Status);
        Assert.Equal("Running", run.Body.GetProperty("info").GetProperty("status").GetString());
        return (experimentId, run.Body.GetProperty("info").GetProperty("runId").GetString()!);
    }

    [Fact]
    public async Task Experiments_CreateGetByNameRenameDelete_RoundTrip()
    {
        var name = $"native-{Guid.NewGuid():N}";
        var created = await server.PostAsync("/api/v1/experiments", $$"""{"name":"{{name}}"}""");
        Assert.Equal(HttpStatusCode.Created, created.Status);
        var id = created.Body.GetProperty("experimentId").GetString();
        Assert.Equal("Active", created.Body.GetProperty("lifecycleStage").GetString());

        var byName = await server.GetAsync($"/api/v1/experiments/by-name/{name}");
        Assert.Equal(id, byName.Body.GetProperty("experimentId").GetString());

        var renamed = await server.SendAsync(HttpMethod.Patch, $"/api/v1/experiments/{id}", $$"""{"name":"{{name}}-2"}""");
        Assert.Equal(HttpStatusCode.NoContent, renamed.Status);
        Assert.Equal($"{name}-2", (await server.GetAsync($"/api/v1/experiments/{id}")).Body.GetProperty("name").GetString());

        var tag = await server.SendAsync(HttpMethod.Put, $"/api/v1/experiments/{id}/tags/owner", """{"value":"ada"}""");
        Assert.Equal(HttpStatusCode.NoContent, tag.Status);

        Assert.Equal(HttpStatusCode.NoContent, (await server.SendAsync(HttpMethod.Delete, $"/api/v1/experiments/{id}")).Status);
        var deleted = await server.GetAsync($"/api/v1/experiments?viewType=DeletedOnly&filter={Uri.EscapeDataString($"name = '{name}-2'")}");
        var item = Assert.Single(deleted.Body.GetProperty("items").EnumerateArray());
        Assert.Equal("Deleted", item.GetProperty("lifecycleStage").GetString());
        Assert.Contains(item.GetProperty("tags").EnumerateArray(), t => t.GetProperty("key").GetString() == "owner");
    }

    [Fact]
    public async Task Runs_BatchThenGetAndSearch_ReturnCoreRecords()
    {
        var (experimentId, runId) = await CreateRunAsync();
        var batch = await server.PostAsync($"/api/v1/runs/{runId}/batch", """
            {"metrics":[{"key":"acc","value":0.9,"timestamp":1,"step":0},{"key":"acc","value":0.95,"timestamp":2,"step":1}],
             "params":[{"key":"lr","value":"0.01"}]}
            """);
        Assert.Equal(HttpStatusCode.NoContent, batch.Status);

        var run = await server.GetAsync($"/api/v1/runs/{runId}");
        var metric = Assert.Single(run.Body.GetProperty("data").GetProperty("metrics").EnumerateArray());
        Assert.Equal(0.95, metric.GetProperty("value").GetDouble());

        var history = await server.GetAsync($"/api/v1/runs/{runId}/metrics/acc");
        Assert.Equal(2, history.Body.GetProperty("items").GetArrayLength());

        var updated = await server.SendAsync(HttpMethod.Patch, $"/api/v1/runs/{runId}", """{"status":"Finished","endTime":3}""");
        Assert.Equal(HttpStatusCode.OK, updated.Status);
        Assert.Equal("Finished", updated.Body.GetProperty("status").GetString());

        var search = await server.PostAsync("/api/v1/runs/search", $$"""{"experimentIds":["{{experimentId}}"],"filter":"metrics.acc > 0.9"}""");
        Assert.Equal(HttpStatusCode.OK, search.Status);
        Assert.Equal(runId, Assert.Single(search.Body.GetProperty("items").EnumerateArray()).GetProperty("info").GetProperty("runId").GetString());
    }

    [Fact]
    public async Task GetRun_Unknown_ReturnsProblemDetails404()
    {
        var reply = await server.GetAsync("/api/v1/runs/0123456789abcdef0123456789abcdef");

        Assert.Equal(HttpStatusCode.NotFound, reply.Status);
        Assert.Equal("application/problem+json", reply.ContentType);
        Assert.Equal(404, reply.Body.GetProperty("status").GetInt32());
        Assert.Equal("RESOURCE_DOES_NOT_EXIST", reply.Body.GetProperty("errorCode").GetString());
        Assert.False(string.IsNullOrEmpty(reply.Body.GetProperty("title").GetString()));
        Assert.False(string.IsNullOrEmpty(reply.Body.GetProperty("type").GetString()));
        Assert.False(string.IsNullOrEmpty(reply.Body.GetProperty("detail").GetString()));
    }

    [Fact]
    public async Task UnknownRoute_ReturnsProblemDetails404()
    {
        var reply = await server.GetAsync("/api/v1/no-such-thing");

        Assert.Equal(HttpStatusCode.NotFound, reply.Status);
        Assert.Equal("application/problem+json", reply.ContentType);
        Assert.Equal("RESOURCE_DOES_NOT_EXIST", reply.Body.GetProperty("errorCode").GetString());
    }

    [Fact]
    public async Task CreateExperiment_DuplicateName_Returns409AndMalformedBodyReturns400()
    {
        var name = $"dup-{Guid.NewGuid():N}";
        Assert.Equal(HttpStatusCode.Created, (await server.PostAsync("/api/v1/experiments", $$"""{"name":"{{name}}"}""")).Status);

        var duplicate = await server.PostAsync("/api/v1/experiments", $$"""{"name":"{{name}}"}""");
        Assert.Equal(HttpStatusCode.Conflict, duplicate.Status);
        Assert.Equal("RESOURCE_ALREADY_EXISTS", duplicate.Body.GetProperty("errorCode").GetString());

        var malformed = await server.PostAsync("/api/v1/experiments", """{"name": """);
        Assert.Equal(HttpStatusCode.BadRequest, malformed.Status);
        Assert.Equal("application/problem+json", malformed.ContentType);
        Assert.Equal("BAD_REQUEST", malformed.Body.GetProperty("errorCode").GetString());
    }

    [Fact]
    public async Task Models_VersionsAliasesAndLatest_RoundTrip()
    {
        var name = $"native-model-{Guid.NewGuid():N}";
        Assert.Equal(HttpStatusCode.Created, (await server.PostAsync("/api/v1/models", $$"""{"name":"{{name}}"}""")).Status);
        for (var i = 0; i < 2; i++)
        {
            var version = await server.PostAsync($"/api/v1/models/{name}/versions", """{"name":"ignored","source":"mlflow-artifacts:/1/x/artifacts/model"}""");
            Assert.Equal(HttpStatusCode.Created, version.Status);
            Assert.Equal(name, version.Body.GetProperty("name").GetString());
            Assert.Equal(JsonValueKind.Number, version.Body.GetProperty("version").ValueKind);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await server.SendAsync(HttpMethod.Put, $"/api/v1/models/{name}/aliases/champion", """{"version":1}""")).Status);
        var byAlias = await server.GetAsync($"/api/v1/models/{name}/aliases/champion");
        Assert.Equal(1, byAlias.Body.GetProperty("version").GetInt64());

        var latest = await server.GetAsync($"/api/v1/models/{name}/versions/latest");
        Assert.Equal(2, Assert.Single(latest.Body.EnumerateArray()).GetProperty("version").GetInt64());

        var described = await server.SendAsync(HttpMethod.Patch, $"/api/v1/models/{name}", """{"description":"iris"}""");
        Assert.Equal("iris", described.Body.GetProperty("description").GetString());

        var search = await server.GetAsync($"/api/v1/model-versions?filter={Uri.EscapeDataString($"name = '{name}'")}");
        Assert.Equal(2, search.Body.GetProperty("items").GetArrayLength());

        var missing = await server.GetAsync($"/api/v1/models/{name}/versions/9");
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
    }

    [Fact]
    public async Task RunArtifacts_UploadListDownload_RoundTripAndRejectEscapes()
    {
        var (_, runId) = await CreateRunAsync();
        using (var content = new StringContent("hello artifacts", Encoding.UTF8))
        {
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using var put = await server.Http.PutAsync($"/api/v1/runs/{runId}/artifacts/notes/readme.txt", content);
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            using var created = JsonDocument.Parse(await put.Content.ReadAsStringAsync());
            Assert.Equal("notes/readme.txt", created.RootElement.GetProperty("path").GetString());
            Assert.Equal(15, created.RootElement.GetProperty("fileSize").GetInt64());
        }

        var listing = await server.GetAsync($"/api/v1/runs/{runId}/artifacts?path=notes");
        var file = Assert.Single(listing.Body.GetProperty("items").EnumerateArray());
        Assert.Equal("notes/readme.txt", file.GetProperty("path").GetString());

        using (var download = await server.Http.GetAsync($"/api/v1/runs/{runId}/artifacts/notes/readme.txt"))
        {
            Assert.Equal(HttpStatusCode.OK, download.StatusCode);
            Assert.Equal("text/plain", download.Content.Headers.ContentType?.MediaType);
            Assert.Equal("hello artifacts", await download.Content.ReadAsStringAsync());
        }

        var escape = await server.GetAsync($"/api/v1/runs/{runId}/artifacts?path=../../x");
        Assert.Equal(HttpStatusCode.BadRequest, escape.Status);
        Assert.Equal("INVALID_PARAMETER_VALUE", escape.Body.GetProperty("errorCode").GetString());
    }

    [Theory]
    [InlineData("text/csv")]
    [InlineData("application/json")]
    [InlineData(null)]
    public async Task RunArtifacts_Upload_AcceptsAnyContentType(string? contentType)
    {
        var (_, runId) = await CreateRunAsync();
        using var content = new ByteArrayContent(Encoding.UTF8.GetBytes("a,b\n1,2\n"));
        content.Headers.ContentType = contentType is null ? null : new MediaTypeHeaderValue(contentType);

        using var put = await server.Http.PutAsync($"/api/v1/runs/{runId}/artifacts/data/table.csv", content);

        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        using var download = await server.Http.GetAsync($"/api/v1/runs/{runId}/artifacts/data/table.csv");
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal("a,b\n1,2\n", await download.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task OpenApi_Document_ListsNamedNativeEndpoints()
    {
        var reply = await server.GetAsync("/openapi/v1.json");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        var paths = reply.Body.GetProperty("paths");
        foreach (var path in new[] { "/api/v1/experiments", "/api/v1/runs/{id}", "/api/v1/runs/{id}/batch", "/api/v1/models/{name}/aliases/{alias}", "/api/v1/model-versions" })
        {
            Assert.True(paths.TryGetProperty(path, out _), $"missing {path}");
        }

        var getRun = paths.GetProperty("/api/v1/runs/{id}").GetProperty("get");
        Assert.Equal("GetRun", getRun.GetProperty("operationId").GetString());
        Assert.True(getRun.GetProperty("responses").GetProperty("404").GetProperty("content").TryGetProperty("application/problem+json", out _));
        Assert.Contains("\"operationId\": \"CreateExperiment\"", reply.Text.Replace("\":\"", "\": \"", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("/api/2.0/mlflow", reply.Text, StringComparison.Ordinal);
    }
}
