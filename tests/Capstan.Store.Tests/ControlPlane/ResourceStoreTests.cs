using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Store.Tests.Sqlite;

namespace Capstan.Store.Tests.ControlPlane;

public sealed class ResourceStoreTests : StoreTestBase
{
    private static TrainJob Job(string name, string? ns = null, string lr = "0.1", Dictionary<string, string>? labels = null) => new()
    {
        Metadata = new ResourceMetadata { Name = name, Namespace = ns, Labels = labels },
        Spec = new TrainJobSpec { Command = ["python", "train.py"], Params = new Dictionary<string, string> { ["lr"] = lr } },
    };

    [Fact]
    public async Task Create_NewJob_SetsIdentityVersionAndDefaults()
    {
        var created = (TrainJob)await Store.CreateAsync(Job("mnist"), Ct);

        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.Equal(1, created.Metadata.Generation);
        Assert.NotNull(created.Metadata.CreationTimestamp);
        Assert.Equal("default", created.Metadata.Namespace);
        Assert.Equal(1, created.Spec.Replicas);
        Assert.Equal("mnist", created.Spec.Experiment);

        var fetched = await Store.GetAsync<TrainJob>("default", "mnist", Ct);
        Assert.Equal(created.Metadata.Uid, fetched.Metadata.Uid);
        Assert.Equal(created.Metadata.ResourceVersion, fetched.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task CountByPhase_CountsEveryNamespaceByStatusPhaseWithoutAStatusAsPending()
    {
        async Task WithPhase(string name, string? ns, TrainJobPhase? phase)
        {
            var job = (TrainJob)await Store.CreateAsync(Job(name, ns), Ct);
            if (phase is not null)
            {
                job.Status = new TrainJobStatus { Phase = phase, Message = "set by the test" };
                await Store.UpdateStatusAsync(job, Ct);
            }
        }

        await WithPhase("a", null, TrainJobPhase.Running);
        await WithPhase("b", null, TrainJobPhase.Succeeded);
        await WithPhase("c", "team-a", TrainJobPhase.Running);
        await WithPhase("d", null, null);
        var noPhase = (TrainJob)await Store.CreateAsync(Job("e"), Ct);
        noPhase.Status = new TrainJobStatus { Message = "a status, no phase yet" };
        await Store.UpdateStatusAsync(noPhase, Ct);

        var counts = await Store.CountByPhaseAsync(TrainJob.KindName, Ct);

        Assert.Equal(new Dictionary<string, int> { ["Running"] = 2, ["Succeeded"] = 1, ["Pending"] = 2 }, counts);
        var listed = (await Store.ListAsync(TrainJob.KindName, cancellationToken: Ct)).GroupBy(ResourcePhases.Of).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(listed, counts);
        Assert.Empty(await Store.CountByPhaseAsync(InferenceService.KindName, Ct));
    }

    [Fact]
    public async Task Create_WithStatus_StartsWithoutStatus()
    {
        var job = Job("mnist");
        job.Status = new TrainJobStatus { Phase = TrainJobPhase.Succeeded };

        var created = (TrainJob)await Store.CreateAsync(job, Ct);

        Assert.Null(created.Status);
        Assert.Null((await Store.GetAsync<TrainJob>("default", "mnist", Ct)).Status);
        Assert.Equal(TrainJobPhase.Succeeded, job.Status.Phase);
    }

    [Fact]
    public async Task Create_NameTakenInNamespace_AlreadyExistsButOtherNamespaceIsFine()
    {
        await Store.CreateAsync(Job("mnist"), Ct);

        var error = await AssertCapstanErrorAsync(ErrorCode.ResourceAlreadyExists, () => Store.CreateAsync(Job("mnist"), Ct));
        Assert.Contains("already exists", error.Message, StringComparison.Ordinal);
        await Store.CreateAsync(Job("mnist", "team-a"), Ct);
    }

    [Fact]
    public async Task Get_UnknownName_NotFound()
    {
        var error = await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.GetAsync(TrainJob.KindName, "default", "nope", Ct));
        Assert.Contains("\"nope\" not found", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_ByNamespaceAndLabels_ReturnsOnlyMatches()
    {
        await Store.CreateAsync(Job("a", labels: new() { ["team"] = "vision" }), Ct);
        await Store.CreateAsync(Job("b", labels: new() { ["team"] = "nlp" }), Ct);
        await Store.CreateAsync(Job("c", "other", labels: new() { ["team"] = "vision" }), Ct);

        Assert.Equal(["a", "b", "c"], (await Store.ListAsync(TrainJob.KindName, cancellationToken: Ct)).Select(r => r.Metadata.Name));
        Assert.Equal(["a", "b"], (await Store.ListAsync(TrainJob.KindName, "default", cancellationToken: Ct)).Select(r => r.Metadata.Name));
        var vision = await Store.ListAsync<TrainJob>(labelSelector: new Dictionary<string, string> { ["team"] = "vision" }, cancellationToken: Ct);
        Assert.Equal(["a", "c"], vision.Select(r => r.Metadata.Name));
    }

    [Fact]
    public async Task Update_SpecChanged_BumpsGenerationAndVersion()
    {
        var created = await Store.CreateAsync(Job("mnist"), Ct);

        var updated = await Store.UpdateAsync(Job("mnist", lr: "0.5"), Ct);

        Assert.Equal(2, updated.Metadata.Generation);
        Assert.True(ResourceVersions.Parse(updated.Metadata.ResourceVersion) > ResourceVersions.Parse(created.Metadata.ResourceVersion));
        Assert.Equal(created.Metadata.Uid, updated.Metadata.Uid);
        Assert.Equal("0.5", (await Store.GetAsync<TrainJob>("default", "mnist", Ct)).Spec.Params!["lr"]);
    }

    [Fact]
    public async Task Update_OnlyLabelsChanged_KeepsGeneration()
    {
        await Store.CreateAsync(Job("mnist"), Ct);

        var updated = await Store.UpdateAsync(Job("mnist", labels: new() { ["team"] = "vision" }), Ct);

        Assert.Equal(1, updated.Metadata.Generation);
        Assert.Equal("vision", updated.Metadata.Labels!["team"]);
    }

    [Fact]
    public async Task Update_NothingChanged_KeepsResourceVersion()
    {
        var created = await Store.CreateAsync(Job("mnist"), Ct);

        var same = await Store.UpdateAsync(Job("mnist"), Ct);

        Assert.Equal(created.Metadata.ResourceVersion, same.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task Update_StaleResourceVersion_ConflictWithKubernetesMessage()
    {
        var created = await Store.CreateAsync(Job("mnist"), Ct);
        var stale = created.Metadata.ResourceVersion;
        await Store.UpdateAsync(Job("mnist", lr: "0.2"), Ct);

        var edit = Job("mnist", lr: "0.3");
        edit.Metadata.ResourceVersion = stale;
        var error = await AssertCapstanErrorAsync(ErrorCode.Conflict, () => Store.UpdateAsync(edit, Ct));

        Assert.Contains("the object has been modified; please apply your changes to the latest version and try again", error.Message, StringComparison.Ordinal);
        Assert.Equal("0.2", (await Store.GetAsync<TrainJob>("default", "mnist", Ct)).Spec.Params!["lr"]);
    }

    [Fact]
    public async Task Update_MissingObject_NotFound() =>
        await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.UpdateAsync(Job("ghost"), Ct));

    [Fact]
    public async Task UpdateStatus_ChangesStatusOnly_SpecAndGenerationUntouched()
    {
        var created = (TrainJob)await Store.CreateAsync(Job("mnist"), Ct);
        var edit = Job("mnist", lr: "9.9");
        edit.Metadata.ResourceVersion = created.Metadata.ResourceVersion;
        edit.Status = new TrainJobStatus { Phase = TrainJobPhase.Running, ObservedGeneration = 1, Attempts = 1 };

        var updated = (TrainJob)await Store.UpdateStatusAsync(edit, Ct);

        Assert.Equal(TrainJobPhase.Running, updated.Status!.Phase);
        Assert.Equal(1, updated.Metadata.Generation);
        Assert.Equal("0.1", updated.Spec.Params!["lr"]);
        var stored = await Store.GetAsync<TrainJob>("default", "mnist", Ct);
        Assert.Equal(TrainJobPhase.Running, stored.Status!.Phase);
        Assert.Equal("0.1", stored.Spec.Params!["lr"]);
    }

    [Fact]
    public async Task UpdateStatus_StaleResourceVersion_Conflict()
    {
        var created = (TrainJob)await Store.CreateAsync(Job("mnist"), Ct);
        await Store.UpdateAsync(Job("mnist", lr: "0.2"), Ct);
        created.Status = new TrainJobStatus { Phase = TrainJobPhase.Failed };

        await AssertCapstanErrorAsync(ErrorCode.Conflict, () => Store.UpdateStatusAsync(created, Ct));
    }

    [Fact]
    public async Task Update_SpecChange_KeepsStatusWrittenByController()
    {
        var created = (TrainJob)await Store.CreateAsync(Job("mnist"), Ct);
        created.Status = new TrainJobStatus { Phase = TrainJobPhase.Queued };
        await Store.UpdateStatusAsync(created, Ct);

        var updated = (TrainJob)await Store.UpdateAsync(Job("mnist", lr: "0.7"), Ct);

        Assert.Equal(TrainJobPhase.Queued, updated.Status!.Phase);
    }

    [Fact]
    public async Task Apply_CreateThenSameThenChanged_ReportsOutcomes()
    {
        Assert.Equal(ApplyOutcome.Created, (await Store.ApplyAsync(Job("mnist"), Ct)).Outcome);
        Assert.Equal(ApplyOutcome.Unchanged, (await Store.ApplyAsync(Job("mnist"), Ct)).Outcome);
        var changed = await Store.ApplyAsync(Job("mnist", lr: "0.3"), Ct);
        Assert.Equal(ApplyOutcome.Configured, changed.Outcome);
        Assert.Equal(2, changed.Object.Metadata.Generation);
    }

    [Fact]
    public async Task Delete_Existing_ReturnsItAndItIsGone()
    {
        await Store.CreateAsync(Job("mnist"), Ct);

        var deleted = await Store.DeleteAsync(TrainJob.KindName, "default", "mnist", Ct);

        Assert.Equal("mnist", deleted.Metadata.Name);
        await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.GetAsync(TrainJob.KindName, "default", "mnist", Ct));
        await AssertCapstanErrorAsync(ErrorCode.ResourceDoesNotExist, () => Store.DeleteAsync(TrainJob.KindName, "default", "mnist", Ct));
    }

    [Fact]
    public async Task Watch_FromStart_SeesAddedModifiedDeletedInOrder()
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(20));
        await using var watch = Store.WatchAsync(TrainJob.KindName, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        var first = watch.MoveNextAsync();

        await Store.CreateAsync(Job("mnist"), Ct);
        await Store.UpdateAsync(Job("mnist", lr: "0.2"), Ct);
        await Store.DeleteAsync(TrainJob.KindName, "default", "mnist", Ct);

        var seen = new List<WatchEvent>();
        Assert.True(await first);
        seen.Add(watch.Current);
        while (seen.Count < 3 && await watch.MoveNextAsync())
        {
            seen.Add(watch.Current);
        }

        Assert.Equal([WatchEventType.Added, WatchEventType.Modified, WatchEventType.Deleted], seen.Select(e => e.Type));
        Assert.Equal("0.2", ((TrainJob)seen[1].Object).Spec.Params!["lr"]);
        Assert.True(seen[0].ResourceVersion < seen[1].ResourceVersion && seen[1].ResourceVersion < seen[2].ResourceVersion);
    }

    [Fact]
    public async Task Watch_WithoutVersion_StartsWithExistingObjectsAsAdded()
    {
        await Store.CreateAsync(Job("a"), Ct);
        await Store.CreateAsync(Job("b"), Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(20));

        var seen = await TakeAsync(Store.WatchAsync(cancellationToken: cts.Token), 2, cts.Token);

        Assert.All(seen, e => Assert.Equal(WatchEventType.Added, e.Type));
        Assert.Equal(["a", "b"], seen.Select(e => e.Object.Metadata.Name));
    }

    [Fact]
    public async Task Watch_ResumeFromVersionAfterReopen_ReplaysOnlyLaterChanges()
    {
        var created = await Store.CreateAsync(Job("mnist"), Ct);
        await Store.UpdateAsync(Job("mnist", lr: "0.2"), Ct);
        await Store.CreateAsync(Job("other"), Ct);
        await ReopenAsync();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(20));

        var seen = await TakeAsync(Store.WatchAsync(TrainJob.KindName, "default", ResourceVersions.Parse(created.Metadata.ResourceVersion), cts.Token), 2, cts.Token);

        Assert.Equal([(WatchEventType.Modified, "mnist"), (WatchEventType.Added, "other")], seen.Select(e => (e.Type, e.Object.Metadata.Name!)));
    }

    [Fact]
    public async Task Watch_OtherNamespace_IsNotSeen()
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(20));
        var watching = TakeAsync(Store.WatchAsync(TrainJob.KindName, "team-a", 0, cts.Token), 1, cts.Token);

