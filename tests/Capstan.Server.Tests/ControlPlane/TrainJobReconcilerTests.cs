using System.Diagnostics;
using Capstan.Core.Artifacts;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;

namespace Capstan.Server.Tests.ControlPlane;

public sealed class TrainJobReconcilerTests
{
    private static string Job(string name, string script, string extra = "") => $"""
        apiVersion: capstan.dev/v1alpha1
        kind: TrainJob
        metadata:
          name: {name}
        spec:
          command: ["/bin/sh", "-c"]
          args: ['{script}']
        {extra}
        """;

    [Fact]
    public async Task Job_PrintsLossLines_SucceedsWithMetricSeriesAndLogArtifact()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        await plane.ApplyAsync(Job("losses", "echo loss=0.5; echo loss=0.25; echo loss=0.125; echo done"));

        var job = await plane.WaitForFinishAsync("losses");

        Assert.Equal(TrainJobPhase.Succeeded, job.Status!.Phase);
        var run = await plane.Store.GetRunAsync(job.Status.RunId!, TestContext.Current.CancellationToken);
        Assert.Contains(run.Data.Tags, t => t is { Key: TrainJobReconciler.TrainJobTag, Value: "default/losses" });
        Assert.Equal(Core.Tracking.RunStatus.Finished, run.Info.Status);
        var experiment = await plane.Store.GetExperimentAsync(run.Info.ExperimentId, TestContext.Current.CancellationToken);
        Assert.Equal("losses", experiment.Name);
        var history = await WaitForMetricsAsync(plane, job.Status.RunId!, "loss", 3);
        Assert.Equal([0.5, 0.25, 0.125], history.Select(m => m.Value));
        await using var log = await plane.Artifacts.OpenReadAsync($"{ArtifactUri.ToStorePath(run.Info.ArtifactUri)}/logs/output.log", TestContext.Current.CancellationToken);
        var text = await new StreamReader(log).ReadToEndAsync(TestContext.Current.CancellationToken);
        Assert.Contains("loss=0.5", text, StringComparison.Ordinal);
        Assert.Contains("done", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Job_WritesModelWithRegister_ModelVersionWithAliasExists()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        await plane.ApplyAsync(Job("modeller", "mkdir -p out; echo weights > model.bin; echo 0.9 > out/score.txt", """
              outputs:
                paths: ["out/*.txt"]
                model:
                  path: model.bin
                  register: {model: fraud, alias: candidate}
            """));

        var job = await plane.WaitForFinishAsync("modeller");

        Assert.Equal(TrainJobPhase.Succeeded, job.Status!.Phase);
        var version = await plane.Store.GetModelVersionByAliasAsync("fraud", "candidate", TestContext.Current.CancellationToken);
        Assert.Equal(job.Status.RunId, version.RunId);
        var run = await plane.Store.GetRunAsync(job.Status.RunId!, TestContext.Current.CancellationToken);
        var root = ArtifactUri.ToStorePath(run.Info.ArtifactUri);
        await using var model = await plane.Artifacts.OpenReadAsync($"{root}/model/model.bin", TestContext.Current.CancellationToken);
        Assert.Equal("weights", (await new StreamReader(model).ReadToEndAsync(TestContext.Current.CancellationToken)).Trim());
        await using var score = await plane.Artifacts.OpenReadAsync($"{root}/out/score.txt", TestContext.Current.CancellationToken);
        Assert.Equal("0.9", (await new StreamReader(score).ReadToEndAsync(TestContext.Current.CancellationToken)).Trim());
    }

    [Fact]
    public async Task OnFailure_AlwaysFailing_RetriesUpToBackoffLimitThenFailedWithEvents()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        await plane.ApplyAsync(Job("flaky", "echo trying; exit 3", """
              restartPolicy: OnFailure
              backoffLimit: 2
            """));

        var job = await plane.WaitForFinishAsync("flaky");

