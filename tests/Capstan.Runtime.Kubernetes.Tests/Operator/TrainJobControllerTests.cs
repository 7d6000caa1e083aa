using System.Text.Json.Nodes;
using Capstan.Core.Tracking;
using Capstan.Runtime.Kubernetes.Rendering;
using k8s;
using k8s.Models;
using static Capstan.Runtime.Kubernetes.Tests.Operator.OperatorHarness;

namespace Capstan.Runtime.Kubernetes.Tests.Operator;

/// <summary><c>capstan operator</c>'s TrainJob controller against the fake API server, with the test playing kubelet and Kueue.</summary>
public sealed class TrainJobControllerTests : IAsyncLifetime
{
    private OperatorHarness _cluster = null!;

    public async ValueTask InitializeAsync() => _cluster = await OperatorHarness.StartAsync();

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task TrainJob_JobSucceeds_GoesRunningThenSucceededWithEvents()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        var trainJob = await _cluster.CreateTrainJobAsync("mnist");

        await WaitForAsync(async () => await _cluster.JobAsync("mnist") is not null, "the Job");
        var job = (await _cluster.JobAsync("mnist"))!;
        var owner = Assert.Single(job.Metadata.OwnerReferences);
        Assert.Equal(trainJob["metadata"]!["uid"]!.GetValue<string>(), owner.Uid);
        Assert.True(owner.Controller);
        Assert.Equal("TrainJob", owner.Kind);
        Assert.Equal("registry.example/trainer:1", job.Spec.Template.Spec.Containers[0].Image);
        await WaitForAsync(() => _cluster.Phase("mnist") == "Pending", "phase Pending");

        await _cluster.SetJobStatusAsync("mnist", s => { s.Active = 1; s.StartTime = DateTime.UtcNow; });
        await WaitForAsync(() => _cluster.Phase("mnist") == "Running", "phase Running");

        await _cluster.SetJobStatusAsync("mnist", s =>
        {
            s.Active = 0;
            s.Succeeded = 1;
            s.CompletionTime = DateTime.UtcNow;
            s.Conditions = [Condition("SuccessCriteriaMet"), Condition("Complete")];
        });
        await WaitForAsync(() => _cluster.Phase("mnist") == "Succeeded", "phase Succeeded");