        await Store.CreateAsync(Job("elsewhere"), Ct);
        await Store.CreateAsync(Job("here", "team-a"), Ct);

        Assert.Equal("here", Assert.Single(await watching).Object.Metadata.Name);
    }

    [Fact]
    public async Task RecordEvent_SameReasonAndMessage_BumpsCountInsteadOfAdding()
    {
        var job = await Store.CreateAsync(Job("mnist"), Ct);

        await Store.RecordEventAsync(job, ResourceEventType.Normal, "Queued", "waiting for 2 CPUs", Ct);
        var repeated = await Store.RecordEventAsync(job, ResourceEventType.Normal, "Queued", "waiting for 2 CPUs", Ct);
        await Store.RecordEventAsync(job, ResourceEventType.Warning, "Failed", "exit code 1", Ct);

        Assert.Equal(2, repeated.Count);
        var events = await Store.ListEventsAsync(job, Ct);
        Assert.Equal([("Queued", 2), ("Failed", 1)], events.Select(e => (e.Reason, e.Count)));
        Assert.Equal(ResourceEventType.Warning, events[1].Type);
        Assert.True(events[0].LastTimestamp >= events[0].FirstTimestamp);
    }

    [Fact]
    public async Task Reopen_AfterWrites_KeepsObjectsStatusEventsAndVersionSequence()
    {
        var job = (TrainJob)await Store.CreateAsync(Job("mnist"), Ct);
        job.Status = new TrainJobStatus { Phase = TrainJobPhase.Running, Attempts = 1 };
        var running = await Store.UpdateStatusAsync(job, Ct);
        await Store.RecordEventAsync(job, ResourceEventType.Normal, "Started", "attempt 1", Ct);

        await ReopenAsync();

        var stored = await Store.GetAsync<TrainJob>("default", "mnist", Ct);
        Assert.Equal(TrainJobPhase.Running, stored.Status!.Phase);
        Assert.Equal(job.Metadata.Uid, stored.Metadata.Uid);
        Assert.Equal("Started", Assert.Single(await Store.ListEventsAsync(stored, Ct)).Reason);
        var next = await Store.CreateAsync(Job("second"), Ct);
        Assert.True(ResourceVersions.Parse(next.Metadata.ResourceVersion) > ResourceVersions.Parse(running.Metadata.ResourceVersion));
    }

    private static async Task<List<WatchEvent>> TakeAsync(IAsyncEnumerable<WatchEvent> watch, int count, CancellationToken cancellationToken)
    {
        var seen = new List<WatchEvent>();
        await foreach (var e in watch.WithCancellation(cancellationToken))
        {
            seen.Add(e);
            if (seen.Count == count)
            {
                break;
            }
        }

        return seen;
    }
}