        Assert.Equal(TrainJobPhase.Failed, job.Status!.Phase);
        Assert.Equal(3, job.Status.Attempts);
        var failed = Assert.Single(job.Status.Conditions!, c => c.Type == TrainJobReconciler.ConditionFailed);
        Assert.Equal(TrainJobReconciler.ReasonBackoffLimitExceeded, failed.Reason);
        Assert.Contains("exit code 3", failed.Message, StringComparison.Ordinal);
        var events = await plane.Store.ListEventsAsync(job, TestContext.Current.CancellationToken);
        Assert.Contains(events, e => e is { Type: ResourceEventType.Warning, Reason: "BackOff" });
        Assert.Contains(events, e => e is { Type: ResourceEventType.Warning, Reason: TrainJobReconciler.ReasonBackoffLimitExceeded });
        Assert.Equal(3, events.Count(e => e.Reason == "Submitted"));
        var run = await plane.Store.GetRunAsync(job.Status.RunId!, TestContext.Current.CancellationToken);
        Assert.Equal(Core.Tracking.RunStatus.Failed, run.Info.Status);
    }

    [Fact]
    public async Task ExitCodePolicy_Exit1_IsNotRetried()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        await plane.ApplyAsync(Job("permanent", "exit 1", """
              restartPolicy: ExitCode
              backoffLimit: 3
            """));

        var job = await plane.WaitForFinishAsync("permanent");

        Assert.Equal(TrainJobPhase.Failed, job.Status!.Phase);
        Assert.Equal(1, job.Status.Attempts);
        Assert.Equal(TrainJobReconciler.ReasonPermanentExitCode, job.Status.Conditions!.Single(c => c.Type == TrainJobReconciler.ConditionFailed).Reason);
    }

    [Fact]
    public async Task ExitCodePolicy_Killed137_IsRetriedUntilItSucceeds()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();

        // The first attempt SIGKILLs itself (exit 137); the second finds the marker and succeeds.
        var marker = Path.Combine(plane.Root, "marker");
        await plane.ApplyAsync(Job("killed", $"if [ -f {marker} ]; then echo second; else touch {marker}; kill -9 $$; fi", """
              restartPolicy: ExitCode
              backoffLimit: 3
            """));

        var job = await plane.WaitForFinishAsync("killed");

        Assert.Equal(TrainJobPhase.Succeeded, job.Status!.Phase);
        Assert.Equal(2, job.Status.Attempts);
    }

    [Fact]
    public async Task Deadline_Exceeded_FailsWithDeadlineExceededAndNoRetry()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        await plane.ApplyAsync(Job("slow", "sleep 30", """
              restartPolicy: OnFailure
              backoffLimit: 3
              activeDeadlineSeconds: 1
            """));

        var job = await plane.WaitForFinishAsync("slow");

        Assert.Equal(TrainJobPhase.Failed, job.Status!.Phase);
        Assert.Equal(1, job.Status.Attempts);
        Assert.Equal("DeadlineExceeded", job.Status.Conditions!.Single(c => c.Type == TrainJobReconciler.ConditionFailed).Reason);
    }

    [Fact]
    public async Task Deadline_SpansRetries_JobFailsWithDeadlineExceededBeforeBackoffLimit()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        await plane.ApplyAsync(Job("flaky", "sleep 0.7; exit 1", """
              restartPolicy: OnFailure
              backoffLimit: 20
              activeDeadlineSeconds: 2
            """));

        var job = await plane.WaitForFinishAsync("flaky");

        // Each attempt alone is well inside the deadline; only a deadline over the whole job ends it early.
        Assert.Equal(TrainJobPhase.Failed, job.Status!.Phase);
        Assert.Equal("DeadlineExceeded", job.Status.Conditions!.Single(c => c.Type == TrainJobReconciler.ConditionFailed).Reason);
        Assert.InRange(job.Status.Attempts!.Value, 2, 20);
        Assert.InRange((job.Status.CompletionTime!.Value - job.Status.StartTime!.Value).TotalSeconds, 1.5, 6);
    }

    [Fact]
    public async Task TwoReplicas_BothRanks_SeeWorldSizeTwo()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        await plane.ApplyAsync(Job("gang", "echo rank=$RANK world=$WORLD_SIZE run=$MLFLOW_RUN_ID", """
              replicas: 2
            """));

        var job = await plane.WaitForFinishAsync("gang");

        Assert.Equal(TrainJobPhase.Succeeded, job.Status!.Phase);
        var lines = await TrainJobLogs.ReadAsync(plane.Store, plane.Runtime, "default", "gang", follow: false, cancellationToken: TestContext.Current.CancellationToken).ToListAsync(TestContext.Current.CancellationToken);
        Assert.Contains(lines, l => l.Contains($"rank=0 world=2 run={job.Status.RunId}", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains($"rank=1 world=2 run={job.Status.RunId}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task QueuedJob_NoCapacity_ConditionSaysWhyItWaits()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        const string cpu3 = """
              resources:
                requests: {cpu: "3"}
            """;
        await plane.ApplyAsync(Job("hog", "sleep 30", cpu3));
        await plane.WaitForAsync("hog", j => j.Status?.Phase == TrainJobPhase.Running);
        await plane.ApplyAsync(Job("waiter", "echo finally", cpu3));

        var waiting = await plane.WaitForAsync("waiter", j => j.Status?.Conditions?.Any(c => c is { Type: TrainJobReconciler.ConditionQueued, Reason: "InsufficientCapacity" }) == true);

        Assert.Equal(TrainJobPhase.Queued, waiting.Status!.Phase);
        var queued = waiting.Status.Conditions!.Single(c => c.Type == TrainJobReconciler.ConditionQueued);
        Assert.Contains("cpu", queued.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(ConditionStatus.True, queued.Status);

        // Deleting the hog stops it, which frees the CPUs the waiter needs.
        await plane.Store.DeleteAsync(TrainJob.KindName, "default", "hog", TestContext.Current.CancellationToken);
        var done = await plane.WaitForFinishAsync("waiter");
        Assert.Equal(TrainJobPhase.Succeeded, done.Status!.Phase);
    }

    [Fact]
    public async Task Reconcile_StatusWriteLostAfterRunCreated_ReusesTheRunAndFinishesOnce()
    {
        await using var plane = await ControlPlaneHarness.StartAsync(runLoop: false);
        await plane.ApplyAsync(Job("again", "echo w > model.bin", """
              outputs:
                model:
                  path: model.bin
                  register: {model: again-model, alias: champion}
            """));
        var ct = TestContext.Current.CancellationToken;
        await plane.Reconciler.ReconcileAsync("default/again", ct);
        var first = await plane.Store.GetAsync<TrainJob>("default", "again", ct);

        // As if the pass had died between creating the run and recording it.
        first.Status!.RunId = null;
        first.Status.Attempts = 0;
        await plane.Store.UpdateStatusAsync(first, ct);
        var created = await plane.Store.GetAsync<TrainJob>("default", "again", ct);
        for (var pass = 0; pass < 200 && created.Status?.Phase != TrainJobPhase.Succeeded; pass++)
        {
            await plane.Reconciler.ReconcileAsync("default/again", ct);
            await plane.Reconciler.ReconcileAsync("default/again", ct);
            created = await plane.Store.GetAsync<TrainJob>("default", "again", ct);
            await Task.Delay(25, ct);
        }

        Assert.Equal(TrainJobPhase.Succeeded, created.Status!.Phase);
        var runs = await plane.Store.SearchRunsAsync(new Core.Tracking.RunSearch([(await plane.Store.GetExperimentByNameAsync("again", ct)).ExperimentId]), ct);
        Assert.Equal(created.Status.RunId, Assert.Single(runs.Items).Info.RunId);
        var versions = await plane.Store.SearchModelVersionsAsync(new Core.Registry.RegistrySearch("name = 'again-model'"), ct);
        Assert.Single(versions.Items);
    }

    [Fact]
    public async Task Restart_ProcessGoneMeanwhile_LostAttemptIsRetriedPerPolicy()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        var marker = Path.Combine(plane.Root, "second");
        await plane.ApplyAsync(Job("lost", $"if [ -f {marker} ]; then echo second attempt; else touch {marker}; sleep 60; fi", """
              restartPolicy: OnFailure
              backoffLimit: 1
            """));
        var running = await plane.WaitForAsync("lost", j => j.Status?.Phase == TrainJobPhase.Running);
        var pid = (await plane.Runtime.GetStatusAsync(Core.Runtime.TrainJobWorkloads.WorkloadId(running, 1), TestContext.Current.CancellationToken))!.Replicas[0].ProcessId!.Value;

        // The "server" is down while the job's whole process group dies with it, so nothing records an exit.
        await plane.RestartAsync(() => Process.Start("/bin/kill", ["-KILL", "--", $"-{pid}"])!.WaitForExit());
        var job = await plane.WaitForFinishAsync("lost");

        Assert.Equal(TrainJobPhase.Succeeded, job.Status!.Phase);
        Assert.Equal(2, job.Status.Attempts);
        var events = await plane.Store.ListEventsAsync(job, TestContext.Current.CancellationToken);
        Assert.Contains(events, e => e.Reason == "BackOff" && e.Message.Contains("was lost", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Restart_JobDeletedWhileDown_ItsProcessIsStopped()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        await plane.ApplyAsync(Job("orphan", "sleep 60"));
        var running = await plane.WaitForAsync("orphan", j => j.Status?.Phase == TrainJobPhase.Running);
        var workloadId = Core.Runtime.TrainJobWorkloads.WorkloadId(running, 1);
        var pid = (await plane.Runtime.GetStatusAsync(workloadId, TestContext.Current.CancellationToken))!.Replicas[0].ProcessId!.Value;

        // The job goes while no control plane watches: no Deleted event reaches a loop, and its process runs on.
        await plane.RestartAsync(() => plane.Store.DeleteAsync(TrainJob.KindName, "default", "orphan").GetAwaiter().GetResult());

        var until = DateTime.UtcNow.AddSeconds(15);
        var status = await plane.Runtime.GetStatusAsync(workloadId, TestContext.Current.CancellationToken);
        while (!status!.IsFinished && DateTime.UtcNow < until)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
            status = await plane.Runtime.GetStatusAsync(workloadId, TestContext.Current.CancellationToken);
        }

        Assert.Equal(Core.Runtime.WorkloadReasons.Stopped, status.Reason);
        Assert.False(ProcessIsAlive(pid), $"process {pid} of the deleted job still runs");
    }

    private static bool ProcessIsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    [Fact]
    public async Task Job_DeletedAndCreatedAgainUnderItsName_RunsAgainInANewRun()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        const string yaml = "echo run $MLFLOW_RUN_ID";
        await plane.ApplyAsync(Job("twice", yaml));
        var first = await plane.WaitForFinishAsync("twice");
        await plane.Store.DeleteAsync(TrainJob.KindName, "default", "twice", TestContext.Current.CancellationToken);

        await plane.ApplyAsync(Job("twice", yaml));
        var second = await plane.WaitForFinishAsync("twice");

        Assert.Equal(TrainJobPhase.Succeeded, second.Status!.Phase);
        Assert.NotEqual(first.Status!.RunId, second.Status.RunId);
        var lines = await TrainJobLogs.ReadAsync(plane.Store, plane.Runtime, "default", "twice", follow: false, cancellationToken: TestContext.Current.CancellationToken).ToListAsync(TestContext.Current.CancellationToken);
        Assert.Equal([$"run {second.Status.RunId}"], lines);
    }

    private static async Task<IReadOnlyList<Core.Tracking.Metric>> WaitForMetricsAsync(ControlPlaneHarness plane, string runId, string key, int count)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var history = await plane.Store.GetMetricHistoryAsync(runId, key, cancellationToken: TestContext.Current.CancellationToken);
            if (history.Items.Count >= count || DateTime.UtcNow > until)
            {
                return history.Items;
            }

            await Task.Delay(25, TestContext.Current.CancellationToken);
        }
    }
}
