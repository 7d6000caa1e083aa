using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Capstan.Runtime.Kubernetes.Tests.FakeApiServer;

/// <summary>
/// A Kubernetes API server for tests, on real Kestrel at 127.0.0.1 over plain HTTP: the REST paths
/// (<c>/api/v1/namespaces/{ns}/{plural}[/{name}[/status|/log]]</c>, <c>/apis/{group}/{version}/...</c>, and the
/// all-namespaces lists), errors as <c>Status</c> objects, watches as newline-delimited <c>{type, object}</c> JSON
/// streamed in chunks. What it keeps and how is <see cref="FakeObjectStore"/>. Not served: discovery, authentication,
/// admission, paging (a list ignores <c>limit</c>, which the API allows), strategic merge patch and server-side apply
/// (415), and namespaces need not exist.
/// </summary>
public sealed class FakeKubernetesApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Dictionary<(string Group, string Version, string Plural), ApiResourceType> _types;
    private readonly CancellationTokenSource _stopping = new();

    private FakeKubernetesApiServer(WebApplication app, IEnumerable<ApiResourceType> types, FakeObjectStore store)
    {
        _app = app;
        _types = types.ToDictionary(t => (t.Group, t.Version, t.Plural));
        Objects = store;
    }

    public FakeObjectStore Objects { get; }

    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>Every request answered so far, in order, for tests that count what a client did.</summary>
    public IReadOnlyList<ApiRequest> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    private readonly List<ApiRequest> _requests = [];

    public static async Task<FakeKubernetesApiServer> StartAsync(IEnumerable<ApiResourceType>? types = null, TimeProvider? time = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new FakeKubernetesApiServer(app, types ?? ApiResourceType.Defaults, new FakeObjectStore(time));
        app.Run(server.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.BaseUrl = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal) + "/");
        return server;
    }

    public ApiResourceType Type(string group, string plural) =>
        _types.Values.Single(t => t.Group == group && t.Plural == plural);

    /// <summary>A client configuration for this server, as a kubeconfig with an http server would give.</summary>
    public KubernetesClientConfiguration ClientConfiguration() => new() { Host = BaseUrl.AbsoluteUri };

    public IKubernetes CreateClient() => new k8s.Kubernetes(ClientConfiguration());

    /// <summary>Writes a kubeconfig whose context <paramref name="context"/> points at this server, as a user's would.</summary>
    public string WriteKubeconfig(string path, string context = "fake", string @namespace = "default")
    {
        var text = $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: {context}-cluster
              cluster:
                server: {BaseUrl.AbsoluteUri.TrimEnd('/')}
            users:
            - name: {context}-user
              user:
                token: test-token
            contexts:
            - name: {context}
              context:
                cluster: {context}-cluster
                user: {context}-user
                namespace: {@namespace}
            current-context: {context}
            """;
        File.WriteAllText(path, text.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n");
        return path;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        Objects.CloseWatches();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _stopping.Dispose();
    }

    private async Task HandleAsync(HttpContext http)
    {
        var request = http.Request;
        try
        {
            await RouteAsync(http);
        }
        catch (ApiException e)
        {
            await WriteJsonAsync(http.Response, e.Code, ApiStatus.Failure(e));
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException && !http.Response.HasStarted)
        {
            // A request the fake cannot handle is its own bug; answered as the real server answers one, with the cause.
            await WriteJsonAsync(http.Response, 500, ApiStatus.Failure(new ApiException(500, "InternalError", $"fake API server: {e}")));
        }
        catch (JsonException e)
        {
            await WriteJsonAsync(http.Response, 400, ApiStatus.Failure(ApiException.BadRequest($"the body of the request could not be read as JSON: {e.Message}")));
        }
        finally
        {
            lock (_requests)
            {
                _requests.Add(new ApiRequest(request.Method, request.Path.Value ?? "", request.QueryString.Value ?? "", http.Response.StatusCode));
            }
        }
    }

    private async Task RouteAsync(HttpContext http)
    {
        var request = http.Request;
        var segments = (request.Path.Value ?? "").Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        var (group, version, rest) = segments switch
        {
            ["api", var v, .. var r] => ("", v, r),
            ["apis", var g, var v, .. var r] => (g, v, r),
            _ => throw new ApiException(404, "NotFound", "the server could not find the requested resource"),
        };

        string? @namespace = null;
        if (rest.Length >= 3 && rest[0] == "namespaces" && _types.ContainsKey((group, version, rest[2])))
        {
            @namespace = rest[1];
            rest = rest[2..];
        }

        if (rest.Length is 0 or > 3 || !_types.TryGetValue((group, version, rest[0]), out var type))
        {
            throw new ApiException(404, "NotFound", "the server could not find the requested resource");
        }

        var name = rest.Length > 1 ? rest[1] : null;
        var subresource = rest.Length > 2 ? rest[2] : null;
        if ((type.Namespaced && @namespace is null && (name is not null || request.Method != HttpMethods.Get))
            || (!type.Namespaced && @namespace is not null)
            || subresource is not (null or "status" or "log")
            || (subresource == "status" && !type.StatusSubresource)
            || (subresource == "log" && type is not { Group: "", Plural: "pods" }))
        {
            throw new ApiException(404, "NotFound", "the server could not find the requested resource");
        }

        if (request.Query.ContainsKey("dryRun"))
        {
            throw ApiException.BadRequest("this fake API server does not implement dryRun");
        }

        var statusOnly = subresource == "status";
        switch (request.Method)
        {
            case "GET" when name is null && IsTrue(request.Query["watch"]):
                await WatchAsync(http, type, @namespace);
                break;
            case "GET" when name is null:
                var (items, listVersion) = Objects.List(type, @namespace, Filter(request));
                await WriteJsonAsync(http.Response, 200, new JsonObject
                {
                    ["kind"] = type.Kind + "List",
                    ["apiVersion"] = type.ApiVersion,
                    ["metadata"] = new JsonObject { ["resourceVersion"] = listVersion.ToString(CultureInfo.InvariantCulture) },
                    ["items"] = new JsonArray([.. items]),
                });
                break;
            case "GET" when subresource == "log":
                var log = Objects.GetPodLog(
                    type,
                    @namespace!,
                    name!,
                    IsTrue(request.Query["timestamps"]),
                    int.TryParse(request.Query["sinceSeconds"], NumberStyles.None, CultureInfo.InvariantCulture, out var sinceSeconds) ? sinceSeconds : null);
                http.Response.StatusCode = 200;
                http.Response.ContentType = "text/plain";
                await http.Response.WriteAsync(log);
                break;
            case "GET":
                await WriteJsonAsync(http.Response, 200, Objects.Get(type, @namespace, name!));
                break;
            case "POST" when name is null:
                await WriteJsonAsync(http.Response, 201, Objects.Create(type, @namespace, await ReadObjectAsync(request)));
                break;
            case "PUT" when name is not null:
                await WriteJsonAsync(http.Response, 200, Objects.Replace(type, @namespace, name, await ReadObjectAsync(request), statusOnly));
                break;
            case "PATCH" when name is not null:
                var contentType = (request.ContentType ?? "").Split(';')[0].Trim();
                var patch = await JsonNode.ParseAsync(request.Body) ?? throw ApiException.BadRequest("empty patch");
                await WriteJsonAsync(http.Response, 200, Objects.Patch(type, @namespace, name, contentType, patch, statusOnly));
                break;
            case "DELETE" when name is not null && subresource is null:
                var options = request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0
                    ? await JsonNode.ParseAsync(request.Body) as JsonObject
                    : null;
                var policy = (string?)request.Query["propagationPolicy"] ?? options?["propagationPolicy"]?.GetValue<string>();
                Propagation? propagation = policy is null ? null
                    : Enum.TryParse<Propagation>(policy, out var parsed) ? parsed
                    : throw ApiException.BadRequest($"unsupported propagationPolicy \"{policy}\"");
                await WriteJsonAsync(http.Response, 200, Objects.Delete(type, @namespace, name, propagation, options?["preconditions"] as JsonObject));
                break;
            default:
                throw new ApiException(405, "MethodNotAllowed", $"the server does not allow this method on the requested resource");
        }
    }

    private async Task WatchAsync(HttpContext http, ApiResourceType type, string? @namespace)
    {
        var request = http.Request;
        using var watch = Objects.Watch(type, @namespace, Filter(request), request.Query["resourceVersion"]);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, _stopping.Token);
        if (int.TryParse(request.Query["timeoutSeconds"], NumberStyles.None, CultureInfo.InvariantCulture, out var timeout) && timeout > 0)
        {
            stop.CancelAfter(TimeSpan.FromSeconds(timeout));
        }

        var response = http.Response;
        response.StatusCode = 200;
        response.ContentType = "application/json";
        await response.StartAsync(stop.Token);
        try
        {
            while (await watch.Reader.WaitToReadAsync(stop.Token))
            {
                while (watch.Reader.TryRead(out var line))
                {
                    await response.WriteAsync(line + "\n", stop.Token);
                }

                await response.Body.FlushAsync(stop.Token);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The client went away, the timeout passed, or the server is stopping: the stream just ends.
        }
    }

    private static Func<JsonObject, bool> Filter(HttpRequest request)
    {
        var labels = LabelSelector.Parse(request.Query["labelSelector"]);
        var fields = FieldSelector.Parse(request.Query["fieldSelector"]);
        return obj => labels.Matches(obj) && fields(obj);
    }

    private static bool IsTrue(string? value) => value is "true" or "1";

    private static async Task<JsonObject> ReadObjectAsync(HttpRequest request) =>
        await JsonNode.ParseAsync(request.Body) as JsonObject ?? throw ApiException.BadRequest("the body of the request must be an object");

    private static async Task WriteJsonAsync(HttpResponse response, int code, JsonObject body)
    {
        response.StatusCode = code;
        response.ContentType = "application/json";
        await response.WriteAsync(body.ToJsonString(), Encoding.UTF8);
    }
}

/// <summary>One request the fake answered, and the status code it answered with.</summary>
public sealed record ApiRequest(string Method, string Path, string Query, int StatusCode);

/// <summary><c>Status</c> objects, the body of every API error.</summary>
public static class ApiStatus
{
    public static JsonObject Failure(ApiException error)
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = error.Message,
            ["reason"] = error.Reason,
            ["code"] = error.Code,
        };
        if (error.ResourceType is { } type)
        {
            status["details"] = new JsonObject { ["name"] = error.Name, ["group"] = type.Group, ["kind"] = type.Plural };
        }

        return status;
    }
}

/// <summary>The <c>fieldSelector</c> fields every kind supports: <c>metadata.name</c> and <c>metadata.namespace</c>, with <c>=</c>, <c>==</c>, <c>!=</c>.</summary>
public static class FieldSelector
{
    public static Func<JsonObject, bool> Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return _ => true;
        }

        var tests = new List<Func<JsonObject, bool>>();
        foreach (var part in text.Split(','))
        {
            var negate = part.Contains("!=", StringComparison.Ordinal);
            var pieces = part.Split(negate ? "!=" : part.Contains("==", StringComparison.Ordinal) ? "==" : "=", 2);
            if (pieces.Length != 2 || pieces[0].Trim() is not ("metadata.name" or "metadata.namespace"))
            {
                throw ApiException.BadRequest($"field label not supported: \"{pieces[0].Trim()}\"");
            }

            var field = pieces[0].Trim()["metadata.".Length..];
            var value = pieces[1].Trim();
            tests.Add(obj => (obj["metadata"]?[field]?.GetValue<string>() == value) != negate);
        }

        return obj => tests.All(t => t(obj));
    }
}