        var status = _cluster.TrainJob("mnist")["status"]!;
        Assert.Equal(1, status["observedGeneration"]!.GetValue<long>());
        Assert.NotNull(status["completionTime"]);
        Assert.Equal(1, status["attempts"]!.GetValue<int>());
        var conditions = status["conditions"]!.AsArray();
        Assert.Equal("True", conditions.Single(c => c!["type"]!.GetValue<string>() == "Succeeded")!["status"]!.GetValue<string>());
        Assert.Equal("False", conditions.Single(c => c!["type"]!.GetValue<string>() == "Running")!["status"]!.GetValue<string>());
        var reasons = (await _cluster.EventsAsync("mnist")).Select(e => e.Reason).ToList();
        Assert.Contains("Created", reasons);
        Assert.Contains("Running", reasons);
        Assert.Contains("Succeeded", reasons);
    }

    [Fact]
    public async Task TrainJob_WithTracking_PodsLogIntoARunMadeFirstThatEndsWithTheTrainJob()
    {
        await using var temp = await TrackingStore.OpenAsync();
        var tracking = temp.Store;
        await _cluster.StartOperatorAsync(FastOptions("op-a") with { Tracking = tracking });
        await _cluster.CreateTrainJobAsync("mnist", new JsonObject { ["image"] = "trainer:1", ["experiment"] = "digits" });
        await _cluster.CreateTrainJobAsync("broken", new JsonObject { ["image"] = "trainer:1", ["experiment"] = "digits" });

        await WaitForAsync(async () => await _cluster.JobAsync("mnist") is not null, "the Job");
        await WaitForAsync(() => _cluster.TrainJob("mnist")["status"]?["runId"] is not null, "status.runId");
        var runId = _cluster.TrainJob("mnist")["status"]!["runId"]!.GetValue<string>();
        var env = (await _cluster.JobAsync("mnist"))!.Spec.Template.Spec.Containers[0].Env;
        Assert.Equal(runId, env.Single(e => e.Name == "MLFLOW_RUN_ID").Value);
        var run = await tracking.GetRunAsync(runId, TestContext.Current.CancellationToken);
        Assert.Equal(env.Single(e => e.Name == "MLFLOW_EXPERIMENT_ID").Value, run.Info.ExperimentId);
        Assert.Equal("digits", (await tracking.GetExperimentAsync(run.Info.ExperimentId, TestContext.Current.CancellationToken)).Name);
        Assert.Equal("mnist", run.Info.RunName);
        Assert.Equal(RunStatus.Running, run.Info.Status);
        Assert.Contains(await _cluster.EventsAsync("mnist"), e => e.Reason == "RunCreated" && e.Message.Contains(runId, StringComparison.Ordinal));

        var finishedAt = DateTime.UtcNow;
        await _cluster.SetJobStatusAsync("mnist", s =>
        {
            s.Succeeded = 1;
            s.StartTime = finishedAt.AddMinutes(-1);
            s.CompletionTime = finishedAt;
            s.Conditions = [Condition("SuccessCriteriaMet"), Condition("Complete")];
        });
        await WaitForAsync(() => _cluster.Phase("mnist") == "Succeeded", "phase Succeeded");
        run = await tracking.GetRunAsync(runId, TestContext.Current.CancellationToken);
        Assert.Equal(RunStatus.Finished, run.Info.Status);
        Assert.Equal(new DateTimeOffset(finishedAt).ToUnixTimeMilliseconds(), run.Info.EndTime);

        await WaitForAsync(async () => await _cluster.JobAsync("broken") is not null, "the second Job");
        await _cluster.SetJobStatusAsync("broken", s => s.Conditions = [Condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]);
        await WaitForAsync(() => _cluster.Phase("broken") == "Failed", "phase Failed");
        var failed = await tracking.GetRunAsync(_cluster.TrainJob("broken")["status"]!["runId"]!.GetValue<string>(), TestContext.Current.CancellationToken);
        Assert.Equal(RunStatus.Failed, failed.Info.Status);
        Assert.Equal(2, (await tracking.SearchRunsAsync(new RunSearch([run.Info.ExperimentId]), TestContext.Current.CancellationToken)).Items.Count);
    }

    [Fact]
    public async Task TrainJob_TrackingApiDown_TheJobRunsWithoutARunAndAWarningSaysWhy()
    {
        using var unreachable = new Capstan.Client.CapstanClient(new Uri("http://127.0.0.1:1"));
        await _cluster.StartOperatorAsync(FastOptions("op-a") with { Tracking = unreachable });
        await _cluster.CreateTrainJobAsync("offline", new JsonObject { ["image"] = "trainer:1" });

        await WaitForAsync(async () => await _cluster.JobAsync("offline") is not null, "the Job");
        var env = (await _cluster.JobAsync("offline"))!.Spec.Template.Spec.Containers[0].Env;
        Assert.DoesNotContain(env, e => e.Name == "MLFLOW_RUN_ID");
        Assert.Contains(await _cluster.EventsAsync("offline"), e => e.Type == "Warning" && e.Reason == "TrackingUnavailable" && e.Message.Contains("did not answer", StringComparison.Ordinal) && e.Message.Contains("runs without MLFLOW_RUN_ID", StringComparison.Ordinal));
        await _cluster.CompleteJobAsync("offline");
        await WaitForAsync(() => _cluster.Phase("offline") == "Succeeded", "phase Succeeded");
        Assert.Null(_cluster.TrainJob("offline")["status"]!["runId"]);
    }

    [Fact]
    public async Task TrainJob_TrackingApiDownWhenItFinishes_TheRunIsEndedOnceTheApiAnswersEvenAfterARestart()
    {
        await using var temp = await TrackingStore.OpenAsync();
        var (tracking, outage) = TrackingOutage.Wrap(temp.Store);
        var first = await _cluster.StartOperatorAsync(FastOptions("op-a") with { Tracking = tracking });
        await _cluster.CreateTrainJobAsync("late", new JsonObject { ["image"] = "trainer:1" });
        await WaitForAsync(() => _cluster.TryTrainJob("late")?["status"]?["runId"] is not null, "status.runId");
        var runId = _cluster.TrainJob("late")["status"]!["runId"]!.GetValue<string>();

        outage.Down = true;
        var finishedAt = DateTime.UtcNow.AddSeconds(-30);
        await _cluster.SetJobStatusAsync("late", s =>
        {
            s.Succeeded = 1;
            s.CompletionTime = finishedAt;
            s.Conditions = [Condition("SuccessCriteriaMet"), Condition("Complete")];
        });
        await WaitForAsync(() => RunEnded("late")?["reason"]?.GetValue<string>() == "TrackingUnavailable", "RunEnded False");
        Assert.Equal("Succeeded", _cluster.Phase("late"));
        Assert.Equal("False", RunEnded("late")!["status"]!.GetValue<string>());
        Assert.Equal(RunStatus.Running, (await temp.Store.GetRunAsync(runId, TestContext.Current.CancellationToken)).Info.Status);

        // It keeps trying while the API is down (RetryMaxDelay is 1 s here), with one Warning, not one per try.
        await WaitForAsync(() => outage.RefusedUpdates >= 3, "retries");
        Assert.Single(await _cluster.EventsAsync("late"), e => e.Type == "Warning" && e.Reason == "TrackingUnavailable" && e.Message.Contains(runId, StringComparison.Ordinal));

        // A new operator (the old one gone) finds the run still open in the status and ends it once the API answers.
        await _cluster.StopAsync(first);
        outage.Down = false;
        await _cluster.StartOperatorAsync(FastOptions("op-b") with { Tracking = tracking });
        await WaitForAsync(() => RunEnded("late")?["status"]?.GetValue<string>() == "True", "RunEnded True");
        var run = await temp.Store.GetRunAsync(runId, TestContext.Current.CancellationToken);
        Assert.Equal(RunStatus.Finished, run.Info.Status);
        Assert.Equal(new DateTimeOffset(finishedAt).ToUnixTimeMilliseconds(), run.Info.EndTime);
        Assert.Equal("RunFinished", RunEnded("late")!["reason"]!.GetValue<string>());
    }

    private JsonNode? RunEnded(string name) =>
        _cluster.TryTrainJob(name)?["status"]?["conditions"]?.AsArray().FirstOrDefault(c => c!["type"]!.GetValue<string>() == "RunEnded");

    [Fact]
    public async Task TrainJob_Distributed_GetsAnIndexedJobAndAHeadlessService()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));

        await _cluster.CreateTrainJobAsync("ddp", new JsonObject { ["image"] = "trainer:1", ["replicas"] = 3 });

        await WaitForAsync(async () => await _cluster.JobAsync("ddp") is not null, "the Job");
        var job = (await _cluster.JobAsync("ddp"))!;
        Assert.Equal("Indexed", job.Spec.CompletionMode);
        Assert.Equal(3, job.Spec.Parallelism);
        var service = await _cluster.Client.CoreV1.ReadNamespacedServiceAsync("ddp", "default");
        Assert.Equal("None", service.Spec.ClusterIP);
        Assert.Equal(_cluster.TrainJob("ddp")["metadata"]!["uid"]!.GetValue<string>(), Assert.Single(service.Metadata.OwnerReferences).Uid);
    }

    [Fact]
    public async Task TrainJob_FailsAfterRetries_FailsWithTheJobsReason()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        await _cluster.CreateTrainJobAsync("flaky", new JsonObject { ["image"] = "trainer:1", ["restartPolicy"] = "OnFailure", ["backoffLimit"] = 2 });
        await WaitForAsync(async () => await _cluster.JobAsync("flaky") is not null, "the Job");
        Assert.Equal(2, (await _cluster.JobAsync("flaky"))!.Spec.BackoffLimit);

        // First pod failed, the Job controller started a second.
        await _cluster.SetJobStatusAsync("flaky", s => { s.Failed = 1; s.Active = 1; s.StartTime = DateTime.UtcNow; });
        await WaitForAsync(() => _cluster.TrainJob("flaky")["status"]?["attempts"]?.GetValue<int>() == 2, "attempt 2");
        Assert.Equal("Running", _cluster.Phase("flaky"));

        await _cluster.SetJobStatusAsync("flaky", s =>
        {
            s.Failed = 3;
            s.Active = 0;
            s.Conditions = [Condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"), Condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")];
        });
        await WaitForAsync(() => _cluster.Phase("flaky") == "Failed", "phase Failed");

        var status = _cluster.TrainJob("flaky")["status"]!;
        var failed = status["conditions"]!.AsArray().Single(c => c!["type"]!.GetValue<string>() == "Failed")!;
        Assert.Equal("BackoffLimitExceeded", failed["reason"]!.GetValue<string>());
        Assert.Contains("BackoffLimitExceeded", status["message"]!.GetValue<string>(), StringComparison.Ordinal);
        var warning = Assert.Single(await _cluster.EventsAsync("flaky"), e => e.Type == "Warning");
        Assert.Equal("BackoffLimitExceeded", warning.Reason);
    }

    [Fact]
    public async Task TrainJob_DeadlineExceeded_FailsWithDeadlineExceeded()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        await _cluster.CreateTrainJobAsync("slow", new JsonObject { ["image"] = "trainer:1", ["activeDeadlineSeconds"] = 60 });
        await WaitForAsync(async () => await _cluster.JobAsync("slow") is not null, "the Job");
        Assert.Equal(60, (await _cluster.JobAsync("slow"))!.Spec.ActiveDeadlineSeconds);

        await _cluster.SetJobStatusAsync("slow", s => s.Conditions = [Condition("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")]);

        await WaitForAsync(() => _cluster.Phase("slow") == "Failed", "phase Failed");
        Assert.Contains("DeadlineExceeded", _cluster.TrainJob("slow")["status"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TrainJob_WithKueue_IsQueuedUntilKueueUnsuspendsTheJob()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a", new RenderOptions { GangScheduler = GangScheduler.Kueue, KueueQueue = "team-a" }));
        await _cluster.CreateTrainJobAsync("gang", new JsonObject { ["image"] = "trainer:1", ["replicas"] = 2 });

        await WaitForAsync(async () => await _cluster.JobAsync("gang") is not null, "the Job");
        var job = (await _cluster.JobAsync("gang"))!;
        Assert.True(job.Spec.Suspend);
        Assert.Equal("team-a", job.Metadata.Labels[CapstanLabels.KueueQueueName]);
        await WaitForAsync(() => _cluster.Phase("gang") == "Queued", "phase Queued");
        Assert.Equal(0, job.Status?.Active ?? 0);

        // Kueue admits the whole gang: it unsuspends the Job, and the Job controller starts both pods.
        await _cluster.Client.BatchV1.PatchNamespacedJobAsync(new V1Patch("""{"spec":{"suspend":false}}""", V1Patch.PatchType.MergePatch), "gang", "default");
        await _cluster.SetJobStatusAsync("gang", s => { s.Active = 2; s.StartTime = DateTime.UtcNow; });

        await WaitForAsync(() => _cluster.Phase("gang") == "Running", "phase Running");
        var suspended = _cluster.TrainJob("gang")["status"]!["conditions"]!.AsArray().Single(c => c!["type"]!.GetValue<string>() == "Suspended")!;
        Assert.Equal("False", suspended["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task TrainJob_Deleted_ItsJobAndServiceAreGarbageCollected()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        await _cluster.CreateTrainJobAsync("ddp", new JsonObject { ["image"] = "trainer:1", ["replicas"] = 2 });
        await WaitForAsync(async () => await _cluster.JobAsync("ddp") is not null, "the Job");

        await _cluster.Client.CustomObjects.DeleteNamespacedCustomObjectAsync("capstan.dev", "v1alpha1", "default", "trainjobs", "ddp");

        await WaitForAsync(async () => await _cluster.JobAsync("ddp") is null, "the Job to be collected");
        Assert.Empty((await _cluster.Client.CoreV1.ListNamespacedServiceAsync("default")).Items);
        Assert.Equal(1, _cluster.Count("POST", "/jobs", 201));
    }

    [Fact]
    public async Task Operator_Restarted_PicksUpExistingJobsWithoutDuplicating()
    {
        var first = await _cluster.StartOperatorAsync(FastOptions("op-a"));
        await _cluster.CreateTrainJobAsync("long");
        await WaitForAsync(async () => await _cluster.JobAsync("long") is not null, "the Job");
        var uid = (await _cluster.JobAsync("long"))!.Metadata.Uid;
        await _cluster.StopAsync(first);

        // While no operator runs, the job finishes and another TrainJob arrives.
        await _cluster.SetJobStatusAsync("long", s => { s.Succeeded = 1; s.CompletionTime = DateTime.UtcNow; s.Conditions = [Condition("Complete")]; });
        await _cluster.CreateTrainJobAsync("later");
        await _cluster.StartOperatorAsync(FastOptions("op-b"));

        await WaitForAsync(() => _cluster.Phase("long") == "Succeeded", "the restarted operator to see the Job succeed");
        await WaitForAsync(async () => await _cluster.JobAsync("later") is not null, "the new TrainJob's Job");
        Assert.Equal(uid, (await _cluster.JobAsync("long"))!.Metadata.Uid);
        Assert.Equal(2, (await _cluster.Client.BatchV1.ListNamespacedJobAsync("default")).Items.Count);
        Assert.Equal(0, _cluster.Count("POST", "/jobs", 409));
    }

    [Fact]
    public async Task TrainJob_FinishedThenSpecChanged_IsNotRerun()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        await _cluster.CreateTrainJobAsync("done");
        await WaitForAsync(async () => await _cluster.JobAsync("done") is not null, "the Job");
        await _cluster.SetJobStatusAsync("done", s => { s.Succeeded = 1; s.Conditions = [Condition("Complete")]; });
        await WaitForAsync(() => _cluster.Phase("done") == "Succeeded", "phase Succeeded");

        // The user edits the spec and the finished Job is cleaned up (TTL): nothing runs again.
        var stored = _cluster.TrainJob("done");
        stored["spec"]!["image"] = "registry.example/trainer:2";
        _cluster.Server.Objects.Replace(_cluster.TrainJobs, "default", "done", stored, statusOnly: false);
        await _cluster.Client.BatchV1.DeleteNamespacedJobAsync("done", "default", propagationPolicy: "Background");

        await WaitForAsync(() => _cluster.TrainJob("done")["status"]!["observedGeneration"]!.GetValue<long>() == 2, "the new generation observed");
        Assert.Null(await _cluster.JobAsync("done"));
        Assert.Equal("Succeeded", _cluster.Phase("done"));
        Assert.Contains(await _cluster.EventsAsync("done"), e => e.Reason == "NotRerun");
        Assert.Equal(1, _cluster.Count("POST", "/jobs", 201));
    }

    [Fact]
    public async Task StatusWrite_Conflict_IsRetriedWithTheNewVersion()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        // Another writer changes the TrainJob right before each of the operator's next two status writes.
        _cluster.Server.Objects.InterposeWriter(_cluster.TrainJobs, 2, o => o["metadata"]!.AsObject()["labels"] = new JsonObject { ["touched"] = Guid.NewGuid().ToString() });

        await _cluster.CreateTrainJobAsync("contended");

        await WaitForAsync(() => _cluster.Phase("contended") == "Pending", "the status written despite the conflicts");
        Assert.True(_cluster.Count("PUT", "/trainjobs/contended/status", 409) >= 2);
        Assert.Equal(1, _cluster.Count("POST", "/jobs", 201));
    }

    [Fact]
    public async Task Watch_Expired_OperatorListsAgainAndKeepsReconciling()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        await _cluster.CreateTrainJobAsync("before");
        await WaitForAsync(() => _cluster.Phase("before") == "Pending", "the first TrainJob reconciled");

        // etcd compacts and the API server drops every watch: resuming from the old version meets 410 Expired.
        _cluster.Server.Objects.Compact();
        _cluster.Server.Objects.CloseWatches();
        await _cluster.CreateTrainJobAsync("after");

        await WaitForAsync(() => _cluster.Phase("after") == "Pending", "the TrainJob created across the expiry");
        Assert.Equal(2, _cluster.Count("POST", "/jobs", 201));
    }

    [Fact]
    public async Task TrainJob_Invalid_FailsWithAWarning()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));

        await _cluster.CreateTrainJobAsync("bad", new JsonObject { ["replicas"] = 0 });

        await WaitForAsync(() => _cluster.Phase("bad") == "Failed", "phase Failed");
        Assert.Contains(await _cluster.EventsAsync("bad"), e => e.Type == "Warning" && e.Reason == "InvalidSpec");
        Assert.Null(await _cluster.JobAsync("bad"));
    }
}
