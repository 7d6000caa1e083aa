using System.Diagnostics;
using System.Text.Json.Nodes;
using Capstan.Runtime.Kubernetes.Operator;
using Capstan.Runtime.Kubernetes.Rendering;
using Capstan.Runtime.Kubernetes.Tests.FakeApiServer;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace Capstan.Runtime.Kubernetes.Tests.Operator;

/// <summary>
/// A fake API server, operators started against it, and what the cluster's other controllers would do: a "kubelet"
/// that moves a Job along by writing its status, as the Job controller does, and a Kueue that unsuspends a Job.
/// </summary>
public sealed class OperatorHarness : IAsyncDisposable
{
    private readonly List<CapstanOperator> _operators = [];

    private OperatorHarness(FakeKubernetesApiServer server)
    {
        Server = server;
        Client = server.CreateClient();
    }

    public FakeKubernetesApiServer Server { get; }

    public IKubernetes Client { get; }

    public ApiResourceType TrainJobs => Server.Type("capstan.dev", "trainjobs");

    public static async Task<OperatorHarness> StartAsync() => new(await FakeKubernetesApiServer.StartAsync());

    /// <summary>Options with short leases and retries, so handovers take seconds.</summary>
    public static OperatorOptions FastOptions(string identity, RenderOptions? render = null) => new()
    {
        Identity = identity,
        LeaseDuration = TimeSpan.FromSeconds(3),
        RenewDeadline = TimeSpan.FromSeconds(2),
        RetryPeriod = TimeSpan.FromMilliseconds(250),
        RetryBaseDelay = TimeSpan.FromMilliseconds(20),
        RetryMaxDelay = TimeSpan.FromSeconds(1),
        WatchRetryDelay = TimeSpan.FromMilliseconds(100),
        Render = render ?? RenderOptions.Default,
    };

    public async Task<CapstanOperator> StartOperatorAsync(OperatorOptions options)
    {
        var instance = new CapstanOperator(Server.CreateClient(), options, NullLoggerFactory.Instance);
        _operators.Add(instance);
        await instance.StartAsync(CancellationToken.None);
        return instance;
    }

    public async Task StopAsync(CapstanOperator instance)
    {
        _operators.Remove(instance);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await instance.StopAsync(timeout.Token);
        instance.Dispose();
    }

    public async Task<JsonObject> CreateTrainJobAsync(string name, JsonObject? spec = null, string @namespace = "default")
    {
        var body = new JsonObject
        {
            ["apiVersion"] = "capstan.dev/v1alpha1",
            ["kind"] = "TrainJob",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = @namespace },
            ["spec"] = spec ?? new JsonObject { ["image"] = "registry.example/trainer:1", ["command"] = new JsonArray("python", "train.py") },
        };
        return Server.Objects.Create(TrainJobs, @namespace, body);
    }

    public JsonObject TrainJob(string name, string @namespace = "default") => Server.Objects.Get(TrainJobs, @namespace, name);

    public string? Phase(string name) => TryTrainJob(name)?["status"]?["phase"]?.GetValue<string>();

    public JsonObject? TryTrainJob(string name)
    {
        try
        {
            return TrainJob(name);
        }
        catch (ApiException e) when (e.Code == 404)
        {
            return null;
        }
    }

    public async Task<V1Job?> JobAsync(string name, string @namespace = "default")
    {
        try
        {
            return await Client.BatchV1.ReadNamespacedJobAsync(name, @namespace);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>The kubelet and Job controller's part: writes the Job's status as they would report it.</summary>
    public async Task SetJobStatusAsync(string name, Action<V1JobStatus> change, string @namespace = "default")
    {
        for (var attempt = 0; ; attempt++)
        {
            var job = (await JobAsync(name, @namespace))!;
            job.Status ??= new V1JobStatus();
            change(job.Status);
            try
            {
                await Client.BatchV1.ReplaceNamespacedJobStatusAsync(job, name, @namespace);
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict && attempt < 5)
            {
            }
        }
    }

    /// <summary>
    /// The Job controller and kubelet's part for a Job's pod: the pod (with the labels of the Job's pod template, plus
    /// the Job's name as the Job controller adds it) and the log its container wrote, served at <c>pods/NAME/log</c>.
    /// </summary>
    public async Task<string> RunJobPodAsync(string job, string log, string @namespace = "default")
    {
        await WaitForAsync(async () => await JobAsync(job, @namespace) is not null, $"the Job {job}");
        var template = (await JobAsync(job, @namespace))!.Spec.Template.Metadata;
        var labels = new JsonObject { ["batch.kubernetes.io/job-name"] = job, ["job-name"] = job };
        foreach (var (key, value) in template?.Labels ?? new Dictionary<string, string>())
        {
            labels[key] = value;
        }

        var pod = $"{job}-{Guid.NewGuid().ToString("N")[..5]}";
        Server.Objects.Create(Server.Type("", "pods"), @namespace, new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject
            {
                ["name"] = pod,
                ["namespace"] = @namespace,
                ["labels"] = labels,
            },
            ["spec"] = new JsonObject { ["containers"] = new JsonArray(new JsonObject { ["name"] = "trainer", ["image"] = "registry.example/trainer:1" }) },
        });
        Server.Objects.SetPodLog(@namespace, pod, log);
        return pod;
    }

    /// <summary>The Job controller marking a Job whose pod succeeded Complete.</summary>
    public Task CompleteJobAsync(string job, string @namespace = "default") => SetJobStatusAsync(job, s =>
    {
        s.Active = 0;
        s.Succeeded = 1;
        s.StartTime ??= DateTime.UtcNow;
        s.CompletionTime = DateTime.UtcNow;
        s.Conditions = [Condition("SuccessCriteriaMet"), Condition("Complete")];
    }, @namespace);

    public static V1JobCondition Condition(string type, string? reason = null, string? message = null) =>
        new() { Type = type, Status = "True", Reason = reason, Message = message, LastTransitionTime = DateTime.UtcNow, LastProbeTime = DateTime.UtcNow };

    public async Task<IReadOnlyList<Corev1Event>> EventsAsync(string name, string @namespace = "default") =>
        [.. (await Client.CoreV1.ListNamespacedEventAsync(@namespace)).Items.Where(e => e.InvolvedObject.Name == name && e.InvolvedObject.Kind == "TrainJob")];

    public int Count(string method, string pathEnd, int? status = null) =>
        Server.Requests.Count(r => r.Method == method && r.Path.EndsWith(pathEnd, StringComparison.Ordinal) && (status is null || r.StatusCode == status));

    /// <summary>Waits for a condition on the cluster's state, polling; fails with <paramref name="what"/> after the timeout.</summary>
    public static async Task WaitForAsync(Func<Task<bool>> condition, string what, int seconds = 15, Func<string>? onTimeout = null)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds))
            {
                Assert.Fail($"timed out after {seconds}s waiting for {what}{(onTimeout is null ? "" : ": " + onTimeout())}");
            }

            await Task.Delay(25);
        }
    }

    public static Task WaitForAsync(Func<bool> condition, string what, int seconds = 15, Func<string>? onTimeout = null) =>
        WaitForAsync(() => Task.FromResult(condition()), what, seconds, onTimeout);

    public async ValueTask DisposeAsync()
    {
        foreach (var instance in _operators.ToList())
        {
            await StopAsync(instance);
        }

        Client.Dispose();
        await Server.DisposeAsync();
    }
}
