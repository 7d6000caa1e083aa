using Capstan.Core.Runtime;

namespace Capstan.Runtime.Local.Tests;

public sealed class LocalWorkloadRuntimeTests
{
    [Fact]
    public async Task Submit_ThreeReplicaGang_EachReplicaGetsThePyTorchJobEnvironment()
    {
        await using var scratch = new ScratchRuntime();
        var environment = new Dictionary<string, string> { ["MLFLOW_RUN_ID"] = "run-1", ["CAPSTAN_URL"] = "http://127.0.0.1:5000" };

        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("gang", "env > env.txt", replicas: 3, environment: environment));
        var status = await scratch.WaitForFinishAsync("gang");

        Assert.Equal(WorkloadPhase.Succeeded, status.Phase);
        var envs = status.Replicas.Select(r => ReadEnv(Path.Combine(r.WorkingDirectory, "env.txt"))).ToList();
        Assert.Equal(3, envs.Count);
        var port = envs[0]["MASTER_PORT"];
        Assert.True(int.Parse(port, System.Globalization.CultureInfo.InvariantCulture) > 0);
        for (var rank = 0; rank < 3; rank++)
        {
            var env = envs[rank];
            Assert.Equal("127.0.0.1", env["MASTER_ADDR"]);
            Assert.Equal(port, env["MASTER_PORT"]);
            Assert.Equal("3", env["WORLD_SIZE"]);
            Assert.Equal($"{rank}", env["RANK"]);
            Assert.Equal("127.0.0.1", env["PET_MASTER_ADDR"]);
            Assert.Equal(port, env["PET_MASTER_PORT"]);
            Assert.Equal("3", env["PET_NNODES"]);
            Assert.Equal("1", env["PET_NPROC_PER_NODE"]);
            Assert.Equal($"{rank}", env["PET_NODE_RANK"]);
            Assert.Equal("run-1", env["MLFLOW_RUN_ID"]);
            Assert.Equal("http://127.0.0.1:5000", env["CAPSTAN_URL"]);
        }
    }

    [Fact]
    public async Task Submit_SingleReplica_NoRendezvousEnvironment()
    {
        await using var scratch = new ScratchRuntime();

        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("single", "env > env.txt"));
        var status = await scratch.WaitForFinishAsync("single");

        var env = ReadEnv(Path.Combine(status.Replicas[0].WorkingDirectory, "env.txt"));
        Assert.False(env.ContainsKey("MASTER_ADDR"));
        Assert.False(env.ContainsKey("WORLD_SIZE"));
    }

    [Fact]
    public async Task Submit_GangLargerThanTheMachine_RejectedWithReasonAndNothingStarts()
    {
        await using var scratch = new ScratchRuntime(cpu: "2");

        var status = await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("big", "touch started", replicas: 3, cpu: "1"));

        Assert.Equal(WorkloadPhase.Failed, status.Phase);
        Assert.Equal(WorkloadReasons.Unschedulable, status.Reason);
        Assert.Contains("3 replicas", status.Message, StringComparison.Ordinal);
        Assert.Empty(status.Replicas);
        Assert.False(Directory.Exists(Path.Combine(scratch.Root, "big", "replica-0")));
        Assert.Equal(ResourceRequest.Zero, scratch.Runtime.Used);
    }

    [Fact]
    public async Task Submit_GangThatFitsOnlyPartly_WaitsWithNoReplicaStartedThenStartsWhole()
    {
        await using var scratch = new ScratchRuntime(cpu: "2");
        var go = Path.Combine(scratch.Root, "go");
        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("holder", $"while [ ! -f {go} ]; do sleep 0.02; done", cpu: "1"));
        await scratch.WaitForRunningAsync("holder");

        var queued = await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("pair", "touch started; sleep 0.2", replicas: 2, cpu: "1"));
        await Task.Delay(300);
        var waiting = await scratch.Runtime.GetStatusAsync("pair");

        Assert.Equal(WorkloadPhase.Queued, queued.Phase);
        Assert.Equal(WorkloadPhase.Queued, waiting!.Phase);
        Assert.Equal(WorkloadReasons.InsufficientCapacity, waiting.Reason);
        Assert.Empty(waiting.Replicas);
        Assert.False(Directory.Exists(Path.Combine(scratch.Root, "pair")));
        Assert.Equal(1000, scratch.Runtime.Used.CpuMillis);

        await File.WriteAllTextAsync(go, "");
        var done = await scratch.WaitForFinishAsync("pair");

        Assert.Equal(WorkloadPhase.Succeeded, done.Phase);
        Assert.All(done.Replicas, r => Assert.True(File.Exists(Path.Combine(r.WorkingDirectory, "started"))));
        Assert.Equal(ResourceRequest.Zero, scratch.Runtime.Used);
    }

    [Fact]
    public async Task Submit_GpuRequests_EachReplicaSeesOnlyItsOwnSlots()
    {
        await using var scratch = new ScratchRuntime(gpus: 3);
        var spec = ScratchRuntime.Shell("gpus", "echo \"$CUDA_VISIBLE_DEVICES\" > gpus.txt", replicas: 2) with
        {
            Resources = new k8s.Models.V1ResourceRequirements
            {
                Limits = new Dictionary<string, k8s.Models.ResourceQuantity> { ["nvidia.com/gpu"] = new("1") },
            },
        };

        await scratch.Runtime.SubmitAsync(spec);
        var status = await scratch.WaitForFinishAsync("gpus");
        var tooMany = await scratch.Runtime.SubmitAsync(spec with { WorkloadId = "too-many", Replicas = 4 });

        var seen = status.Replicas.Select(r => File.ReadAllText(Path.Combine(r.WorkingDirectory, "gpus.txt")).Trim()).ToList();
        Assert.Equal(["0", "1"], seen);
        Assert.Equal(WorkloadReasons.Unschedulable, tooMany.Reason);
        Assert.Equal(0, scratch.Runtime.Used.Gpus);
    }

    [Fact]
    public async Task Queue_MixedPriorities_StartsByPriorityThenSubmissionOrder()
    {
        await using var scratch = new ScratchRuntime(cpu: "1");
        var go = Path.Combine(scratch.Root, "go");
        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("blocker", $"while [ ! -f {go} ]; do sleep 0.02; done", cpu: "1"));
        await scratch.WaitForRunningAsync("blocker");
        var started = new List<string>();
        using var watching = new CancellationTokenSource();
        var events = scratch.Runtime.WatchAsync(watching.Token);

        foreach (var (id, priority) in new[] { ("low-a", 0), ("high-b", 5), ("low-c", 0), ("high-d", 5), ("mid-e", 2) })
        {
            await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell(id, "true", cpu: "1", priority: priority));
        }

        await File.WriteAllTextAsync(go, "");
        await foreach (var item in events)
        {
            if (item is WorkloadStatusChanged { Status.Phase: WorkloadPhase.Running } change)
            {
                started.Add(change.WorkloadId);
                if (started.Count == 5)
                {
                    break;
                }
            }
        }

        Assert.Equal(["high-b", "high-d", "mid-e", "low-a", "low-c"], started);
    }

    [Fact]
    public async Task Exit_OfRunningJob_FreesCapacityAndStartsTheNext()
    {
        await using var scratch = new ScratchRuntime(cpu: "1", memory: "1Gi");

        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("first", "sleep 0.2", cpu: "1"));
        var second = await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("second", "true", cpu: "1"));
        var secondDone = await scratch.WaitForFinishAsync("second");
        var firstDone = await scratch.WaitForFinishAsync("first");

        Assert.Equal(WorkloadPhase.Queued, second.Phase);
        Assert.Equal(WorkloadPhase.Succeeded, secondDone.Phase);
        Assert.True(secondDone.StartTime >= firstDone.CompletionTime);
    }

    [Fact]
    public async Task Stdout_NameValueLines_ReportedAsMetricsWithSteps()
    {
        await using var scratch = new ScratchRuntime();
        var metrics = new List<(int Replica, string Key, double Value, long Step)>();
        using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var events = scratch.Runtime.WatchAsync(watching.Token);

        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("metrics", "echo 'epoch=1 loss=0.5, accuracy=0.8'; echo 'loss=0.4'; echo 'not a metric'; echo 'step=9 lr=0.01' ; echo 'loss=9' >&2"));
        await foreach (var item in events)
        {
            if (item is WorkloadMetricsReported reported)
            {
                metrics.AddRange(reported.Metrics.Select(m => (reported.Replica, m.Key, m.Value, m.Step)));
            }
            else if (item is WorkloadStatusChanged { Status.IsFinished: true })
            {
                break;
            }
        }

        Assert.Equal(
            [(0, "epoch", 1.0, 1L), (0, "loss", 0.5, 1L), (0, "accuracy", 0.8, 1L), (0, "loss", 0.4, 2L), (0, "lr", 0.01, 9L)],
            metrics);
    }

    [Fact]
    public async Task Logs_AfterTheRun_HoldStdoutAndStderrPrefixedByRank()
    {
        await using var scratch = new ScratchRuntime();

        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("logs", "echo \"out $RANK\"; echo \"err $RANK\" >&2; printf 'no newline'", replicas: 2));
        await scratch.WaitForFinishAsync("logs");
        var lines = await scratch.Runtime.ReadLogsAsync("logs", follow: false).ToListAsync();

        Assert.Equal(6, lines.Count);
        Assert.Contains("[0] out 0", lines);
        Assert.Contains("[0] err 0", lines);
        Assert.Contains("[1] out 1", lines);
        Assert.Contains("[1] err 1", lines);
        Assert.Contains("[1] no newline", lines);
        Assert.Equal(lines, (await File.ReadAllLinesAsync(Path.Combine(scratch.Root, "logs", LocalWorkloadRuntime.LogFile))).ToList());
    }

    [Fact]
    public async Task Logs_Follow_StreamsLinesAsTheyComeAndEndsWithTheJob()
    {
        await using var scratch = new ScratchRuntime();
        var go = Path.Combine(scratch.Root, "go");

        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("follow", $"echo first; while [ ! -f {go} ]; do sleep 0.02; done; echo second"));
        var lines = new List<string>();
        await foreach (var line in scratch.Runtime.ReadLogsAsync("follow", follow: true))
        {
            lines.Add(line);
            if (line == "first")
            {
                await File.WriteAllTextAsync(go, "");
            }
        }

        Assert.Equal(["first", "second"], lines);
        Assert.Equal(WorkloadPhase.Succeeded, (await scratch.Runtime.GetStatusAsync("follow"))!.Phase);
    }

    [Fact]
    public async Task Replica_ExitsNonZero_GangFailsAndOtherReplicasAreKilled()
    {
        await using var scratch = new ScratchRuntime();

        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("fail", "if [ \"$RANK\" = 1 ]; then sleep 0.1; exit 3; fi; sleep 30", replicas: 3));
        var status = await scratch.WaitForFinishAsync("fail", timeoutSeconds: 10);

        Assert.Equal(WorkloadPhase.Failed, status.Phase);
        Assert.Equal(WorkloadReasons.ReplicaFailed, status.Reason);
        Assert.Contains("replica 1 exited with code 3", status.Message, StringComparison.Ordinal);
        Assert.Equal(3, status.Replicas[1].ExitCode);
        Assert.All(new[] { status.Replicas[0], status.Replicas[2] }, r => Assert.NotEqual(0, r.ExitCode));
        Assert.True(status.CompletionTime - status.StartTime < TimeSpan.FromSeconds(5));
        Assert.All(status.Replicas, r => Assert.Null(ProcessGroups.StartTicks(r.ProcessId!.Value)));
    }

    [Fact]
    public async Task Deadline_Exceeded_GangKilledWithReason()
    {
        await using var scratch = new ScratchRuntime();

        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("slow", "sleep 30") with { ActiveDeadlineSeconds = 1 });
        var status = await scratch.WaitForFinishAsync("slow", timeoutSeconds: 10);

        Assert.Equal(WorkloadPhase.Failed, status.Phase);
        Assert.Equal(WorkloadReasons.DeadlineExceeded, status.Reason);
        Assert.InRange((status.CompletionTime - status.StartTime)!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Stop_RunningJobWithBackgroundGrandchild_KillsTheWholeTree()
    {
        await using var scratch = new ScratchRuntime(grace: TimeSpan.FromMilliseconds(500));

        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("tree", "trap '' TERM; (trap '' TERM; sleep 60) & echo $! > child.pid; sh -c 'sleep 60 & echo $! > grandchild.pid; wait'"));
        var running = await scratch.WaitForRunningAsync("tree");
        var folder = running.Replicas[0].WorkingDirectory;
        await ScratchRuntime.WaitForFileAsync(Path.Combine(folder, "child.pid"));
        await ScratchRuntime.WaitForFileAsync(Path.Combine(folder, "grandchild.pid"));
        var pids = new[] { "child.pid", "grandchild.pid" }
            .Select(f => int.Parse(File.ReadAllText(Path.Combine(folder, f)).Trim(), System.Globalization.CultureInfo.InvariantCulture))
            .Append(running.Replicas[0].ProcessId!.Value)
            .ToList();
        Assert.All(pids, pid => Assert.NotNull(ProcessGroups.StartTicks(pid)));

        var stopped = await scratch.Runtime.StopAsync("tree");

        Assert.Equal(WorkloadPhase.Failed, stopped!.Phase);
        Assert.Equal(WorkloadReasons.Stopped, stopped.Reason);
        Assert.All(pids, pid => Assert.Null(ProcessGroups.StartTicks(pid)));
    }

    [Fact]
    public async Task Stop_CommandHandlingSigterm_CleansUpWithinTheGracePeriod()
    {
        await using var scratch = new ScratchRuntime(grace: TimeSpan.FromSeconds(10));

        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("graceful", "trap 'echo cleaned > cleaned.txt; exit 0' TERM; echo ready > ready.txt; sleep 30 & wait"));
        var running = await scratch.WaitForRunningAsync("graceful");
        var folder = running.Replicas[0].WorkingDirectory;
        await ScratchRuntime.WaitForFileAsync(Path.Combine(folder, "ready.txt"));
        var stopped = await scratch.Runtime.StopAsync("graceful");

        Assert.Equal(WorkloadReasons.Stopped, stopped!.Reason);
        Assert.Equal("cleaned", File.ReadAllText(Path.Combine(folder, "cleaned.txt")).Trim());
        Assert.True(stopped.CompletionTime - stopped.StartTime < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Stop_QueuedJob_LeavesTheQueueWithoutStarting()
    {
        await using var scratch = new ScratchRuntime(cpu: "1");
        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("holder", "sleep 30", cpu: "1"));
        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("waiter", "true", cpu: "1"));

        var stopped = await scratch.Runtime.StopAsync("waiter");

        Assert.Equal((WorkloadPhase.Failed, WorkloadReasons.Stopped), (stopped!.Phase, stopped.Reason));
        Assert.Empty(stopped.Replicas);
    }

    [Fact]
    public async Task Submit_SameIdTwice_ReturnsTheExistingWorkload()
    {
        await using var scratch = new ScratchRuntime();

        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("once", "echo run >> ../../count"));
        await scratch.WaitForFinishAsync("once");
        var again = await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("once", "echo run >> ../../count"));

        Assert.Equal(WorkloadPhase.Succeeded, again.Phase);
        Assert.Single(await File.ReadAllLinesAsync(Path.Combine(scratch.Root, "count")));
    }

    [Fact]
    public async Task Submit_MissingExecutable_FailsWithExitCode127()
    {
        await using var scratch = new ScratchRuntime();

        await scratch.Runtime.SubmitAsync(new WorkloadSpec { WorkloadId = "missing", Command = ["/nonexistent/trainer"] });
        var status = await scratch.WaitForFinishAsync("missing");

        Assert.Equal(WorkloadPhase.Failed, status.Phase);
        Assert.Equal(127, status.Replicas[0].ExitCode);
        Assert.NotEmpty(await scratch.Runtime.ReadLogsAsync("missing", follow: false).ToListAsync());
    }

    [Fact]
    public async Task Restart_RunningWorkload_ReadoptedByTheNextInstanceAndFinishes()
    {
        await using var scratch = new ScratchRuntime(cpu: "2");
        var go = Path.Combine(scratch.Root, "go");
        var first = scratch.Runtime;
        await first.SubmitAsync(ScratchRuntime.Shell("survivor", $"echo before; while [ ! -f {go} ]; do sleep 0.02; done; echo 'after=1'", cpu: "1"));
        var running = await scratch.WaitForRunningAsync("survivor");
        await first.DisposeAsync();

        var second = scratch.Open();
        var adopted = await second.GetStatusAsync("survivor");

        Assert.Equal(WorkloadPhase.Running, adopted!.Phase);
        Assert.Equal(WorkloadReasons.Adopted, adopted.Reason);
        Assert.Equal(running.Replicas[0].ProcessId, adopted.Replicas[0].ProcessId);
        Assert.Equal(1000, second.Used.CpuMillis);

        await File.WriteAllTextAsync(go, "");
        var done = await scratch.WaitForFinishAsync("survivor");

        Assert.Equal(WorkloadPhase.Succeeded, done.Phase);
        Assert.Equal(0, done.Replicas[0].ExitCode);
        Assert.Equal(ResourceRequest.Zero, second.Used);
        Assert.Equal(["before", "after=1"], await second.ReadLogsAsync("survivor", follow: false).ToListAsync());
    }

    [Fact]
    public async Task Restart_WorkloadKilledWhileNoRuntimeWatched_ReportedLost()
    {
        await using var scratch = new ScratchRuntime();
        var first = scratch.Runtime;
        await first.SubmitAsync(ScratchRuntime.Shell("victim", "sleep 30"));
        var running = await scratch.WaitForRunningAsync("victim");
        await first.DisposeAsync();
        var pid = running.Replicas[0].ProcessId!.Value;
        Assert.True(ProcessGroups.Signal(pid, ProcessGroups.SigKill));
        await WaitUntilAsync(() => ProcessGroups.StartTicks(pid) is null);

        var second = scratch.Open();
        var status = await scratch.WaitForFinishAsync("victim");

        Assert.Equal(WorkloadPhase.Lost, status.Phase);
        Assert.Equal(WorkloadReasons.Lost, status.Reason);
        Assert.Equal(ResourceRequest.Zero, second.Used);
    }

    [Fact]
    public async Task Restart_FinishedWorkload_StatusAndLogsKept()
    {
        await using var scratch = new ScratchRuntime();
        await scratch.Runtime.SubmitAsync(ScratchRuntime.Shell("done", "echo hello; exit 4"));
        await scratch.WaitForFinishAsync("done");
        await scratch.Runtime.DisposeAsync();

        var second = scratch.Open();
        var status = await second.GetStatusAsync("done");

        Assert.Equal((WorkloadPhase.Failed, WorkloadReasons.ReplicaFailed, 4), (status!.Phase, status.Reason, status.Replicas[0].ExitCode));
        Assert.Equal(["hello"], await second.ReadLogsAsync("done", follow: true).ToListAsync());
    }

    [Fact]
    public async Task StartLatency_IdleRuntime_MedianWellUnderASecond()
    {
        await using var scratch = new ScratchRuntime();

        var latencies = await StartLatencyProbe.MeasureAsync(scratch.Runtime, 20);
        var median = StartLatencyProbe.Median(latencies);
        TestContext.Current.SendDiagnosticMessage($"submit-to-start p50 {median.TotalMilliseconds:F1} ms over {latencies.Count}");

        Assert.True(median < TimeSpan.FromMilliseconds(500), $"p50 {median.TotalMilliseconds} ms");
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "condition never held");
            await Task.Delay(20);
        }
    }

    private static Dictionary<string, string> ReadEnv(string path) =>
        File.ReadAllLines(path)
            .Where(line => line.Contains('=', StringComparison.Ordinal))
            .Select(line => line.Split('=', 2))
            .GroupBy(parts => parts[0])
            .ToDictionary(g => g.Key, g => g.First()[1]);
}
