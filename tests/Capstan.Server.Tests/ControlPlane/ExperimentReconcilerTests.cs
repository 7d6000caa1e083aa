using System.Globalization;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Tracking;

namespace Capstan.Server.Tests.ControlPlane;

public sealed class ExperimentReconcilerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>An experiment whose trials run <paramref name="script"/> with <c>/bin/sh -c</c>.</summary>
    private static string Experiment(string name, string parameters, string script, string extra = "", string objective = "    type: minimize\n    objectiveMetricName: loss") => $$"""
        apiVersion: capstan.dev/v1alpha1
        kind: Experiment
        metadata:
          name: {{name}}
        spec:
          objective:
        {{objective}}
        {{extra}}
          parameters:
        {{parameters}}
          trialTemplate:
            trialSpec:
              command: [/bin/sh, -c]
              args: ['{{script}}']
        """;

    private const string X = "    - {name: x, parameterType: double, feasibleSpace: {min: \"-2\", max: \"2\"}}";

    [Fact]
    public async Task Experiment_ParallelTrials_RunsToMaxWithNestedRunsAndTheBestTrial()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        var marks = Directory.CreateDirectory(Path.Combine(plane.Root, "marks")).FullName;
        var script = $"date +%s%N > {marks}/${{trialSpec.Name}}.start; sleep 0.4; awk \"BEGIN {{ print \\\"loss=\\\" (${{trialParameters.x}})^2 }}\"; date +%s%N > {marks}/${{trialSpec.Name}}.end";
        await plane.ApplyExperimentAsync(Experiment("square", X, script, "  parallelTrialCount: 2\n  maxTrialCount: 4"));

        var experiment = await plane.WaitForExperimentEndAsync("square");

        var status = experiment.Status!;
        Assert.Equal(ExperimentPhase.Succeeded, status.Phase);
        Assert.Equal(ExperimentReconciler.ReasonMaxTrialsReached, status.Conditions!.Single(c => c.Type == ExperimentReconciler.ConditionSucceeded).Reason);
        Assert.Equal((4, 4, 0), (status.Trials!.Value, status.TrialsSucceeded!.Value, status.TrialsRunning!.Value));

        // Never more than parallelTrialCount at once, and that many did run together.
        var spans = Directory.GetFiles(marks, "*.start").Select(start => (Start: long.Parse(File.ReadAllText(start).Trim(), CultureInfo.InvariantCulture), End: long.Parse(File.ReadAllText(Path.ChangeExtension(start, ".end")).Trim(), CultureInfo.InvariantCulture))).ToList();
        Assert.Equal(4, spans.Count);
        Assert.Equal(2, spans.Max(s => spans.Count(o => o.Start <= s.Start && s.Start < o.End)));

        // Every trial's run is nested under the parent run and records its parameter; the best is the smallest x².
        var losses = new Dictionary<string, double>();
        foreach (var trial in status.TrialResults!)
        {
            var run = await plane.Store.GetRunAsync(trial.RunId!, Ct);
            Assert.Contains(run.Data.Tags, t => t.Key == TrainJobReconciler.ParentRunIdTag && t.Value == status.RunId);
            var x = double.Parse(Assert.Single(run.Data.Params, p => p.Key == "x").Value, CultureInfo.InvariantCulture);
            Assert.Equal(trial.ParameterAssignments!.Single().Value, run.Data.Params.Single(p => p.Key == "x").Value);
            losses[trial.Name!] = run.Data.Metrics.Single(m => m.Key == "loss").Value;
            Assert.Equal(x * x, losses[trial.Name!], 4);
        }

        Assert.Equal(losses.MinBy(l => l.Value).Key, status.CurrentOptimalTrial!.Name);
        var parent = await plane.Store.GetRunAsync(status.RunId!, Ct);
        Assert.Equal(RunStatus.Finished, parent.Info.Status);
        Assert.Equal(losses.Values.Min(), parent.Data.Metrics.Single(m => m.Key == "loss").Value, 9);
        Assert.Equal("square", (await plane.Store.GetExperimentAsync(parent.Info.ExperimentId, Ct)).Name);
    }

    [Fact]
    public async Task Experiment_MaxTrialCountRaisedAfterItSucceeded_ResumesWithItsParentRunOpenAgain()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        const string script = "sleep 0.5; echo loss=${trialParameters.x}";
        await plane.ApplyExperimentAsync(Experiment("more", X, script, "  parallelTrialCount: 1\n  maxTrialCount: 1"));
        var first = (await plane.WaitForExperimentEndAsync("more")).Status!;
        Assert.Equal((ExperimentPhase.Succeeded, 1), (first.Phase!.Value, first.Trials!.Value));
        var parentRunId = first.RunId!;
        var ended = await plane.Store.GetRunAsync(parentRunId, Ct);
        Assert.Equal(RunStatus.Finished, ended.Info.Status);

        // The same file with maxTrialCount 2, applied again: the experiment goes on from its trial, under the same parent run,
        // which is RUNNING while the new trial runs and FINISHED again at the new end.
        await plane.ApplyExperimentAsync(Experiment("more", X, script, "  parallelTrialCount: 1\n  maxTrialCount: 2"));
        Assert.Equal(RunStatus.Running, (await plane.WaitForRunStatusAsync(parentRunId, RunStatus.Running)).Info.Status);
        var second = (await plane.WaitForExperimentAsync("more", e => e.Status is { Phase: ExperimentPhase.Succeeded, Trials: 2 })).Status!;
        Assert.Equal(parentRunId, second.RunId);
        var reopened = await plane.WaitForRunStatusAsync(parentRunId, RunStatus.Finished);
        Assert.Equal(RunStatus.Finished, reopened.Info.Status);
        Assert.True(reopened.Info.EndTime > ended.Info.EndTime, $"end {reopened.Info.EndTime} after the first end {ended.Info.EndTime}");
        Assert.All(second.TrialResults!, t => Assert.Equal(RunStatus.Finished, plane.Store.GetRunAsync(t.RunId!, Ct).Result.Info.Status));
    }

    [Fact]
    public async Task Experiment_GoalReached_EndsBeforeMaxTrials()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        const string unit = "    - {name: x, parameterType: double, feasibleSpace: {min: 0, max: 1}}";
        await plane.ApplyExperimentAsync(Experiment("goal", unit, "echo loss=${trialParameters.x}", "  parallelTrialCount: 1\n  maxTrialCount: 30", "    type: minimize\n    goal: 0.3\n    objectiveMetricName: loss"));

        var experiment = await plane.WaitForExperimentEndAsync("goal");

        var status = experiment.Status!;
        Assert.Equal(ExperimentPhase.Succeeded, status.Phase);
        Assert.Equal(ExperimentReconciler.ReasonGoalReached, status.Conditions!.Single(c => c.Type == ExperimentReconciler.ConditionSucceeded).Reason);
        Assert.True(status.Trials < 30, $"{status.Trials} trials");
        var best = status.CurrentOptimalTrial!;
        Assert.True(best.Observation!.Metrics![0].Latest <= 0.3);
        Assert.Equal(status.TrialResults!.Last().Name, best.Name);
    }

    [Theory]
    [InlineData(1, ExperimentPhase.Succeeded, ExperimentReconciler.ReasonMaxTrialsReached)]
    [InlineData(0, ExperimentPhase.Failed, ExperimentReconciler.ReasonMaxFailedTrialsReached)]
    public async Task Experiment_FailingTrial_CountsAgainstMaxFailedWithItsReason(int maxFailed, ExperimentPhase phase, string reason)
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        const string mode = "    - {name: mode, parameterType: categorical, feasibleSpace: {list: [fail, ok]}}";
        await plane.ApplyExperimentAsync(Experiment(
            "failing",
            mode,
            "if [ ${trialParameters.mode} = fail ]; then echo broken; exit 3; fi; echo loss=1",
            $"  algorithm: {{algorithmName: grid}}\n  parallelTrialCount: 1\n  maxTrialCount: 2\n  maxFailedTrialCount: {maxFailed}"));

        var experiment = await plane.WaitForExperimentEndAsync("failing");

        var status = experiment.Status!;
        Assert.Equal(phase, status.Phase);
        Assert.Equal(reason, status.Conditions!.Single(c => c.Type == (phase == ExperimentPhase.Succeeded ? ExperimentReconciler.ConditionSucceeded : ExperimentReconciler.ConditionFailed)).Reason);
        Assert.Equal(1, status.TrialsFailed);
        var failed = status.TrialResults!.Single(t => t.Phase == TrialPhase.Failed);
        Assert.Equal("fail", failed.ParameterAssignments!.Single().Value);
        Assert.Contains("exit code 3", failed.Message, StringComparison.Ordinal);
        var events = await plane.Store.ListEventsAsync(experiment, Ct);
        Assert.Contains(events, e => e is { Type: ResourceEventType.Warning, Reason: "TrialFailed" });
    }

    [Fact]
    public async Task Experiment_MedianStop_StopsTheTrialWorseThanTheMedian()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        const string x = "    - {name: x, parameterType: discrete, feasibleSpace: {list: [1, 2, 9]}}";
        await plane.ApplyExperimentAsync(Experiment(
            "median",
            x,
            "for i in 1 2 3 4 5 6 7 8 9 10; do echo loss=${trialParameters.x}; sleep 0.15; done",
            """
              algorithm: {algorithmName: grid}
              parallelTrialCount: 1
              maxTrialCount: 3
              earlyStopping:
                algorithmName: medianstop
                algorithmSettings:
                  - {name: min_trials_required, value: 2}
                  - {name: start_step, value: 2}
            """));

        var experiment = await plane.WaitForExperimentEndAsync("median");

        var status = experiment.Status!;
        Assert.Equal(ExperimentPhase.Succeeded, status.Phase);
        Assert.Equal((2, 1), (status.TrialsSucceeded!.Value, status.TrialsEarlyStopped!.Value));
        var stopped = status.TrialResults!.Single(t => t.Phase == TrialPhase.EarlyStopped);
        Assert.Equal("9", stopped.ParameterAssignments!.Single().Value);
        Assert.Contains("median", stopped.Message, StringComparison.Ordinal);
        var history = await plane.Store.GetMetricHistoryAsync(stopped.RunId!, "loss", cancellationToken: Ct);
        Assert.InRange(history.Items.Count, 3, 9);
        var job = await plane.Store.GetAsync<TrainJob>("default", stopped.Name!, Ct);
        Assert.Contains(await plane.Store.ListEventsAsync(job, Ct), e => e.Reason == ExperimentReconciler.ReasonEarlyStopped);
        var run = await plane.WaitForRunStatusAsync(stopped.RunId!, RunStatus.Killed);
        Assert.Equal(RunStatus.Killed, run.Info.Status);
        Assert.Equal("median-trial-1", status.CurrentOptimalTrial!.Name);
    }

    [Fact]
    public async Task Experiment_TwoObjectives_StatusCarriesTheParetoFront()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        const string x = "    - {name: x, parameterType: discrete, feasibleSpace: {list: [0, 1, 2]}}";
        await plane.ApplyExperimentAsync(Experiment(
            "pareto",
            x,
            "awk \"BEGIN { x = ${trialParameters.x}; print \\\"cost=\\\" x; print \\\"quality=\\\" (x < 1 ? x : 1) }\"",
            "  algorithm: {algorithmName: grid}\n  parallelTrialCount: 3\n  maxTrialCount: 3",
            "    objectives:\n      - {metricName: cost, type: minimize}\n      - {metricName: quality, type: maximize}"));

        var experiment = await plane.WaitForExperimentEndAsync("pareto");

        var status = experiment.Status!;
        Assert.Equal(ExperimentPhase.Succeeded, status.Phase);
        Assert.Equal(["0", "1"], status.ParetoFront!.Select(t => t.ParameterAssignments!.Single().Value!).Order(StringComparer.Ordinal));
        Assert.Equal("0", status.CurrentOptimalTrial!.ParameterAssignments!.Single().Value);
    }

    [Fact]
    public async Task Experiment_TrialJobDeletedWhileRunning_IsRunAgain()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        var marker = Path.Combine(plane.Root, "ran-once");
        var script = $"if [ -f {marker} ]; then echo loss=${{trialParameters.x}}; else touch {marker}; sleep 30; fi";
        await plane.ApplyExperimentAsync(Experiment("lost", X, script, "  parallelTrialCount: 1\n  maxTrialCount: 1"));
        await plane.WaitForTrialAsync("lost-trial-1", j => j.Status?.Phase == TrainJobPhase.Running);

        await plane.Store.DeleteAsync(TrainJob.KindName, "default", "lost-trial-1", Ct);
        var experiment = await plane.WaitForExperimentEndAsync("lost");

        var trial = Assert.Single(experiment.Status!.TrialResults!);
        Assert.Equal(TrialPhase.Succeeded, trial.Phase);
        Assert.Equal(1, trial.Reruns);
        Assert.Contains(await plane.Store.ListEventsAsync(experiment, Ct), e => e.Reason == "TrialRerun");
    }

    [Fact]
    public async Task Experiment_Deleted_DeletesAndStopsItsTrials()
    {
        await using var plane = await ControlPlaneHarness.StartAsync();
        await plane.ApplyExperimentAsync(Experiment("doomed", X, "sleep 30", "  parallelTrialCount: 2\n  maxTrialCount: 2"));
        var first = await plane.WaitForTrialAsync("doomed-trial-1", j => j.Status?.Phase == TrainJobPhase.Running);
        var second = await plane.WaitForTrialAsync("doomed-trial-2", j => j.Status?.Phase == TrainJobPhase.Running);

        await plane.Store.DeleteAsync(TuningExperiment.KindName, "default", "doomed", Ct);

        var until = DateTime.UtcNow.AddSeconds(20);
        while ((await plane.Store.ListAsync<TrainJob>("default", cancellationToken: Ct)).Count > 0)
        {
            Assert.True(DateTime.UtcNow < until, "trials still exist");
            await Task.Delay(50, Ct);
        }

        foreach (var job in new[] { first, second })
        {
            var workloadId = Core.Runtime.TrainJobWorkloads.WorkloadId(job, job.Status!.Attempts!.Value);
            while ((await plane.Runtime.GetStatusAsync(workloadId, Ct))!.Reason != Core.Runtime.WorkloadReasons.Stopped)
            {
                Assert.True(DateTime.UtcNow < until, $"{workloadId} still runs");
                await Task.Delay(50, Ct);
            }
        }
    }
}
