using Capstan.Client;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;

namespace Capstan.Cli.Tests.ControlPlane;

public sealed class RunCommandTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

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
    public async Task Run_SucceedingJobFile_ExitsZeroWithLogLinesAndPhases()
    {
        using var home = new TempHome();
        var file = Path.Combine(home.Root, "job.yaml");
        await File.WriteAllTextAsync(file, Job("hello", "for i in 1 2 3; do echo epoch $i loss=0.$i; done"), Ct);

        var result = await CliHarness.RunAsync(home.Environment, "run", "-f", file);

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("epoch 1 loss=0.1", result.Out, StringComparison.Ordinal);
        Assert.Contains("epoch 3 loss=0.3", result.Out, StringComparison.Ordinal);
        Assert.Contains("trainjob/hello created", result.Error, StringComparison.Ordinal);
        Assert.Contains("trainjob/hello succeeded", result.Error, StringComparison.Ordinal);

        var logs = await CliHarness.RunAsync(home.Environment, "logs", "job/hello");
        Assert.Equal(0, logs.ExitCode);
        Assert.Contains("epoch 2 loss=0.2", logs.Out, StringComparison.Ordinal);

        var again = await CliHarness.RunAsync(home.Environment, "run", "-f", file);
        Assert.True(again.ExitCode == 0, again.Error);
        Assert.Contains("running it again", again.Error, StringComparison.Ordinal);
        Assert.Contains("epoch 3 loss=0.3", again.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_FailingJob_ExitsOneNamingTheReason()
    {
        using var home = new TempHome();
        var file = Path.Combine(home.Root, "job.yaml");
        await File.WriteAllTextAsync(file, Job("broken", "echo about to fail; exit 4"), Ct);

        var result = await CliHarness.RunAsync(home.Environment, "run", "-f", file);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("about to fail", result.Out, StringComparison.Ordinal);
        Assert.Contains("trainjob/broken failed", result.Error, StringComparison.Ordinal);
        Assert.Contains("exit code 4", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_MalformedFile_NamesLineAndFieldAndRunsNothing()
    {
        using var home = new TempHome();
        var file = Path.Combine(home.Root, "job.yaml");
        await File.WriteAllTextAsync(file, Job("typo", "echo hi", "  replicaz: 2"), Ct);

        var result = await CliHarness.RunAsync(home.Environment, "run", "-f", file);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{file}:8:", result.Error, StringComparison.Ordinal);
        Assert.Contains("replicaz", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_KilledWhileJobRuns_RestartedServerFinishesTheJob()
    {
        using var home = new TempHome();
        var port = ServerProcess.FreePort();
        var baseUrl = new Uri($"http://127.0.0.1:{port}/");
        using var http = new HttpClient { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(10) };
        using var client = new ResourceClient(baseUrl);
        var marker = Path.Combine(home.Root, "marker.txt");
        var job = ResourceLoader.Load(Job("survivor", $"echo started; sleep 6; echo trained > {marker}; echo finished", """
              restartPolicy: OnFailure
              backoffLimit: 2
            """), "job.yaml").Single();

        using (var server = ServerProcess.Start(port, home.Root))
        {
            await server.WaitHealthyAsync(http, Ct);
            await client.ApplyAsync(job, Ct);
            await WaitForAsync(client, "survivor", j => j.Status?.Phase == TrainJobPhase.Running, 30);
            server.KillServerOnly();
        }

        using (var restarted = ServerProcess.Start(port, home.Root))
        {
            await restarted.WaitHealthyAsync(http, Ct);
            var done = await WaitForAsync(client, "survivor", j => j.Status?.Phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed, 60);

            Assert.True(done.Status!.Phase == TrainJobPhase.Succeeded, done.Status.Message);
            Assert.Equal("trained", (await File.ReadAllTextAsync(marker, Ct)).Trim());
            var events = await client.ListEventsAsync(done, Ct);
            // Re-adopted while still running, or found lost and retried per restartPolicy OnFailure.
            Assert.True(events.Any(e => e.Reason is "Adopted" or "BackOff"), string.Join("\n", events.Select(e => $"{e.Reason}: {e.Message}")));

            var environment = new Dictionary<string, string?>(home.Environment) { ["CAPSTAN_URL"] = baseUrl.AbsoluteUri };
            var logs = await CliHarness.RunAsync(environment, "logs", "-f", "tj", "survivor");
            Assert.Equal(0, logs.ExitCode);
            Assert.Contains("finished", logs.Out, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Server_NoControlPlane_ServesTheApiWhileAnotherControlPlaneRunsTheHomesJobs()
    {
        using var home = new TempHome();
        var port = ServerProcess.FreePort();
        var baseUrl = new Uri($"http://127.0.0.1:{port}/");
        using var http = new HttpClient { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(10) };
        using var client = new ResourceClient(baseUrl);
        var file = Path.Combine(home.Root, "job.yaml");
        await File.WriteAllTextAsync(file, Job("elsewhere", "echo loss=0.5"), Ct);

        using var server = ServerProcess.Start(port, home.Root, "--no-control-plane");
        await server.WaitHealthyAsync(http, Ct);

        // An API-only server holds no control-plane lock, so 'capstan run' on the same home runs the job, and the
        // server shows it, as the API server on a cluster shows what the operator runs.
        var run = await CliHarness.RunAsync(home.Environment, "run", "-f", file);
        Assert.True(run.ExitCode == ExitCodes.Ok, run.Error);
        var job = await WaitForAsync(client, "elsewhere", j => j.Status?.Phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed, 30);
        Assert.Equal(TrainJobPhase.Succeeded, job.Status!.Phase);
    }

    private static async Task<TrainJob> WaitForAsync(IResourceStore store, string name, Func<TrainJob, bool> condition, int timeoutSeconds)
    {
        var until = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            var job = await store.GetAsync<TrainJob>("default", name, Ct);
            if (condition(job))
            {
                return job;
            }

            Assert.True(DateTime.UtcNow < until, $"{name}: still {job.Status?.Phase}: {job.Status?.Message}");
            await Task.Delay(100, Ct);
        }
    }
}
