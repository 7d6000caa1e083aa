using Capstan.Core;
using Capstan.Core.Registry;
using Capstan.Core.Tracking;

namespace Capstan.Store.Tests.Sqlite;

public sealed class RegistryTests : StoreTestBase
{
    private async Task<ModelVersion> NewVersionAsync(string model, string? runId = null, string source = "mlflow-artifacts:/0/x/artifacts/model") =>
        await Store.CreateModelVersionAsync(new NewModelVersion(model, source, runId), Ct);

    [Fact]
    public async Task CreateModelVersion_NumbersCountUpPerModel_NeverReused()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct);
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("mnist"), Ct);

        Assert.Equal(1, (await NewVersionAsync("iris")).Version);
        Assert.Equal(2, (await NewVersionAsync("iris")).Version);
        Assert.Equal(1, (await NewVersionAsync("mnist")).Version);
        await Store.DeleteModelVersionAsync("iris", 2, Ct);
        var third = await NewVersionAsync("iris");

        Assert.Equal(3, third.Version);
        Assert.Equal("None", third.CurrentStage);
        Assert.Equal(ModelVersionStatus.Ready, third.Status);
    }

    [Fact]
    public async Task CreateModelVersion_SignatureAndTags_RoundTrip()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct);
        var signature = new ModelSignature("[{\"type\":\"double\",\"name\":\"x\"}]", "[{\"type\":\"long\"}]");

        await Store.CreateModelVersionAsync(new NewModelVersion("iris", "s3://b/m", "run1", Tags: [new Tag("k", "v")], Signature: signature), Ct);

        var version = await Store.GetModelVersionAsync("iris", 1, Ct);
        Assert.Equal(signature, version.Signature);
        Assert.Equal([new Tag("k", "v")], version.Tags);
        Assert.Equal("run1", version.RunId);
    }

    [Fact]
    public async Task CreateRegisteredModel_DuplicateName_AlreadyExists()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct);

        await AssertCapstanErrorAsync(ErrorCode.ResourceAlreadyExists, () => Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct));
    }

    [Fact]
    public async Task GetUnknownModelOrVersion_NotFoundNamingIt()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct);

        var model = await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.GetRegisteredModelAsync("nope", Ct));
        var version = await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.GetModelVersionAsync("iris", 9, Ct));
        await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.CreateModelVersionAsync(new NewModelVersion("nope", "s"), Ct));

        Assert.Contains("nope", model.Message);
        Assert.Contains("version=9", version.Message);
    }

    [Fact]
    public async Task Aliases_SetMoveResolveDelete()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct);
        await NewVersionAsync("iris");
        await NewVersionAsync("iris");

        await Store.SetAliasAsync("iris", "champion", 1, Ct);
        Assert.Equal(1, (await Store.GetModelVersionByAliasAsync("iris", "champion", Ct)).Version);

        await Store.SetAliasAsync("iris", "champion", 2, Ct);
        var resolved = await Store.GetModelVersionByAliasAsync("iris", "champion", Ct);
        Assert.Equal(2, resolved.Version);
        Assert.Equal(["champion"], resolved.Aliases);
        Assert.Empty((await Store.GetModelVersionAsync("iris", 1, Ct)).Aliases);
        Assert.Equal([new ModelAlias("champion", 2)], (await Store.GetRegisteredModelAsync("iris", Ct)).Aliases);

        await Store.DeleteAliasAsync("iris", "champion", Ct);
        await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.GetModelVersionByAliasAsync("iris", "champion", Ct));
    }

    [Theory]
    [InlineData("latest")]
    [InlineData("Latest")]
    [InlineData("v3")]
    [InlineData("")]
    public async Task SetAlias_ReservedName_Invalid(string alias)
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct);
        await NewVersionAsync("iris");

        await AssertCapstanErrorAsync(ErrorCode.InvalidParameterValue, () => Store.SetAliasAsync("iris", alias, 1, Ct));
    }

    [Fact]
    public async Task DeleteModelVersion_DropsAliasesPointingAtIt()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct);
        await NewVersionAsync("iris");
        await NewVersionAsync("iris");
        await Store.SetAliasAsync("iris", "a", 1, Ct);
        await Store.SetAliasAsync("iris", "b", 2, Ct);

        await Store.DeleteModelVersionAsync("iris", 1, Ct);

        Assert.Equal([new ModelAlias("b", 2)], (await Store.GetRegisteredModelAsync("iris", Ct)).Aliases);
        await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.GetModelVersionByAliasAsync("iris", "a", Ct));
    }

    [Fact]
    public async Task RenameRegisteredModel_VersionsTagsAndAliasesFollow()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("old", Tags: [new Tag("t", "1")]), Ct);
        await NewVersionAsync("old");
        await Store.SetModelVersionTagAsync("old", 1, "vt", "x", Ct);
        await Store.SetAliasAsync("old", "prod", 1, Ct);

        var renamed = await Store.RenameRegisteredModelAsync("old", "new", Ct);

        Assert.Equal("new", renamed.Name);
        Assert.Equal([new Tag("t", "1")], renamed.Tags);
        var version = await Store.GetModelVersionByAliasAsync("new", "prod", Ct);
        Assert.Equal("new", version.Name);
        Assert.Equal([new Tag("vt", "x")], version.Tags);
        await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.GetRegisteredModelAsync("old", Ct));
        Assert.Equal(2, (await NewVersionAsync("new")).Version);
    }

    [Fact]
    public async Task RenameRegisteredModel_TargetExists_AlreadyExists()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("a"), Ct);
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("b"), Ct);

        await AssertCapstanErrorAsync(ErrorCode.ResourceAlreadyExists, () => Store.RenameRegisteredModelAsync("a", "b", Ct));
    }

    [Fact]
    public async Task LatestVersions_NewestVersionOfEachStage()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct);
        await NewVersionAsync("iris");
        await NewVersionAsync("iris");
        await NewVersionAsync("iris");

        var latest = await Store.GetLatestVersionsAsync("iris", cancellationToken: Ct);
        var model = await Store.GetRegisteredModelAsync("iris", Ct);

        Assert.Equal(3, Assert.Single(latest).Version);
        Assert.Equal(3, Assert.Single(model.LatestVersions).Version);
        Assert.Empty(await Store.GetLatestVersionsAsync("iris", ["Production"], Ct));
        Assert.Single(await Store.GetLatestVersionsAsync("iris", ["none"], Ct));
    }

    [Fact]
    public async Task SearchRegisteredModels_NameAndTagFilters()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris-small", Tags: [new Tag("task", "cls")]), Ct);
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris-large"), Ct);
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("mnist", Tags: [new Tag("task", "cls")]), Ct);

        var byName = await Store.SearchRegisteredModelsAsync(new RegistrySearch("name LIKE 'iris%'"), Ct);
        var exact = await Store.SearchRegisteredModelsAsync(new RegistrySearch("name = 'mnist'"), Ct);
        var byTag = await Store.SearchRegisteredModelsAsync(new RegistrySearch("tags.task = 'cls'", OrderBy: ["name DESC"]), Ct);

        Assert.Equal(["iris-large", "iris-small"], byName.Items.Select(m => m.Name));
        Assert.Equal(["mnist"], exact.Items.Select(m => m.Name));
        Assert.Equal(["mnist", "iris-small"], byTag.Items.Select(m => m.Name));
    }

    [Fact]
    public async Task SearchModelVersions_ByNameRunAndTag_NewestFirst()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct);
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("mnist"), Ct);
        await NewVersionAsync("iris", "r1");
        await NewVersionAsync("iris", "r2", source: "s3://bucket/iris");
        await NewVersionAsync("mnist", "r1");
        await Store.SetModelVersionTagAsync("iris", 1, "validated", "yes", Ct);

        var byName = await Store.SearchModelVersionsAsync(new RegistrySearch("name = 'iris'"), Ct);
        var byRun = await Store.SearchModelVersionsAsync(new RegistrySearch("run_id = 'r1'", OrderBy: ["name ASC"]), Ct);
        var byRuns = await Store.SearchModelVersionsAsync(new RegistrySearch("run_id IN ('r1', 'r2') and name = 'iris'"), Ct);
        var byTag = await Store.SearchModelVersionsAsync(new RegistrySearch("tags.validated = 'yes'"), Ct);
        var bySource = await Store.SearchModelVersionsAsync(new RegistrySearch("source_path LIKE 's3://%'"), Ct);
        var byNumber = await Store.SearchModelVersionsAsync(new RegistrySearch("version_number >= 2"), Ct);

        Assert.Equal([2L, 1L], byName.Items.Select(v => v.Version));
        Assert.Equal(["iris", "mnist"], byRun.Items.Select(v => v.Name));
        Assert.Equal([2L, 1L], byRuns.Items.Select(v => v.Version));
        Assert.Equal(("iris", 1L), byTag.Items.Select(v => (v.Name, v.Version)).Single());
        Assert.Equal(("iris", 2L), bySource.Items.Select(v => (v.Name, v.Version)).Single());
        Assert.Equal(("iris", 2L), byNumber.Items.Select(v => (v.Name, v.Version)).Single());
    }

    [Fact]
    public async Task DeleteRegisteredModel_RemovesVersions()
    {
        await Store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct);
        await NewVersionAsync("iris");

        await Store.DeleteRegisteredModelAsync("iris", Ct);

        await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.GetModelVersionAsync("iris", 1, Ct));
        Assert.Empty((await Store.SearchModelVersionsAsync(new RegistrySearch(), Ct)).Items);
    }
}
