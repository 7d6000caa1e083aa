using System.Net;
using System.Text;
using System.Text.Json;

namespace Capstan.Server.Tests.ControlPlane;

public sealed class ResourceApiTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string JobYaml(string name, string lr = "0.1", string? ns = null) => $"""
        apiVersion: capstan.dev/v1alpha1
        kind: TrainJob
        metadata:
          name: {name}
        {(ns is null ? "" : $"  namespace: {ns}\n")}spec:
          command: [python, train.py]
          params:
            lr: "{lr}"
        """;

    private async Task<Reply> SendYamlAsync(HttpMethod method, string path, string yaml)
    {
        using var request = new HttpRequestMessage(method, path) { Content = new StringContent(yaml, Encoding.UTF8, "application/yaml") };
        using var response = await server.Http.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        return new Reply(response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(), response.Content.Headers.ContentType?.MediaType, text);
    }

    private static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..20];

    [Fact]
    public async Task Apply_MultiDocumentYaml_CreatesThenReportsUnchanged()
    {
        var (a, b) = (Unique("a"), Unique("b"));
        var yaml = JobYaml(a) + "\n---\n" + JobYaml(b);

        var first = await SendYamlAsync(HttpMethod.Post, "/api/v1/apply", yaml);
        var second = await SendYamlAsync(HttpMethod.Post, "/api/v1/apply", yaml);

        Assert.Equal(HttpStatusCode.OK, first.Status);
        Assert.Equal(["created", "created"], first.Body.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("outcome").GetString()));
        Assert.Equal(["unchanged", "unchanged"], second.Body.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("outcome").GetString()));
    }

    [Fact]
    public async Task Get_AppliedJob_ShowsDefaultsAndIdentity()
    {
        var name = Unique("get");
        await SendYamlAsync(HttpMethod.Post, "/api/v1/apply", JobYaml(name));

        var reply = await server.GetAsync($"/api/v1/namespaces/default/trainjobs/{name}");

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal("TrainJob", reply.Body.GetProperty("kind").GetString());
        var metadata = reply.Body.GetProperty("metadata");
        Assert.Equal(1, metadata.GetProperty("generation").GetInt64());
        Assert.False(string.IsNullOrEmpty(metadata.GetProperty("uid").GetString()));
        Assert.Equal("Never", reply.Body.GetProperty("spec").GetProperty("restartPolicy").GetString());
        Assert.Equal(1, reply.Body.GetProperty("spec").GetProperty("replicas").GetInt32());
    }

    [Fact]
    public async Task Get_UnknownName_404ProblemDetails()
    {
        var reply = await server.GetAsync("/api/v1/namespaces/default/trainjobs/no-such-job");

        Assert.Equal(HttpStatusCode.NotFound, reply.Status);
        Assert.Equal("application/problem+json", reply.ContentType);
        Assert.Contains("not found", reply.Body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task List_NamespacedAndAcrossNamespaces_ReturnsKubernetesList()
    {
        var ns = Unique("ns");
        var (a, b) = (Unique("a"), Unique("b"));
        await SendYamlAsync(HttpMethod.Post, "/api/v1/apply", JobYaml(a, ns: ns) + "\n---\n" + JobYaml(b));

        var inNamespace = await server.GetAsync($"/api/v1/namespaces/{ns}/trainjobs");
        var everywhere = await server.GetAsync("/api/v1/trainjobs");

        Assert.Equal("TrainJobList", inNamespace.Body.GetProperty("kind").GetString());
        Assert.Equal([a], inNamespace.Body.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("metadata").GetProperty("name").GetString()));
        var all = everywhere.Body.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("metadata").GetProperty("name").GetString()).ToList();
        Assert.Contains(a, all);
        Assert.Contains(b, all);
    }

    [Fact]
    public async Task Apply_MalformedFile_422ListsEveryErrorWithLineAndField()
    {
        var yaml = """
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata:
              name: broken
            spec:
              command: [python, train.py]
              replicas: many
              resources:
                limits:
                  cpu: lots
            """;

        var reply = await SendYamlAsync(HttpMethod.Post, "/api/v1/apply?source=job.yaml", yaml);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, reply.Status);
        Assert.Equal("application/problem+json", reply.ContentType);
        var errors = reply.Body.GetProperty("errors").EnumerateArray().ToList();
        Assert.Contains(errors, e => e.GetProperty("fieldPath").GetString() == "spec.replicas" && e.GetProperty("line").GetInt32() == 7 && e.GetProperty("file").GetString() == "job.yaml");
        Assert.Contains(errors, e => e.GetProperty("fieldPath").GetString() == "spec.resources.limits.cpu" && e.GetProperty("line").GetInt32() == 10);
        Assert.Equal(HttpStatusCode.NotFound, (await server.GetAsync("/api/v1/namespaces/default/trainjobs/broken")).Status);
    }

    [Fact]
    public async Task Create_JsonBody_201AndDuplicate409()
    {
        var name = Unique("json");
        var json = $$$"""{"apiVersion":"capstan.dev/v1alpha1","kind":"TrainJob","metadata":{"name":"{{{name}}}"},"spec":{"command":["python","train.py"]}}""";

        var created = await server.PostAsync("/api/v1/namespaces/team-a/trainjobs", json);
        var again = await server.PostAsync("/api/v1/namespaces/team-a/trainjobs", json);

        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Equal("team-a", created.Body.GetProperty("metadata").GetProperty("namespace").GetString());
        Assert.Equal(HttpStatusCode.Conflict, again.Status);
    }

    [Fact]
    public async Task Put_StaleResourceVersion_409Conflict()
    {
        var name = Unique("stale");
        var created = await SendYamlAsync(HttpMethod.Post, "/api/v1/namespaces/default/trainjobs", JobYaml(name));
        var stale = created.Body.GetProperty("metadata").GetProperty("resourceVersion").GetString();
        var fresh = await SendYamlAsync(HttpMethod.Put, $"/api/v1/namespaces/default/trainjobs/{name}", JobYaml(name, "0.2"));
        Assert.Equal(2, fresh.Body.GetProperty("metadata").GetProperty("generation").GetInt64());

        var body = JobYaml(name, "0.3").Replace($"  name: {name}\n", $"  name: {name}\n  resourceVersion: \"{stale}\"\n", StringComparison.Ordinal);
        var reply = await SendYamlAsync(HttpMethod.Put, $"/api/v1/namespaces/default/trainjobs/{name}", body);

        Assert.Equal(HttpStatusCode.Conflict, reply.Status);
        Assert.Equal("ABORTED", reply.Body.GetProperty("errorCode").GetString());
        Assert.Contains("the object has been modified", reply.Body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PutStatus_ChangesStatusButLeavesSpecAlone()
    {
        var name = Unique("status");
        await SendYamlAsync(HttpMethod.Post, "/api/v1/apply", JobYaml(name));
        var body = JobYaml(name, "99") + "\nstatus:\n  phase: Running\n  observedGeneration: 1\n";

        var reply = await SendYamlAsync(HttpMethod.Put, $"/api/v1/namespaces/default/trainjobs/{name}/status", body);

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        var stored = await server.GetAsync($"/api/v1/namespaces/default/trainjobs/{name}");
        Assert.Equal("Running", stored.Body.GetProperty("status").GetProperty("phase").GetString());
        Assert.Equal("0.1", stored.Body.GetProperty("spec").GetProperty("params").GetProperty("lr").GetString());
        Assert.Equal(1, stored.Body.GetProperty("metadata").GetProperty("generation").GetInt64());
    }

    [Fact]
    public async Task Watch_AfterUpdate_StreamsModifiedEvent()
    {
        var ns = Unique("watch");
        var name = Unique("job");
        var created = await SendYamlAsync(HttpMethod.Post, $"/api/v1/namespaces/{ns}/trainjobs", JobYaml(name));
        var version = created.Body.GetProperty("metadata").GetProperty("resourceVersion").GetString();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(20));
        using var response = await server.Http.GetAsync($"/api/v1/namespaces/{ns}/trainjobs?watch=true&resourceVersion={version}", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));

        await SendYamlAsync(HttpMethod.Put, $"/api/v1/namespaces/{ns}/trainjobs/{name}", JobYaml(name, "0.9"));
        var line = await reader.ReadLineAsync(cts.Token);

        using var change = JsonDocument.Parse(line!);
        Assert.Equal("MODIFIED", change.RootElement.GetProperty("type").GetString());
        Assert.Equal("0.9", change.RootElement.GetProperty("object").GetProperty("spec").GetProperty("params").GetProperty("lr").GetString());
    }

    [Fact]
    public async Task Events_RecordedTwice_ListedOnceWithCount()
    {
        var name = Unique("events");
        await SendYamlAsync(HttpMethod.Post, "/api/v1/apply", JobYaml(name));
        var path = $"/api/v1/namespaces/default/trainjobs/{name}/events";

        await server.PostAsync(path, """{"type":"Warning","reason":"Unschedulable","message":"needs 64 CPUs, 2 available"}""");
        await server.PostAsync(path, """{"type":"Warning","reason":"Unschedulable","message":"needs 64 CPUs, 2 available"}""");
        var reply = await server.GetAsync(path);

        var item = Assert.Single(reply.Body.GetProperty("items").EnumerateArray());
        Assert.Equal("Unschedulable", item.GetProperty("reason").GetString());
        Assert.Equal(2, item.GetProperty("count").GetInt32());
        Assert.Equal("Warning", item.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Delete_Existing_ThenGetIs404()
    {
        var name = Unique("del");
        await SendYamlAsync(HttpMethod.Post, "/api/v1/apply", JobYaml(name));

        var deleted = await server.SendAsync(HttpMethod.Delete, $"/api/v1/namespaces/default/trainjobs/{name}");

        Assert.Equal(HttpStatusCode.OK, deleted.Status);
        Assert.Equal(HttpStatusCode.NotFound, (await server.GetAsync($"/api/v1/namespaces/default/trainjobs/{name}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await server.SendAsync(HttpMethod.Delete, $"/api/v1/namespaces/default/trainjobs/{name}")).Status);
    }

    [Fact]
    public async Task UnknownPlural_404NamesKnownKinds()
    {
        var reply = await server.GetAsync("/api/v1/namespaces/default/widgets");

        Assert.Equal(HttpStatusCode.NotFound, reply.Status);
        Assert.Contains("trainjobs", reply.Body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }
}
