using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Tracking;
using Capstan.Runtime.Kubernetes.Tests.FakeApiServer;
using k8s;
using k8s.Models;
using static Capstan.Runtime.Kubernetes.Tests.Operator.OperatorHarness;

namespace Capstan.Runtime.Kubernetes.Tests.Operator;

/// <summary>
/// <c>capstan operator</c>'s Experiment controller against the fake API server. The test plays the cluster's other
/// parts: the Job controller and kubelet, which run a trial's Job as a pod labelled <c>batch.kubernetes.io/job-name</c>
/// whose log holds the <c>loss=...</c> line the training code printed, then mark the Job Complete (or Failed).
/// </summary>
public sealed class ExperimentControllerTests : IAsyncLifetime
{
    private OperatorHarness _cluster = null!;

    public async ValueTask InitializeAsync() => _cluster = await OperatorHarness.StartAsync();

    public async ValueTask DisposeAsync() => await _cluster.DisposeAsync();

    private ApiResourceType Experiments => _cluster.Server.Type("capstan.dev", "experiments");

    [Fact]
    public async Task Experiment_ParallelTrials_RunsToMaxTrialCountWithTheBestTrialInItsStatus()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        var experiment = CreateExperiment("square", parallel: 2, max: 4);

        // Two trials at once, never a third while they run.
        await WaitForAsync(() => TrialNames().Count == 2, "two trials");
        await Task.Delay(300);
        Assert.Equal(["square-trial-1", "square-trial-2"], TrialNames());

        // Conflicting writers make two status writes meet a genuine 409; the controller reads again and carries on.
        _cluster.Server.Objects.InterposeWriter(Experiments, 2, o => o["metadata"]!.AsObject()["labels"] = new JsonObject { ["touched"] = Guid.NewGuid().ToString() });
        var losses = new Dictionary<string, double>();
        for (var next = 1; next <= 4; next++)
        {
            var trial = $"square-trial-{next}";
            await WaitForAsync(() => TrialNames().Contains(trial), trial);
            Assert.True(TrialNames().Count(n => !IsFinished(n)) <= 2, "more than parallelTrialCount trials ran at once");
            losses[trial] = await CompleteTrialAsync(trial);
        }

        await WaitForAsync(() => Phase("square") is "Succeeded" or "Failed", "the experiment to end", onTimeout: () => Status("square")?.ToJsonString() ?? "no status");
        var status = Status("square")!;
        Assert.Equal("Succeeded", status["phase"]!.GetValue<string>());
        Assert.Equal("MaxTrialsReached", Condition(status, "Succeeded")["reason"]!.GetValue<string>());
        Assert.Equal("True", Condition(status, "Created")["status"]!.GetValue<string>());
        Assert.Equal((4, 4, 0), (status["trials"]!.GetValue<int>(), status["trialsSucceeded"]!.GetValue<int>(), status["trialsRunning"]!.GetValue<int>()));
        Assert.Equal(4, TrialNames().Count);
        Assert.Equal(4, _cluster.Count("POST", "/trainjobs", 201));
        Assert.Equal(2, _cluster.Count("PUT", "/experiments/square/status", 409));

        // The best trial is the smallest x², with its parameters and objective.
        var best = status["currentOptimalTrial"]!;
        var bestName = losses.MinBy(l => l.Value).Key;
        Assert.Equal(bestName, best["name"]!.GetValue<string>());
        Assert.Equal(Parameters(bestName)["x"], best["parameterAssignments"]![0]!["value"]!.GetValue<string>());
        Assert.Equal(losses[bestName], best["observation"]!["metrics"]![0]!["min"]!.GetValue<double>(), 9);

