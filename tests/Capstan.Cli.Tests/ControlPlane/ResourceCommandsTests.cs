using System.Text.Json;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Store.Sqlite;

namespace Capstan.Cli.Tests.ControlPlane;

/// <summary>apply/get/describe/delete against the embedded store under a temporary CAPSTAN_HOME, and one round through a server.</summary>
public sealed class ResourceCommandsTests : IDisposable
{
    private const string GoodJob = """
        apiVersion: capstan.dev/v1alpha1
        kind: TrainJob
        metadata:
          name: mnist
          labels:
            team: vision
        spec:
          command: [python, train.py, --lr, "${params.lr}"]
          params:
            lr: "0.01"
        ---
        apiVersion: capstan.dev/v1alpha1
        kind: TrainJob
        metadata:
          name: cifar
        spec:
          command: [python, cifar.py]
          replicas: 2
          restartPolicy: OnFailure
        """;

    private readonly TempHome _home = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _home.Dispose();

    private string WriteFile(string name, string text)
    {
        var path = Path.Combine(_home.Root, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public async Task Apply_GoodFile_CreatesEveryDocumentThenReportsUnchanged()
    {
        var file = WriteFile("jobs.yaml", GoodJob);

        var first = await CliHarness.RunAsync(_home.Environment, "apply", "-f", file);
        var second = await CliHarness.RunAsync(_home.Environment, "apply", "-f", file);

        Assert.Equal(ExitCodes.Ok, first.ExitCode);
        Assert.Equal("trainjob/mnist created\ntrainjob/cifar created\n", first.Out.ReplaceLineEndings("\n"));
        Assert.Contains("trainjob/mnist unchanged", second.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Apply_MalformedFile_NamesLineAndFieldAndSubmitsNothing()
    {
        var file = WriteFile("bad.yaml", GoodJob.Replace("replicas: 2", "replicas: two", StringComparison.Ordinal).Replace("name: mnist", "name: Mnist_Job", StringComparison.Ordinal));

        var result = await CliHarness.RunAsync(_home.Environment, "apply", "-f", file);

        Assert.Equal(ExitCodes.UserError, result.ExitCode);
        Assert.Contains($"{file}:4:9: metadata.name:", result.Error, StringComparison.Ordinal);
        Assert.Contains($"{file}:18:13: spec.replicas:", result.Error, StringComparison.Ordinal);
        Assert.Equal("", result.Out);
        var list = await CliHarness.RunAsync(_home.Environment, "get", "trainjobs");
        Assert.Contains("No resources found", list.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetYaml_AppliedJob_ShowsAppliedDefaults()
    {
        await CliHarness.RunAsync(_home.Environment, "apply", "-f", WriteFile("jobs.yaml", GoodJob));

        var result = await CliHarness.RunAsync(_home.Environment, "get", "tj", "cifar", "-o", "yaml");

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        var job = Assert.IsType<TrainJob>(Assert.Single(ResourceLoader.Load(result.Out, "stdout")));
        Assert.Equal(RestartPolicy.OnFailure, job.Spec.RestartPolicy);
        Assert.Equal(TrainJobSpec.DefaultRetryingBackoffLimit, job.Spec.BackoffLimit);
        Assert.Equal(1, job.Spec.NprocPerNode);
        Assert.Equal("cifar", job.Spec.Experiment);
        Assert.Contains("backoffLimit: 3", result.Out, StringComparison.Ordinal);
        Assert.Contains("generation: 1", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetTable_AllJobs_ShowsNamePhaseAndKindColumns()
    {
        await CliHarness.RunAsync(_home.Environment, "apply", "-f", WriteFile("jobs.yaml", GoodJob));

        var result = await CliHarness.RunAsync(_home.Environment, "get", "trainjobs");

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        var lines = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Matches("^NAME +PHASE +REPLICAS +ATTEMPTS +EXPERIMENT +AGE$", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("cifar ", StringComparison.Ordinal) && l.Contains(" 2 ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("mnist ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Get_UnknownKind_ExplainsKnownKinds()
    {
        var result = await CliHarness.RunAsync(_home.Environment, "get", "widgets");

        Assert.Equal(ExitCodes.UserError, result.ExitCode);
        Assert.Contains("trainjobs (tj)", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Describe_JobWithStatusAndEvents_ShowsWhyItWaits()
    {
        await CliHarness.RunAsync(_home.Environment, "apply", "-f", WriteFile("jobs.yaml", GoodJob));
        await using (var store = await SqliteMetadataStore.OpenAsync(new CapstanHome(_home.Root).DatabasePath, Ct))
        {
            var job = await store.GetAsync<TrainJob>("default", "mnist", Ct);
            job.Status = new TrainJobStatus
            {
                Phase = TrainJobPhase.Queued,
                Conditions = [new ResourceCondition { Type = "Admitted", Status = ConditionStatus.False, Reason = "InsufficientCapacity", Message = "needs 8 CPUs, 2 free" }],
            };
            await store.UpdateStatusAsync(job, Ct);
            await store.RecordEventAsync(job, ResourceEventType.Warning, "Queued", "waiting for 8 CPUs (2 free)", Ct);
            await store.RecordEventAsync(job, ResourceEventType.Warning, "Queued", "waiting for 8 CPUs (2 free)", Ct);
        }

        var result = await CliHarness.RunAsync(_home.Environment, "describe", "trainjob", "mnist");

        Assert.Equal(ExitCodes.Ok, result.ExitCode);
        Assert.Contains("Queued", result.Out, StringComparison.Ordinal);
        Assert.Contains("InsufficientCapacity", result.Out, StringComparison.Ordinal);
        Assert.Contains("waiting for 8 CPUs (2 free)", result.Out, StringComparison.Ordinal);
        Assert.Contains("(x2 over", result.Out, StringComparison.Ordinal);
        Assert.Contains("lr=0.01", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Delete_SlashOrTwoArguments_RemovesTheJob()
    {
        await CliHarness.RunAsync(_home.Environment, "apply", "-f", WriteFile("jobs.yaml", GoodJob));

        var slash = await CliHarness.RunAsync(_home.Environment, "delete", "trainjob/mnist");
        var twoArgs = await CliHarness.RunAsync(_home.Environment, "delete", "tj", "cifar");
        var again = await CliHarness.RunAsync(_home.Environment, "delete", "tj", "cifar");

        Assert.Equal(ExitCodes.Ok, slash.ExitCode);
        Assert.Contains("trainjob \"mnist\" deleted", slash.Out, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Ok, twoArgs.ExitCode);
        Assert.Equal(ExitCodes.UserError, again.ExitCode);
        Assert.Contains("not found", again.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApplyGetDelete_AgainstServer_WorkThroughResourceClient()
    {
        await using var server = await InProcessServer.StartAsync(Ct);
        var remote = new Dictionary<string, string?> { ["CAPSTAN_URL"] = server.Url.AbsoluteUri, ["CAPSTAN_HOME"] = _home.Root };

        var applied = await CliHarness.RunAsync(remote, "apply", "-f", WriteFile("jobs.yaml", GoodJob));
        var json = await CliHarness.RunAsync(remote, "get", "trainjob", "mnist", "-o", "json");
        var deleted = await CliHarness.RunAsync(remote, "delete", "trainjob/mnist");
        var gone = await CliHarness.RunAsync(remote, "get", "trainjob", "mnist");

        Assert.Equal(ExitCodes.Ok, applied.ExitCode);
        using var document = JsonDocument.Parse(json.Out);
        Assert.Equal("vision", document.RootElement.GetProperty("metadata").GetProperty("labels").GetProperty("team").GetString());
        Assert.Equal(ExitCodes.Ok, deleted.ExitCode);
        Assert.Equal(ExitCodes.UserError, gone.ExitCode);
        Assert.False(File.Exists(new CapstanHome(_home.Root).DatabasePath), "the CLI must have used the server, not the embedded store");
    }

    [Fact]
    public async Task ResourceClient_WatchOverServer_SeesUpdateAndConflict()
    {
        await using var server = await InProcessServer.StartAsync(Ct);
        using var client = new Capstan.Client.ResourceClient(server.Url);
        var created = await client.CreateAsync(new TrainJob { Metadata = new ResourceMetadata { Name = "watched" }, Spec = new TrainJobSpec { Command = ["true"] } }, Ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(20));
        var firstChange = FirstAsync(client.WatchAsync(TrainJob.KindName, "default", ResourceVersions.Parse(created.Metadata.ResourceVersion), cts.Token));

        var job = (TrainJob)created;
        job.Status = new TrainJobStatus { Phase = TrainJobPhase.Running };
        await client.UpdateStatusAsync(job, Ct);
        var conflict = await Assert.ThrowsAsync<CapstanException>(() => client.UpdateStatusAsync(job, Ct));

        var change = await firstChange;
        Assert.Equal(WatchEventType.Modified, change.Type);
        Assert.Equal(TrainJobPhase.Running, ((TrainJob)change.Object).Status!.Phase);
        Assert.Equal(ErrorCode.Conflict, conflict.Code);
    }

    [Fact]
    public async Task ResourceClient_InvalidObject_ThrowsValidationErrorsFromServer()
    {
        await using var server = await InProcessServer.StartAsync(Ct);
        using var client = new Capstan.Client.ResourceClient(server.Url);
        var job = new TrainJob { Metadata = new ResourceMetadata { Name = "bad" }, Spec = new TrainJobSpec { Command = ["true"], Replicas = 0 } };

        var error = await Assert.ThrowsAsync<ResourceValidationException>(() => client.CreateAsync(job, Ct));

        Assert.Contains(error.Errors, e => e.FieldPath == "spec.replicas");
        await Assert.ThrowsAsync<CapstanException>(() => client.GetAsync(TrainJob.KindName, "default", "bad", Ct));
    }

    private static async Task<WatchEvent> FirstAsync(IAsyncEnumerable<WatchEvent> watch)
    {
        await foreach (var change in watch)
        {
            return change;
        }

        throw new InvalidOperationException("the watch ended without an event");
    }
}
