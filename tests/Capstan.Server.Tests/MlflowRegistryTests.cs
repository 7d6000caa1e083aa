using System.Net;
using System.Text.Json;

namespace Capstan.Server.Tests;

public sealed class MlflowRegistryTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Api = "/api/2.0/mlflow/";

    private async Task<string> CreateModelWithVersionsAsync(int versions)
    {
        var name = $"model-{Guid.NewGuid():N}";
        var created = await server.MlflowAsync("registered-models/create", $$"""{"name":"{{name}}","description":"first","tags":[{"key":"task","value":"cls"}]}""");
        Assert.Equal(name, created.GetProperty("registered_model").GetProperty("name").GetString());
        var runId = await server.CreateRunAsync(await server.CreateExperimentAsync($"reg-{Guid.NewGuid():N}"));
        for (var i = 1; i <= versions; i++)
        {
            var version = await server.MlflowAsync("model-versions/create", $$"""{"name":"{{name}}","source":"runs:/{{runId}}/model","run_id":"{{runId}}"}""");
            var mv = version.GetProperty("model_version");
            Assert.Equal(JsonValueKind.String, mv.GetProperty("version").ValueKind);
            Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), mv.GetProperty("version").GetString());
            Assert.Equal("READY", mv.GetProperty("status").GetString());
            Assert.Equal(runId, mv.GetProperty("run_id").GetString());
            Assert.Equal(JsonValueKind.Number, mv.GetProperty("creation_timestamp").ValueKind);
        }

        return name;
    }

    [Fact]
    public async Task Alias_SetThenResolve_ReturnsTheAliasedVersion()
    {
        var name = await CreateModelWithVersionsAsync(2);

        await server.MlflowAsync("registered-models/alias", $$"""{"name":"{{name}}","alias":"champion","version":"1"}""");

        var resolved = await server.GetAsync($"{Api}registered-models/alias?name={name}&alias=champion");
        Assert.Equal(HttpStatusCode.OK, resolved.Status);
        var mv = resolved.Body.GetProperty("model_version");
        Assert.Equal("1", mv.GetProperty("version").GetString());
        Assert.Contains("champion", mv.GetProperty("aliases").EnumerateArray().Select(a => a.GetString()));

        var model = (await server.GetAsync($"{Api}registered-models/get?name={name}")).Body.GetProperty("registered_model");
        var alias = Assert.Single(model.GetProperty("aliases").EnumerateArray());
        Assert.Equal("champion", alias.GetProperty("alias").GetString());
        Assert.Equal("1", alias.GetProperty("version").GetString());
        Assert.Equal("first", model.GetProperty("description").GetString());
        Assert.Equal(JsonValueKind.Number, model.GetProperty("creation_timestamp").ValueKind);
        Assert.Equal(JsonValueKind.Number, model.GetProperty("last_updated_timestamp").ValueKind);
        Assert.Equal("cls", Assert.Single(model.GetProperty("tags").EnumerateArray()).GetProperty("value").GetString());

        var deleted = await server.SendAsync(HttpMethod.Delete, $"{Api}registered-models/alias", $$"""{"name":"{{name}}","alias":"champion"}""");
        Assert.Equal(HttpStatusCode.OK, deleted.Status);
        var gone = await server.GetAsync($"{Api}registered-models/alias?name={name}&alias=champion");
        Assert.Equal(HttpStatusCode.NotFound, gone.Status);
        Assert.Equal("RESOURCE_DOES_NOT_EXIST", gone.ErrorCode);
    }

    [Fact]
    public async Task GetLatestVersions_AfterTwoVersions_ReturnsTheNewest()
    {
        var name = await CreateModelWithVersionsAsync(2);

        var latest = await server.MlflowAsync("registered-models/get-latest-versions", $$"""{"name":"{{name}}"}""");

        var version = Assert.Single(latest.GetProperty("model_versions").EnumerateArray());
        Assert.Equal("2", version.GetProperty("version").GetString());
        Assert.Equal("None", version.GetProperty("current_stage").GetString());
    }

    [Fact]
    public async Task Search_ByNameFilter_FindsModelsAndVersions()
    {
        var name = await CreateModelWithVersionsAsync(2);

        var models = await server.GetAsync($"{Api}registered-models/search?filter={Uri.EscapeDataString($"name LIKE '{name[..12]}%'")}&max_results=50");
        Assert.Equal(HttpStatusCode.OK, models.Status);
        Assert.Contains(name, models.Body.GetProperty("registered_models").EnumerateArray().Select(m => m.GetProperty("name").GetString()));

        var versions = await server.GetAsync($"{Api}model-versions/search?filter={Uri.EscapeDataString($"name = '{name}'")}");
        Assert.Equal(HttpStatusCode.OK, versions.Status);
        Assert.Equal(["1", "2"], versions.Body.GetProperty("model_versions").EnumerateArray().Select(v => v.GetProperty("version").GetString()).Order());
    }

    [Fact]
    public async Task ModelVersions_UpdateTagDownloadUriAndDelete_Work()
    {
        var name = await CreateModelWithVersionsAsync(2);

        var updated = await server.SendAsync(HttpMethod.Patch, $"{Api}model-versions/update", $$"""{"name":"{{name}}","version":"2","description":"better"}""");
        Assert.Equal(HttpStatusCode.OK, updated.Status);
        Assert.Equal("better", updated.Body.GetProperty("model_version").GetProperty("description").GetString());

        await server.MlflowAsync("model-versions/set-tag", $$"""{"name":"{{name}}","version":"2","key":"validated","value":"yes"}""");
        var got = await server.GetAsync($"{Api}model-versions/get?name={name}&version=2");
        Assert.Equal("yes", Assert.Single(got.Body.GetProperty("model_version").GetProperty("tags").EnumerateArray()).GetProperty("value").GetString());

        var uri = await server.GetAsync($"{Api}model-versions/get-download-uri?name={name}&version=2");
        var source = got.Body.GetProperty("model_version").GetProperty("source").GetString()!;
        var runId = got.Body.GetProperty("model_version").GetProperty("run_id").GetString();
        Assert.Equal($"runs:/{runId}/model", source);
        var artifactUri = uri.Body.GetProperty("artifact_uri").GetString()!;
        Assert.StartsWith("mlflow-artifacts:/", artifactUri, StringComparison.Ordinal);
        Assert.EndsWith($"/{runId}/artifacts/model", artifactUri, StringComparison.Ordinal);

        var deleted = await server.SendAsync(HttpMethod.Delete, $"{Api}model-versions/delete", $$"""{"name":"{{name}}","version":"2"}""");
        Assert.Equal(HttpStatusCode.OK, deleted.Status);
        var gone = await server.GetAsync($"{Api}model-versions/get?name={name}&version=2");
        Assert.Equal(HttpStatusCode.NotFound, gone.Status);
    }

    [Fact]
    public async Task RegisteredModels_UpdateRenameAndDelete_Work()
    {
        var name = await CreateModelWithVersionsAsync(1);
        var updated = await server.SendAsync(HttpMethod.Patch, $"{Api}registered-models/update", $$"""{"name":"{{name}}","description":"second"}""");
        Assert.Equal("second", updated.Body.GetProperty("registered_model").GetProperty("description").GetString());

        var newName = name + "-renamed";
        var renamed = await server.MlflowAsync("registered-models/rename", $$"""{"name":"{{name}}","new_name":"{{newName}}"}""");
        Assert.Equal(newName, renamed.GetProperty("registered_model").GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await server.GetAsync($"{Api}registered-models/get?name={name}")).Status);

        var duplicate = await server.PostAsync($"{Api}registered-models/create", $$"""{"name":"{{newName}}"}""");
        Assert.Equal(HttpStatusCode.BadRequest, duplicate.Status);
        Assert.Equal("RESOURCE_ALREADY_EXISTS", duplicate.ErrorCode);

        var deleted = await server.SendAsync(HttpMethod.Delete, $"{Api}registered-models/delete?name={newName}");
        Assert.Equal(HttpStatusCode.OK, deleted.Status);
        Assert.Equal(HttpStatusCode.NotFound, (await server.GetAsync($"{Api}registered-models/get?name={newName}")).Status);
    }
}
