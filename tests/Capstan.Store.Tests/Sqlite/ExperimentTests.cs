using Capstan.Core;
using Capstan.Core.Tracking;

namespace Capstan.Store.Tests.Sqlite;

public sealed class ExperimentTests : StoreTestBase
{
    [Fact]
    public async Task Open_NewDatabase_HasDefaultExperimentZero()
    {
        var experiment = await Store.GetExperimentAsync("0", Ct);

        Assert.Equal("Default", experiment.Name);
        Assert.Equal("mlflow-artifacts:/0", experiment.ArtifactLocation);
        Assert.Equal(LifecycleStage.Active, experiment.LifecycleStage);
        Assert.True(File.Exists(DatabasePath));
    }

    [Fact]
    public async Task CreateExperiment_NoLocation_GetsNextIdAndDefaultArtifactLocation()
    {
        var created = await Store.CreateExperimentAsync(new NewExperiment("vision", Tags: [new Tag("team", "cv")]), Ct);

        Assert.Equal("1", created.ExperimentId);
        Assert.Equal("mlflow-artifacts:/1", created.ArtifactLocation);
        var byName = await Store.GetExperimentByNameAsync("vision", Ct);
        Assert.Equal("1", byName.ExperimentId);
        Assert.Equal([new Tag("team", "cv")], byName.Tags);
    }

    [Fact]
    public async Task CreateExperiment_DuplicateName_AlreadyExists()
    {
        await NewExperimentAsync("dup");

        var error = await AssertCapstanErrorAsync(ErrorCode.ResourceAlreadyExists, () => Store.CreateExperimentAsync(new NewExperiment("dup"), Ct));
        Assert.Contains("dup", error.Message);
    }

    [Fact]
    public async Task GetExperiment_UnknownId_NotFoundNamingId()
    {
        var error = await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.GetExperimentAsync("4242", Ct));
        Assert.Contains("4242", error.Message);
    }

    [Fact]
    public async Task DeleteExperiment_ThenSearch_OnlyDeletedViewShowsIt()
    {
        var id = await NewExperimentAsync("gone");
        await Store.DeleteExperimentAsync(id, Ct);

        var active = await Store.SearchExperimentsAsync(new ExperimentSearch(), Ct);
        var deleted = await Store.SearchExperimentsAsync(new ExperimentSearch(ViewType: ViewType.DeletedOnly), Ct);
        Assert.DoesNotContain(active.Items, e => e.ExperimentId == id);
        Assert.Equal([id], deleted.Items.Select(e => e.ExperimentId));

        await Store.RestoreExperimentAsync(id, Ct);
        Assert.Equal(LifecycleStage.Active, (await Store.GetExperimentAsync(id, Ct)).LifecycleStage);
    }

    [Fact]
    public async Task SearchExperiments_FilterAndOrder_ReturnsMatchesInOrder()
    {
        await NewExperimentAsync("alpha-one");
        await NewExperimentAsync("Alpha-two");
        var tagged = await NewExperimentAsync("beta");
        await Store.SetExperimentTagAsync(tagged, "owner", "ana", Ct);

        var like = await Store.SearchExperimentsAsync(new ExperimentSearch("name LIKE 'alpha%'"), Ct);
        var ilike = await Store.SearchExperimentsAsync(new ExperimentSearch("name ILIKE 'alpha%'", OrderBy: ["name DESC"]), Ct);
        var byTag = await Store.SearchExperimentsAsync(new ExperimentSearch("tags.owner = 'ana'"), Ct);

        Assert.Equal(["alpha-one"], like.Items.Select(e => e.Name));
        Assert.Equal(["alpha-one", "Alpha-two"], ilike.Items.Select(e => e.Name));
        Assert.Equal(["beta"], byTag.Items.Select(e => e.Name));
    }

    [Fact]
    public async Task RenameExperiment_NameTaken_AlreadyExists()
    {
        var id = await NewExperimentAsync("a");
        await NewExperimentAsync("b");

        await AssertCapstanErrorAsync(ErrorCode.ResourceAlreadyExists, () => Store.RenameExperimentAsync(id, "b", Ct));
        await Store.RenameExperimentAsync(id, "c", Ct);
        Assert.Equal("c", (await Store.GetExperimentAsync(id, Ct)).Name);
    }
}