        // Each trial is a TrainJob owned by the Experiment, labelled with it, its parameter substituted into the command.
        var uid = experiment["metadata"]!["uid"]!.GetValue<string>();
        foreach (var name in TrialNames())
        {
            var trainJob = _cluster.TrainJob(name);
            var owner = Assert.Single(trainJob["metadata"]!["ownerReferences"]!.AsArray())!;
            Assert.Equal((uid, "Experiment", true), (owner["uid"]!.GetValue<string>(), owner["kind"]!.GetValue<string>(), owner["controller"]!.GetValue<bool>()));
            Assert.Equal("square", trainJob["metadata"]!["labels"]!["capstan.dev/experiment"]!.GetValue<string>());
            Assert.Equal(name[(name.LastIndexOf('-') + 1)..], trainJob["metadata"]!["labels"]!["capstan.dev/trial-index"]!.GetValue<string>());
            Assert.Equal($"--x={Parameters(name)["x"]}", trainJob["spec"]!["args"]![0]!.GetValue<string>());
        }

        var reasons = (await ExperimentEventsAsync("square")).Select(e => e.Reason).ToList();
        Assert.Equal(4, reasons.Count(r => r == "TrialCreated"));
        Assert.Equal(4, reasons.Count(r => r == "TrialSucceeded"));
        Assert.Contains("MaxTrialsReached", reasons);
    }

    [Fact]
    public async Task Experiment_MaxTrialCountRaisedAfterItSucceeded_ResumesFromItsTrials()
    {
        await using var temp = await TrackingStore.OpenAsync();
        await _cluster.StartOperatorAsync(FastOptions("op-a") with { Tracking = temp.Store });
        CreateExperiment("more", parallel: 2, max: 2);
        await WaitForAsync(() => TrialNames().Count == 2, "two trials");
        await CompleteTrialAsync("more-trial-1");
        await CompleteTrialAsync("more-trial-2");
        await WaitForAsync(() => Phase("more") == "Succeeded", "the experiment to succeed");
        var parentRunId = Status("more")!["runId"]!.GetValue<string>();
        await WaitForAsync(() => Status("more")?["conditions"]?.AsArray().Any(c => c!["type"]!.GetValue<string>() == "RunEnded" && c["status"]!.GetValue<string>() == "True") == true, "RunEnded True");
        Assert.Equal(RunStatus.Finished, (await temp.Store.GetRunAsync(parentRunId, TestContext.Current.CancellationToken)).Info.Status);

        // kubectl edit: maxTrialCount 2 -> 3 (a spec change, so a new generation).
        EditSpec("more", spec => spec["maxTrialCount"] = 3);
        await WaitForAsync(() => TrialNames().Contains("more-trial-3"), "a third trial", onTimeout: () => Status("more")?.ToJsonString() ?? "no status");
        Assert.Equal(3, TrialNames().Count);
        Assert.Equal("Running", Phase("more"));
        Assert.Equal("True", Condition(Status("more")!, "Restarting")["status"]!.GetValue<string>());
        Assert.Equal(("False", "Resumed"), (Condition(Status("more")!, "RunEnded")["status"]!.GetValue<string>(), Condition(Status("more")!, "RunEnded")["reason"]!.GetValue<string>()));
        Assert.Equal(RunStatus.Running, (await temp.Store.GetRunAsync(parentRunId, TestContext.Current.CancellationToken)).Info.Status);

        await CompleteTrialAsync("more-trial-3");
        await WaitForAsync(() => Phase("more") == "Succeeded" && Status("more")!["trialsSucceeded"]!.GetValue<int>() == 3, "the experiment to succeed again", onTimeout: () => Status("more")?.ToJsonString() ?? "no status");
        Assert.Equal(RunStatus.Finished, (await temp.Store.GetRunAsync(parentRunId, TestContext.Current.CancellationToken)).Info.Status);
        Assert.Equal(parentRunId, Status("more")!["runId"]!.GetValue<string>());
        Assert.Equal(3, _cluster.Count("POST", "/trainjobs", 201));
        Assert.Contains("Resumed", (await ExperimentEventsAsync("more")).Select(e => e.Reason));

        // resumePolicy Never: the same edit leaves a finished experiment finished.
        CreateExperiment("once", parallel: 1, max: 1, resumePolicy: "Never");
        await WaitForAsync(() => TrialNames().Contains("once-trial-1"), "once's trial");
        await CompleteTrialAsync("once-trial-1");
        await WaitForAsync(() => Phase("once") == "Succeeded", "once to succeed");
        EditSpec("once", spec => spec["maxTrialCount"] = 2);
        await Task.Delay(500);
        Assert.DoesNotContain("once-trial-2", TrialNames());
        Assert.Equal("Succeeded", Phase("once"));
    }

    [Fact]
    public async Task Experiment_MoreFailedThanMaxFailedTrialCount_FailsAndStopsTheRunningTrial()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        CreateExperiment("brittle", parallel: 2, max: 6, maxFailed: 1);
        await WaitForAsync(() => TrialNames().Count == 2, "two trials");

        await FailTrialAsync("brittle-trial-1");
        await WaitForAsync(() => TrialNames().Contains("brittle-trial-3"), "a trial in place of the failed one");
        Assert.Equal("Running", Phase("brittle"));
        await FailTrialAsync("brittle-trial-3");

        await WaitForAsync(() => Phase("brittle") == "Failed", "the experiment to fail", onTimeout: () => Status("brittle")?.ToJsonString() ?? "no status");
        var status = Status("brittle")!;
        Assert.Equal("MaxFailedTrialsReached", Condition(status, "Failed")["reason"]!.GetValue<string>());
        Assert.Contains("2 trial(s) failed, more than maxFailedTrialCount 1", status["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(2, status["trialsFailed"]!.GetValue<int>());
        var results = status["trialResults"]!.AsArray().ToDictionary(r => r!["name"]!.GetValue<string>(), r => r!);
        Assert.Equal("BackoffLimitExceeded", results["brittle-trial-1"]["reason"]!.GetValue<string>());
        Assert.Equal("Killed", results["brittle-trial-2"]["phase"]!.GetValue<string>());

        // The trial still running was stopped: its TrainJob deleted (and with it its Job), no new trial after the end.
        await WaitForAsync(() => _cluster.TryTrainJob("brittle-trial-2") is null, "the running trial to be stopped");
        await Task.Delay(300);
        Assert.Equal(["brittle-trial-1", "brittle-trial-3"], TrialNames());
        Assert.Contains((await ExperimentEventsAsync("brittle")), e => e.Type == "Warning" && e.Reason == "TrialFailed" && e.Message.Contains("BackoffLimitExceeded", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Operator_RestartedMidExperiment_ResumesWithoutDuplicatingTrials()
    {
        var first = await _cluster.StartOperatorAsync(FastOptions("op-a"));
        CreateExperiment("resume", parallel: 2, max: 4);
        await WaitForAsync(() => TrialNames().Count == 2, "two trials");
        var loss1 = await CompleteTrialAsync("resume-trial-1");
        await WaitForAsync(() => TrialNames().Count == 3, "a third trial");
        await WaitForAsync(() => Status("resume")?["trialsSucceeded"]?.GetValue<int>() == 1, "the first result recorded");

        await _cluster.StopAsync(first);
        var second = await _cluster.StartOperatorAsync(FastOptions("op-b"));
        await WaitForAsync(() => second.IsLeader, "the new operator to lead");

        // The new leader adopts trials 2 and 3 as they are: nothing created while they run.
        await Task.Delay(500);
        Assert.Equal(["resume-trial-1", "resume-trial-2", "resume-trial-3"], TrialNames());
        var loss2 = await CompleteTrialAsync("resume-trial-2");
        await WaitForAsync(() => TrialNames().Contains("resume-trial-4"), "trial 4 from the new leader");
        var loss3 = await CompleteTrialAsync("resume-trial-3");
        var loss4 = await CompleteTrialAsync("resume-trial-4");

        await WaitForAsync(() => Phase("resume") == "Succeeded", "the experiment to succeed", onTimeout: () => Status("resume")?.ToJsonString() ?? "no status");
        Assert.Equal(4, _cluster.Count("POST", "/trainjobs", 201));
        Assert.Equal(4, TrialNames().Count);
        var status = Status("resume")!;
        Assert.Equal(4, status["trialsSucceeded"]!.GetValue<int>());
        var best = new[] { ("resume-trial-1", loss1), ("resume-trial-2", loss2), ("resume-trial-3", loss3), ("resume-trial-4", loss4) }.MinBy(t => t.Item2).Item1;
        Assert.Equal(best, status["currentOptimalTrial"]!["name"]!.GetValue<string>());

        // The trials' parameters are distinct: the rebuilt search did not suggest the same point again.
        Assert.Equal(4, TrialNames().Select(n => Parameters(n)["x"]).Distinct().Count());
        var created = (await ExperimentEventsAsync("resume")).Where(e => e.Reason == "TrialCreated").ToList();
        Assert.Contains(created, e => e.Message.StartsWith("Trial resume-trial-4", StringComparison.Ordinal) && e.ReportingInstance == "op-b");
    }

    [Fact]
    public async Task Experiment_Deleted_ItsTrialsAreGarbageCollected()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        CreateExperiment("doomed", parallel: 2, max: 4);
        await WaitForAsync(() => TrialNames().Count == 2, "two trials");
        await WaitForAsync(async () => await _cluster.JobAsync("doomed-trial-1") is not null, "the first trial's Job");

        _cluster.Server.Objects.Delete(Experiments, "default", "doomed", propagation: null, preconditions: null);

        await WaitForAsync(() => TrialNames().Count == 0, "the trials to be garbage-collected");
        await WaitForAsync(async () => await _cluster.JobAsync("doomed-trial-1") is null, "the trial's Job to go with it");
    }

    [Fact]
    public async Task Trial_DeletedByHand_IsRunAgainWithTheSameParameters()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        CreateExperiment("lost", parallel: 1, max: 1);
        await WaitForAsync(() => Status("lost")?["trials"]?.GetValue<int>() == 1, "the trial recorded");
        var parameters = Parameters("lost-trial-1");
        var uid = _cluster.TrainJob("lost-trial-1")["metadata"]!["uid"]!.GetValue<string>();

        _cluster.Server.Objects.Delete(_cluster.TrainJobs, "default", "lost-trial-1", propagation: null, preconditions: null);

        await WaitForAsync(() => _cluster.TryTrainJob("lost-trial-1")?["metadata"]?["uid"]?.GetValue<string>() is { } again && again != uid, "the trial to be created again");
        Assert.Equal(parameters, Parameters("lost-trial-1"));
        await WaitForAsync(() => Status("lost")?["trialResults"]?[0]?["reruns"]?.GetValue<int>() == 1, "the rerun recorded");
        await CompleteTrialAsync("lost-trial-1");
        await WaitForAsync(() => Phase("lost") == "Succeeded", "the experiment to succeed", onTimeout: () => Status("lost")?.ToJsonString() ?? "no status");
        Assert.Equal(["lost-trial-1"], TrialNames());
    }

    [Fact]
    public async Task Trial_SucceededWithoutItsObjective_CountsAsMetricsUnavailable()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a"));
        CreateExperiment("mute", parallel: 1, max: 1);
        await WaitForAsync(() => TrialNames().Count == 1, "a trial");

        await CompleteTrialAsync("mute-trial-1", log: "epoch=1 accuracy=0.5\ndone\n");

        await WaitForAsync(() => Phase("mute") == "Failed", "the experiment to end", onTimeout: () => Status("mute")?.ToJsonString() ?? "no status");
        var trial = Status("mute")!["trialResults"]![0]!;
        Assert.Equal("MetricsUnavailable", trial["phase"]!.GetValue<string>());
        Assert.Contains("printed no loss", trial["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("NoTrialSucceeded", Condition(Status("mute")!, "Failed")["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task Experiment_WithTracking_TrialRunsNestUnderAParentRunAndMlflowLoggedMetricsAreObserved()
    {
        await using var temp = await TrackingStore.OpenAsync();
        var tracking = temp.Store;
        await _cluster.StartOperatorAsync(FastOptions("op-a") with { Tracking = tracking });
        CreateExperiment("logged", parallel: 1, max: 1);
        await WaitForAsync(() => TrialNames().Count == 1, "a trial");
        await WaitForAsync(() => _cluster.TryTrainJob("logged-trial-1")?["status"]?["runId"] is not null, "the trial's run");
        var runId = _cluster.TrainJob("logged-trial-1")["status"]!["runId"]!.GetValue<string>();

        // The training code logs through MLflow into the run the operator gave it (MLFLOW_RUN_ID) and prints nothing.
        await tracking.LogBatchAsync(runId, new LogBatch([new Metric("loss", 0.9, 1, 1), new Metric("loss", 0.3, 2, 2)]), TestContext.Current.CancellationToken);
        await CompleteTrialAsync("logged-trial-1", log: "training...\n");
        await WaitForAsync(() => Phase("logged") == "Succeeded", "the experiment to succeed", onTimeout: () => Status("logged")?.ToJsonString() ?? "no status");
        var result = Status("logged")!["trialResults"]!.AsArray().Single()!;
        Assert.Equal("Succeeded", result["phase"]!.GetValue<string>());
        var loss = result["observation"]!["metrics"]!.AsArray().Single()!;
        Assert.Equal((0.3, 0.9, 0.3), (loss["min"]!.GetValue<double>(), loss["max"]!.GetValue<double>(), loss["latest"]!.GetValue<double>()));

        // The trial's run nests under the experiment's parent run, which ends with the experiment.
        var parentRunId = Status("logged")!["runId"]!.GetValue<string>();
        var trialRun = await tracking.GetRunAsync(runId, TestContext.Current.CancellationToken);
        Assert.Contains(trialRun.Data.Tags, t => t.Key == "mlflow.parentRunId" && t.Value == parentRunId);
        Assert.Equal(RunStatus.Finished, (await tracking.GetRunAsync(parentRunId, TestContext.Current.CancellationToken)).Info.Status);
    }

    [Fact]
    public async Task Experiment_TrackingApiDownWhenItEnds_TheParentRunIsEndedOnceTheApiAnswers()
    {
        await using var temp = await TrackingStore.OpenAsync();
        var (tracking, outage) = TrackingOutage.Wrap(temp.Store);
        await _cluster.StartOperatorAsync(FastOptions("op-a") with { Tracking = tracking });
        CreateExperiment("outage", parallel: 1, max: 1);
        await WaitForAsync(() => TrialNames().Count == 1, "a trial");
        await WaitForAsync(() => Status("outage")?["runId"] is not null, "the parent run");
        var parentRunId = Status("outage")!["runId"]!.GetValue<string>();

        // The API goes down before the trial and then the experiment end: neither run can be ended.
        await WaitForAsync(() => _cluster.TryTrainJob("outage-trial-1")?["status"]?["runId"] is not null, "the trial's run");
        var trialRunId = _cluster.TrainJob("outage-trial-1")["status"]!["runId"]!.GetValue<string>();
        outage.Down = true;
        await CompleteTrialAsync("outage-trial-1", log: "loss=0.25\n");
        await WaitForAsync(() => Phase("outage") == "Succeeded", "the experiment to succeed", onTimeout: () => Status("outage")?.ToJsonString() ?? "no status");
        await WaitForAsync(() => RunEnded()?["reason"]?.GetValue<string>() == "TrackingUnavailable", "RunEnded False");
        Assert.Equal(RunStatus.Running, (await temp.Store.GetRunAsync(parentRunId, TestContext.Current.CancellationToken)).Info.Status);
        Assert.Equal(RunStatus.Running, (await temp.Store.GetRunAsync(trialRunId, TestContext.Current.CancellationToken)).Info.Status);
        var refused = outage.RefusedUpdates;
        await WaitForAsync(() => outage.RefusedUpdates >= refused + 2, "retries");

        outage.Down = false;
        await WaitForAsync(() => RunEnded()?["status"]?.GetValue<string>() == "True", "RunEnded True");
        var parent = await temp.Store.GetRunAsync(parentRunId, TestContext.Current.CancellationToken);
        Assert.Equal(RunStatus.Finished, parent.Info.Status);
        Assert.Equal(Status("outage")!["completionTime"]!.GetValue<DateTimeOffset>().ToUnixTimeMilliseconds(), parent.Info.EndTime);
        await WaitForAsync(async () => (await temp.Store.GetRunAsync(trialRunId, TestContext.Current.CancellationToken)).Info.Status == RunStatus.Finished, "the trial's run to end");
        Assert.Single(await ExperimentEventsAsync("outage"), e => e.Type == "Warning" && e.Reason == "TrackingUnavailable");

        JsonNode? RunEnded() => Status("outage")?["conditions"]?.AsArray().FirstOrDefault(c => c!["type"]!.GetValue<string>() == "RunEnded");
    }

    [Fact]
    public async Task Experiment_MedianStop_StopsATrialWorseThanTheMedianAndRunsAnother()
    {
        await _cluster.StartOperatorAsync(FastOptions("op-a") with { ExperimentPollInterval = TimeSpan.FromMilliseconds(100) });
        var medianStop = new JsonObject
        {
            ["algorithmName"] = "medianstop",
            ["algorithmSettings"] = new JsonArray(
                new JsonObject { ["name"] = "min_trials_required", ["value"] = "1" },
                new JsonObject { ["name"] = "start_step", ["value"] = "2" }),
        };
        CreateExperiment("pruned", parallel: 2, max: 3, earlyStopping: medianStop);
        await WaitForAsync(() => TrialNames().Count == 2, "two trials");
        await CompleteTrialAsync("pruned-trial-1", log: "step=1 loss=1\nstep=2 loss=0.5\nstep=3 loss=0.25\n");

        // Trial 2 is running and has printed a loss far worse than trial 1's by the same step.
        await RunPodAsync("pruned-trial-2", "step=1 loss=5\nstep=2 loss=4\n");
        await _cluster.SetJobStatusAsync("pruned-trial-2", s => { s.Active = 1; s.StartTime = DateTime.UtcNow; });

        await WaitForAsync(() => _cluster.TryTrainJob("pruned-trial-2") is null, "trial 2 to be stopped", onTimeout: () => Status("pruned")?.ToJsonString() ?? "no status");
        var stopped = Status("pruned")!["trialResults"]!.AsArray().Single(r => r!["name"]!.GetValue<string>() == "pruned-trial-2")!;
        Assert.Equal(("EarlyStopped", "EarlyStopped"), (stopped["phase"]!.GetValue<string>(), stopped["reason"]!.GetValue<string>()));
        Assert.Contains("worse than the median 0.75", stopped["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(4, stopped["observation"]!["metrics"]![0]!["latest"]!.GetValue<double>());

        await WaitForAsync(() => TrialNames().Contains("pruned-trial-3"), "a third trial");
        await CompleteTrialAsync("pruned-trial-3", log: "step=1 loss=0.9\nstep=2 loss=0.4\n");
        await WaitForAsync(() => Phase("pruned") == "Succeeded", "the experiment to succeed", onTimeout: () => Status("pruned")?.ToJsonString() ?? "no status");
        var status = Status("pruned")!;
        Assert.Equal((3, 2, 1), (status["trials"]!.GetValue<int>(), status["trialsSucceeded"]!.GetValue<int>(), status["trialsEarlyStopped"]!.GetValue<int>()));
        Assert.Equal("pruned-trial-1", status["currentOptimalTrial"]!["name"]!.GetValue<string>());
        Assert.Contains(await ExperimentEventsAsync("pruned"), e => e.Reason == "TrialEarlyStopped" && e.Message.StartsWith("Trial pruned-trial-2 stopped by medianstop", StringComparison.Ordinal));
    }

    private JsonObject CreateExperiment(string name, int parallel, int max, int? maxFailed = null, JsonObject? earlyStopping = null, string? resumePolicy = null)
    {
        var spec = new JsonObject
        {
            ["objective"] = new JsonObject { ["type"] = "minimize", ["objectiveMetricName"] = "loss" },
            ["algorithm"] = new JsonObject { ["algorithmName"] = "random" },
            ["parallelTrialCount"] = parallel,
            ["maxTrialCount"] = max,
            ["parameters"] = new JsonArray(new JsonObject
            {
                ["name"] = "x",
                ["parameterType"] = "double",
                ["feasibleSpace"] = new JsonObject { ["min"] = "-2", ["max"] = "2" },
            }),
            ["trialTemplate"] = new JsonObject
            {
                ["trialParameters"] = new JsonArray(new JsonObject { ["name"] = "x", ["reference"] = "x" }),
                ["trialSpec"] = new JsonObject
                {
                    ["image"] = "registry.example/trainer:1",
                    ["command"] = new JsonArray("python", "train.py"),
                    ["args"] = new JsonArray("--x=${trialParameters.x}"),
                },
            },
        };
        if (maxFailed is { } failed)
        {
            spec["maxFailedTrialCount"] = failed;
        }

        if (earlyStopping is not null)
        {
            spec["earlyStopping"] = earlyStopping;
        }

        if (resumePolicy is not null)
        {
            spec["resumePolicy"] = resumePolicy;
        }

        return _cluster.Server.Objects.Create(Experiments, "default", new JsonObject
        {
            ["apiVersion"] = "capstan.dev/v1alpha1",
            ["kind"] = "Experiment",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = "default" },
            ["spec"] = spec,
        });
    }

    /// <summary>What the Job controller and kubelet do for a trial that trains and prints <c>loss=x²</c>: a pod with that log, then the Job Complete.</summary>
    private async Task<double> CompleteTrialAsync(string trial, string? log = null)
    {
        var x = double.Parse(Parameters(trial)["x"], CultureInfo.InvariantCulture);
        var loss = x * x;
        await RunPodAsync(trial, log ?? $"epoch=1 loss={(loss + 1).ToString("R", CultureInfo.InvariantCulture)}\nepoch=2 loss={loss.ToString("R", CultureInfo.InvariantCulture)}\n");
        await _cluster.CompleteJobAsync(trial);
        await WaitForAsync(() => IsFinished(trial), $"{trial} to succeed");
        return loss;
    }

    private async Task FailTrialAsync(string trial)
    {
        await RunPodAsync(trial, "Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n");
        await _cluster.SetJobStatusAsync(trial, s =>
        {
            s.Active = 0;
            s.Failed = 1;
            s.Conditions = [OperatorHarness.Condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"), OperatorHarness.Condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")];
        });
        await WaitForAsync(() => IsFinished(trial), $"{trial} to fail");
    }

    private Task RunPodAsync(string trial, string log) => _cluster.RunJobPodAsync(trial, log);

    private List<string> TrialNames() =>
        [.. _cluster.Server.Objects.List(_cluster.TrainJobs, "default", o => o["metadata"]?["labels"]?["capstan.dev/experiment"] is not null).Items
            .Select(o => o["metadata"]!["name"]!.GetValue<string>())
            .OrderBy(n => int.Parse(n[(n.LastIndexOf('-') + 1)..], CultureInfo.InvariantCulture))];

    private bool IsFinished(string trial) => _cluster.Phase(trial) is "Succeeded" or "Failed";

    private Dictionary<string, string> Parameters(string trial) =>
        JsonSerializer.Deserialize<Dictionary<string, string>>(_cluster.TrainJob(trial)["metadata"]!["annotations"]!["capstan.dev/trial-parameters"]!.GetValue<string>())!;

    /// <summary>What kubectl edit does: read, change the spec, replace on that resourceVersion, again on a 409.</summary>
    private void EditSpec(string name, Action<JsonObject> change)
    {
        for (var attempt = 0; ; attempt++)
        {
            var current = Experiment(name)!;
            change(current["spec"]!.AsObject());
            try
            {
                _cluster.Server.Objects.Replace(Experiments, "default", name, current, statusOnly: false);
                return;
            }
            catch (ApiException e) when (e.Code == 409 && attempt < 10)
            {
            }
        }
    }

    private JsonObject? Experiment(string name)
    {
        try
        {
            return _cluster.Server.Objects.Get(Experiments, "default", name);
        }
        catch (ApiException e) when (e.Code == 404)
        {
            return null;
        }
    }

    private JsonNode? Status(string name) => Experiment(name)?["status"];

    private string? Phase(string name) => Status(name)?["phase"]?.GetValue<string>();

    private static JsonNode Condition(JsonNode status, string type) =>
        status["conditions"]!.AsArray().Single(c => c!["type"]!.GetValue<string>() == type)!;

    private async Task<IReadOnlyList<Corev1Event>> ExperimentEventsAsync(string name) =>
        [.. (await _cluster.Client.CoreV1.ListNamespacedEventAsync("default")).Items.Where(e => e.InvolvedObject.Name == name && e.InvolvedObject.Kind == "Experiment")];
}
