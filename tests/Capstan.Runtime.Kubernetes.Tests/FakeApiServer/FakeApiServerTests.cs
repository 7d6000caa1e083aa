using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Tests.FakeApiServer;

/// <summary>The fake API server against the documented behaviour of the real one, through the KubernetesClient and raw HTTP.</summary>
public sealed class FakeApiServerTests : IAsyncLifetime
{
    private FakeKubernetesApiServer _server = null!;
    private IKubernetes _client = null!;
    private readonly HttpClient _http = new();

    public async ValueTask InitializeAsync()
    {
        _server = await FakeKubernetesApiServer.StartAsync();
        _client = _server.CreateClient();
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        _http.Dispose();
        await _server.DisposeAsync();
    }

    private static V1Pod Pod(string name, Dictionary<string, string>? labels = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = labels },
        Spec = new V1PodSpec { Containers = [new V1Container { Name = "main", Image = "busybox" }] },
    };

    [Fact]
    public async Task Create_NewObject_GetsUidTimestampGenerationAndVersion()
    {
        var created = await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "default");

        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.NotNull(created.Metadata.CreationTimestamp);
        Assert.Equal(1, created.Metadata.Generation);
        Assert.Equal("default", created.Metadata.NamespaceProperty);
        Assert.Equal(_server.Objects.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture), created.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task Create_NameTaken_Is409AlreadyExists()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "default");

        var error = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "default"));

        Assert.Equal(HttpStatusCode.Conflict, error.Response.StatusCode);
        var status = JsonNode.Parse(error.Response.Content)!;
        Assert.Equal("AlreadyExists", status["reason"]!.GetValue<string>());
        Assert.Equal("pods \"a\" already exists", status["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Create_GenerateName_GetsDistinctNamesWithThePrefix()
    {
        var pod = new V1Pod { Metadata = new V1ObjectMeta { GenerateName = "worker-" }, Spec = Pod("x").Spec };

        var first = await _client.CoreV1.CreateNamespacedPodAsync(pod, "default");
        var second = await _client.CoreV1.CreateNamespacedPodAsync(pod, "default");

        Assert.StartsWith("worker-", first.Metadata.Name, StringComparison.Ordinal);
        Assert.Equal("worker-".Length + 5, first.Metadata.Name.Length);
        Assert.NotEqual(first.Metadata.Name, second.Metadata.Name);
    }

    [Fact]
    public async Task Create_NoName_Is422Invalid()
    {
        var error = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedPodAsync(new V1Pod { Metadata = new V1ObjectMeta() }, "default"));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, error.Response.StatusCode);
        Assert.Contains("name or generateName is required", error.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_Missing_Is404WithAStatusObject()
    {
        using var response = await _http.GetAsync(new Uri(_server.BaseUrl, "apis/batch/v1/namespaces/default/jobs/nope"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        var status = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("Status", status["kind"]!.GetValue<string>());
        Assert.Equal("Failure", status["status"]!.GetValue<string>());
        Assert.Equal("NotFound", status["reason"]!.GetValue<string>());
        Assert.Equal(404, status["code"]!.GetValue<int>());
        Assert.Equal("jobs.batch \"nope\" not found", status["message"]!.GetValue<string>());
        Assert.Equal("nope", status["details"]!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Get_UnknownResource_Is404()
    {
        using var response = await _http.GetAsync(new Uri(_server.BaseUrl, "apis/example.com/v1/namespaces/default/widgets"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Theory]
    [InlineData("app=web", "web1,web2")]
    [InlineData("app==web", "web1,web2")]
    [InlineData("app!=web", "db,plain")]
    [InlineData("app in (web,db)", "db,web1,web2")]
    [InlineData("app notin (web)", "db,plain")]
    [InlineData("tier", "web2")]
    [InlineData("!tier", "db,plain,web1")]
    [InlineData("app=web,tier=front", "web2")]
    [InlineData("app in (web),!tier", "web1")]
    public async Task List_LabelSelector_SelectsAsKubernetesDoes(string selector, string expected)
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("web1", new() { ["app"] = "web" }), "default");
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("web2", new() { ["app"] = "web", ["tier"] = "front" }), "default");
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("db", new() { ["app"] = "db" }), "default");
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("plain"), "default");

        var list = await _client.CoreV1.ListNamespacedPodAsync("default", labelSelector: selector);

        Assert.Equal(expected, string.Join(',', list.Items.Select(p => p.Metadata.Name)));
    }

    [Fact]
    public async Task List_BadSelector_Is400()
    {
        var error = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ListNamespacedPodAsync("default", labelSelector: "app in web"));

        Assert.Equal(HttpStatusCode.BadRequest, error.Response.StatusCode);
    }

    [Fact]
    public async Task List_Metadata_CarriesTheLatestVersionAndNamespacesAreApart()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "one");
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("b"), "two");

        var one = await _client.CoreV1.ListNamespacedPodAsync("one");
        var all = await _client.CoreV1.ListPodForAllNamespacesAsync();

        Assert.Equal(["a"], one.Items.Select(p => p.Metadata.Name));
        Assert.Equal(["a", "b"], all.Items.Select(p => p.Metadata.Name));
        Assert.Equal(_server.Objects.Revision.ToString(System.Globalization.CultureInfo.InvariantCulture), all.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task Replace_StaleResourceVersion_Is409Conflict()
    {
        var created = await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "default");
        created.Metadata.Labels = new Dictionary<string, string> { ["x"] = "1" };
        await _client.CoreV1.ReplaceNamespacedPodAsync(created, "a", "default");

        created.Metadata.Labels["x"] = "2";
        var error = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReplaceNamespacedPodAsync(created, "a", "default"));

        Assert.Equal(HttpStatusCode.Conflict, error.Response.StatusCode);
        Assert.Equal("Conflict", JsonNode.Parse(error.Response.Content)!["reason"]!.GetValue<string>());
        Assert.Equal("1", (await _client.CoreV1.ReadNamespacedPodAsync("a", "default")).Metadata.Labels["x"]);
    }

    [Fact]
    public async Task Replace_NothingChanged_KeepsTheVersion()
    {
        var created = await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "default");

        var replaced = await _client.CoreV1.ReplaceNamespacedPodAsync(created, "a", "default");

        Assert.Equal(created.Metadata.ResourceVersion, replaced.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task Replace_Generation_MovesOnSpecChangesOnly()
    {
        var job = await _client.BatchV1.CreateNamespacedJobAsync(Job("train"), "default");

        job.Metadata.Labels = new Dictionary<string, string> { ["team"] = "ml" };
        job = await _client.BatchV1.ReplaceNamespacedJobAsync(job, "train", "default");
        Assert.Equal(1, job.Metadata.Generation);

        job.Spec.BackoffLimit = 4;
        job = await _client.BatchV1.ReplaceNamespacedJobAsync(job, "train", "default");
        Assert.Equal(2, job.Metadata.Generation);

        job.Status = new V1JobStatus { Active = 1 };
        job = await _client.BatchV1.ReplaceNamespacedJobStatusAsync(job, "train", "default");
        Assert.Equal(2, job.Metadata.Generation);
        Assert.Equal(1, job.Status.Active);
    }

    [Fact]
    public async Task StatusSubresource_SeparatesSpecAndStatusWrites()
    {
        var job = await _client.BatchV1.CreateNamespacedJobAsync(Job("train"), "default");

        // Through /status a spec change is ignored and the status is kept ...
        job.Spec.BackoffLimit = 9;
        job.Status = new V1JobStatus { Failed = 2 };
        job = await _client.BatchV1.ReplaceNamespacedJobStatusAsync(job, "train", "default");
        Assert.Equal(0, job.Spec.BackoffLimit);
        Assert.Equal(2, job.Status.Failed);

        // ... and through the main resource a status change is ignored.
        job.Status = new V1JobStatus { Failed = 7 };
        job.Spec.Parallelism = 1;
        job = await _client.BatchV1.ReplaceNamespacedJobAsync(job, "train", "default");
        Assert.Equal(2, job.Status.Failed);
        Assert.Equal(1, job.Spec.Parallelism);
    }

    [Fact]
    public async Task Create_WithStatus_DropsItWhereStatusIsASubresource()
    {
        var body = Job("train");
        body.Status = new V1JobStatus { Succeeded = 1 };

        var job = await _client.BatchV1.CreateNamespacedJobAsync(body, "default");

        Assert.Null(job.Status);
    }

    [Fact]
    public async Task MergePatch_CustomObjectStatus_ChangesOnlyTheStatus()
    {
        var trainJob = new JsonObject
        {
            ["apiVersion"] = "capstan.dev/v1alpha1",
            ["kind"] = "TrainJob",
            ["metadata"] = new JsonObject { ["name"] = "tj" },
            ["spec"] = new JsonObject { ["image"] = "trainer:1" },
        };
        await _client.CustomObjects.CreateNamespacedCustomObjectAsync(trainJob, "capstan.dev", "v1alpha1", "default", "trainjobs");
        var patch = new V1Patch("""{"status":{"phase":"Running"},"spec":{"image":"other"}}""", V1Patch.PatchType.MergePatch);

        await _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(patch, "capstan.dev", "v1alpha1", "default", "trainjobs", "tj");

        var stored = _server.Objects.Get(_server.Type("capstan.dev", "trainjobs"), "default", "tj");
        Assert.Equal("Running", stored["status"]!["phase"]!.GetValue<string>());
        Assert.Equal("trainer:1", stored["spec"]!["image"]!.GetValue<string>());
        Assert.Equal(1, stored["metadata"]!["generation"]!.GetValue<long>());
    }

    [Fact]
    public async Task MergePatch_WithStaleResourceVersion_Is409()
    {
        var created = await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "default");
        await _client.CoreV1.PatchNamespacedPodAsync(new V1Patch("""{"metadata":{"labels":{"a":"1"}}}""", V1Patch.PatchType.MergePatch), "a", "default");
        var stale = new V1Patch(new JsonObject { ["metadata"] = new JsonObject { ["resourceVersion"] = created.Metadata.ResourceVersion, ["labels"] = new JsonObject { ["a"] = "2" } } }.ToJsonString(), V1Patch.PatchType.MergePatch);

        var error = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.PatchNamespacedPodAsync(stale, "a", "default"));

        Assert.Equal(HttpStatusCode.Conflict, error.Response.StatusCode);
    }

    [Fact]
    public async Task JsonPatch_FailedTest_Is422AndChangesNothing()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a", new() { ["a"] = "1" }), "default");
        var patch = new V1Patch("""[{"op":"test","path":"/metadata/labels/a","value":"2"},{"op":"replace","path":"/metadata/labels/a","value":"3"}]""", V1Patch.PatchType.JsonPatch);

        var error = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.PatchNamespacedPodAsync(patch, "a", "default"));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, error.Response.StatusCode);
        Assert.Equal("1", (await _client.CoreV1.ReadNamespacedPodAsync("a", "default")).Metadata.Labels["a"]);
    }

    [Fact]
    public async Task Watch_FromAListVersion_SeesEachLaterChangeInOrder()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("before"), "default");
        var list = await _client.CoreV1.ListNamespacedPodAsync("default");
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "default");
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var events = Collect(_client.CoreV1.WatchListNamespacedPodAsync("default", resourceVersion: list.Metadata.ResourceVersion, cancellationToken: cancel.Token), 3, cancel.Token);

        await _client.CoreV1.PatchNamespacedPodAsync(new V1Patch("""{"metadata":{"labels":{"x":"1"}}}""", V1Patch.PatchType.MergePatch), "a", "default");
        await _client.CoreV1.DeleteNamespacedPodAsync("a", "default");

        var seen = await events;
        Assert.Equal(["Added a", "Modified a", "Deleted a"], seen.Select(e => $"{e.Type} {e.Object.Metadata.Name}"));
        var versions = seen.Select(e => long.Parse(e.Object.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(versions.Order(), versions);
        Assert.True(versions[0] > long.Parse(list.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Watch_WithoutVersion_StartsWithTheObjectsAsAdded()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "default");
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("b"), "default");
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        var seen = await Collect(_client.CoreV1.WatchListNamespacedPodAsync("default", cancellationToken: cancel.Token), 2, cancel.Token);

        Assert.Equal(["Added a", "Added b"], seen.Select(e => $"{e.Type} {e.Object.Metadata.Name}"));
    }

    [Fact]
    public async Task Watch_LabelSelector_ObjectLeavingTheSelectionIsDeleted()
    {
        var list = await _client.CoreV1.ListNamespacedPodAsync("default");
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var events = Collect(_client.CoreV1.WatchListNamespacedPodAsync("default", labelSelector: "app=web", resourceVersion: list.Metadata.ResourceVersion, cancellationToken: cancel.Token), 2, cancel.Token);

        await _client.CoreV1.CreateNamespacedPodAsync(Pod("other"), "default");
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a", new() { ["app"] = "web" }), "default");
        await _client.CoreV1.PatchNamespacedPodAsync(new V1Patch("""{"metadata":{"labels":{"app":"db"}}}""", V1Patch.PatchType.MergePatch), "a", "default");

        Assert.Equal(["Added a", "Deleted a"], (await events).Select(e => $"{e.Type} {e.Object.Metadata.Name}"));
    }

    [Fact]
    public async Task Watch_CompactedVersion_Gets410Expired()
    {
        var list = await _client.CoreV1.ListNamespacedPodAsync("default");
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "default");
        _server.Objects.Compact();
        var errors = new List<Exception>();

        await foreach (var _ in _client.CoreV1.WatchListNamespacedPodAsync("default", resourceVersion: list.Metadata.ResourceVersion, onError: errors.Add))
        {
            Assert.Fail("no event should come from an expired version");
        }

        var expired = Assert.IsType<KubernetesException>(Assert.Single(errors));
        Assert.Equal(410, expired.Status.Code);
        Assert.Equal("Expired", expired.Status.Reason);
    }

    [Fact]
    public async Task Delete_WithFinalizer_WaitsUntilTheFinalizerIsRemoved()
    {
        var pod = Pod("a");
        pod.Metadata.Finalizers = ["capstan.dev/cleanup"];
        await _client.CoreV1.CreateNamespacedPodAsync(pod, "default");

        await _client.CoreV1.DeleteNamespacedPodAsync("a", "default");
        var terminating = await _client.CoreV1.ReadNamespacedPodAsync("a", "default");
        Assert.NotNull(terminating.Metadata.DeletionTimestamp);

        terminating.Metadata.Finalizers = [];
        await _client.CoreV1.ReplaceNamespacedPodAsync(terminating, "a", "default");

        var gone = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReadNamespacedPodAsync("a", "default"));
        Assert.Equal(HttpStatusCode.NotFound, gone.Response.StatusCode);
    }

    [Fact]
    public async Task Delete_BeingDeleted_CannotGainFinalizers()
    {
        var pod = Pod("a");
        pod.Metadata.Finalizers = ["one"];
        await _client.CoreV1.CreateNamespacedPodAsync(pod, "default");
        await _client.CoreV1.DeleteNamespacedPodAsync("a", "default");
        var terminating = await _client.CoreV1.ReadNamespacedPodAsync("a", "default");
        terminating.Metadata.Finalizers = ["one", "two"];

        var error = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReplaceNamespacedPodAsync(terminating, "a", "default"));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, error.Response.StatusCode);
    }

    [Fact]
    public async Task Delete_Owner_GarbageCollectsItsDependentsInTheBackground()
    {
        var job = await _client.BatchV1.CreateNamespacedJobAsync(Job("train"), "default");
        await _client.CoreV1.CreateNamespacedPodAsync(OwnedPod("train-0", job), "default");
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("unrelated"), "default");

        await _client.BatchV1.DeleteNamespacedJobAsync("train", "default", propagationPolicy: "Background");

        var pods = await _client.CoreV1.ListNamespacedPodAsync("default");
        Assert.Equal(["unrelated"], pods.Items.Select(p => p.Metadata.Name));
    }

    [Fact]
    public async Task Delete_JobWithoutPolicy_OrphansItsPodsAsTheApiDefaults()
    {
        var job = await _client.BatchV1.CreateNamespacedJobAsync(Job("train"), "default");
        await _client.CoreV1.CreateNamespacedPodAsync(OwnedPod("train-0", job), "default");

        await _client.BatchV1.DeleteNamespacedJobAsync("train", "default");

        var pod = await _client.CoreV1.ReadNamespacedPodAsync("train-0", "default");
        Assert.Empty(pod.Metadata.OwnerReferences ?? []);
    }

    [Fact]
    public async Task Delete_Foreground_RemovesDependentsFirst()
    {
        var job = await _client.BatchV1.CreateNamespacedJobAsync(Job("train"), "default");
        await _client.CoreV1.CreateNamespacedPodAsync(OwnedPod("train-0", job), "default");
        var list = await _client.CoreV1.ListPodForAllNamespacesAsync();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var podEvents = Collect(_client.CoreV1.WatchListPodForAllNamespacesAsync(resourceVersion: list.Metadata.ResourceVersion, cancellationToken: cancel.Token), 1, cancel.Token);

        await _client.BatchV1.DeleteNamespacedJobAsync("train", "default", propagationPolicy: "Foreground");

        var deleted = Assert.Single(await podEvents);
        var jobs = await _client.BatchV1.ListNamespacedJobAsync("default");
        Assert.Empty(jobs.Items);
        Assert.True(long.Parse(deleted.Object.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture) < _server.Objects.Revision);
    }

    [Fact]
    public async Task Create_DanglingOwner_IsCollected()
    {
        var ghost = new V1Job { Metadata = new V1ObjectMeta { Name = "ghost", Uid = Guid.NewGuid().ToString() } };

        await _client.CoreV1.CreateNamespacedPodAsync(OwnedPod("orphan", ghost), "default");

        Assert.Empty((await _client.CoreV1.ListNamespacedPodAsync("default")).Items);
    }

    [Fact]
    public async Task Delete_StaleUidPrecondition_Is409()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "default");
        var options = new V1DeleteOptions { Preconditions = new V1Preconditions { Uid = Guid.NewGuid().ToString() } };

        var error = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.DeleteNamespacedPodAsync("a", "default", options));

        Assert.Equal(HttpStatusCode.Conflict, error.Response.StatusCode);
    }

    [Fact]
    public async Task PodLog_ServesTheTextTheTestSet()
    {
        await _client.CoreV1.CreateNamespacedPodAsync(Pod("a"), "default");
        _server.Objects.SetPodLog("default", "a", "epoch=1 loss=0.5\nepoch=2 loss=0.25\n");

        using var stream = await _client.CoreV1.ReadNamespacedPodLogAsync("a", "default");
        using var reader = new StreamReader(stream);

        Assert.Equal("epoch=1 loss=0.5\nepoch=2 loss=0.25\n", await reader.ReadToEndAsync());
    }

    [Fact]
    public async Task Lease_CreateAndReplace_RoundTripsTheHolder()
    {
        var lease = new V1Lease { Metadata = new V1ObjectMeta { Name = "lock" }, Spec = new V1LeaseSpec { HolderIdentity = "a", LeaseDurationSeconds = 2, RenewTime = DateTime.UtcNow } };
        var created = await _client.CoordinationV1.CreateNamespacedLeaseAsync(lease, "default");
        created.Spec.HolderIdentity = "b";

        var replaced = await _client.CoordinationV1.ReplaceNamespacedLeaseAsync(created, "lock", "default");

        Assert.Equal("b", (await _client.CoordinationV1.ReadNamespacedLeaseAsync("lock", "default")).Spec.HolderIdentity);
        Assert.NotEqual(created.Metadata.ResourceVersion, replaced.Metadata.ResourceVersion);
    }

    private static V1Job Job(string name) => new()
    {
        Metadata = new V1ObjectMeta { Name = name },
        Spec = new V1JobSpec
        {
            BackoffLimit = 0,
            Template = new V1PodTemplateSpec { Spec = new V1PodSpec { RestartPolicy = "Never", Containers = [new V1Container { Name = "main", Image = "trainer" }] } },
        },
    };

    private static V1Pod OwnedPod(string name, V1Job owner)
    {
        var pod = Pod(name);
        pod.Metadata.OwnerReferences = [new V1OwnerReference { ApiVersion = "batch/v1", Kind = "Job", Name = owner.Metadata.Name, Uid = owner.Metadata.Uid, Controller = true }];
        return pod;
    }

    private static async Task<List<(WatchEventType Type, T Object)>> Collect<T>(IAsyncEnumerable<(WatchEventType, T)> events, int count, CancellationToken cancellationToken)
    {
        var seen = new List<(WatchEventType, T)>();
        await foreach (var item in events.WithCancellation(cancellationToken))
        {
            seen.Add(item);
            if (seen.Count == count)
            {
                break;
            }
        }

        return seen;
    }
}
