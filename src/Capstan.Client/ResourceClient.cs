using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;

namespace Capstan.Client;

/// <summary>
/// <see cref="IResourceStore"/> over a Capstan server's resource API (<c>/api/v1/namespaces/{ns}/{plural}</c>),
/// watching over its newline-delimited JSON stream. Errors come back as the embedded store throws them:
/// NotFound, AlreadyExists, Conflict, and <see cref="ResourceValidationException"/> for a 422.
/// </summary>
public sealed class ResourceClient : IResourceStore, IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _baseUrl;

    /// <param name="baseUrl">The server's root, e.g. <c>http://127.0.0.1:5000</c>.</param>
    /// <param name="http">A caller-owned client; one without a timeout (watches are long) is created and owned when null.</param>
    public ResourceClient(Uri baseUrl, HttpClient? http = null)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        var text = baseUrl.AbsoluteUri;
        _baseUrl = new Uri(text.EndsWith('/') ? text : text + "/");
        _ownsHttp = http is null;
        _http = http ?? new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
    }

    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    public async Task<Resource> CreateAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(resource);
        return await SendResourceAsync(HttpMethod.Post, Collection(resource.Kind, Namespace(resource)), resource, cancellationToken).ConfigureAwait(false);
    }

    public Task<Resource> GetAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default) =>
        SendResourceAsync(HttpMethod.Get, Item(kind, @namespace, name), null, cancellationToken);

    public async Task<IReadOnlyList<Resource>> ListAsync(string kind, string? @namespace = null, IReadOnlyDictionary<string, string>? labelSelector = null, CancellationToken cancellationToken = default)
    {
        var path = @namespace is null ? $"api/v1/{KindNames.Plural(kind)}" : Collection(kind, @namespace);
        if (labelSelector is { Count: > 0 })
        {
            path += "?labelSelector=" + Uri.EscapeDataString(string.Join(',', labelSelector.Select(l => $"{l.Key}={l.Value}")));
        }

        var list = await SendNodeAsync(HttpMethod.Get, path, null, cancellationToken).ConfigureAwait(false);
        return [.. list["items"]!.AsArray().Select(item => ResourceSerializer.FromJson(item!.ToJsonString()))];
    }

    public Task<Resource> UpdateAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(resource);
        return SendResourceAsync(HttpMethod.Put, Item(resource.Kind, Namespace(resource), Name(resource)), resource, cancellationToken);
    }

    public Task<Resource> UpdateStatusAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(resource);
        return SendResourceAsync(HttpMethod.Put, Item(resource.Kind, Namespace(resource), Name(resource)) + "/status", resource, cancellationToken);
    }

    public async Task<ApplyResult> ApplyAsync(Resource resource, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(resource);
        var reply = await SendNodeAsync(HttpMethod.Post, "api/v1/apply", resource, cancellationToken).ConfigureAwait(false);
        var item = reply["items"]!.AsArray().Single()!;
        return new ApplyResult(
            ResourceSerializer.FromJson(item["object"]!.ToJsonString()),
            Enum.Parse<ApplyOutcome>(item["outcome"]!.GetValue<string>(), ignoreCase: true));
    }

    public Task<Resource> DeleteAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default) =>
        SendResourceAsync(HttpMethod.Delete, Item(kind, @namespace, name), null, cancellationToken);

    /// <summary>Watches one kind (the API, like Kubernetes', streams one resource type per request).</summary>
    public async IAsyncEnumerable<WatchEvent> WatchAsync(string? kind = null, string? @namespace = null, long? fromResourceVersion = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (kind is null)
        {
            throw new ArgumentNullException(nameof(kind), "The resource API watches one kind per request; pass the kind.");
        }

        var path = (@namespace is null ? $"api/v1/{KindNames.Plural(kind)}" : Collection(kind, @namespace)) + "?watch=true";
        if (fromResourceVersion is { } from)
        {
            path += "&resourceVersion=" + ResourceVersions.Format(from);
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_baseUrl, path));
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await ServerErrors.EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), Encoding.UTF8);
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }

            var change = JsonNode.Parse(line)!;
            yield return new WatchEvent(
                Enum.Parse<WatchEventType>(change["type"]!.GetValue<string>(), ignoreCase: true),
                ResourceSerializer.FromJson(change["object"]!.ToJsonString()));
        }
    }

    /// <summary>A TrainJob's output lines (<c>GET .../trainjobs/{name}/log</c>); with <paramref name="follow"/> until the job has finished.</summary>
    public async IAsyncEnumerable<string> ReadLogsAsync(string @namespace, string name, bool follow, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var path = Item(TrainJob.KindName, @namespace, name) + "/log?follow=" + (follow ? "true" : "false");
        using var response = await _http.GetAsync(new Uri(_baseUrl, path), HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await ServerErrors.EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                yield return line;
            }
        }
    }

    public async Task<ResourceEvent> RecordEventAsync(Resource involved, ResourceEventType type, string reason, string message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(involved);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_baseUrl, Item(involved.Kind, Namespace(involved), Name(involved)) + "/events"))
        {
            Content = JsonContent.Create(new { type, reason, message }, options: CapstanJson.Options),
        };
        using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        await ServerErrors.EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return (await response.Content.ReadFromJsonAsync<ResourceEvent>(CapstanJson.Options, cancellationToken).ConfigureAwait(false))!;
    }

    public async Task<IReadOnlyList<ResourceEvent>> ListEventsAsync(string kind, string @namespace, string name, CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync(new Uri(_baseUrl, Item(kind, @namespace, name) + "/events"), cancellationToken).ConfigureAwait(false);
        await ServerErrors.EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        var list = await response.Content.ReadFromJsonAsync<EventItems>(CapstanJson.Options, cancellationToken).ConfigureAwait(false);
        return list?.Items ?? [];
    }

    private async Task<Resource> SendResourceAsync(HttpMethod method, string path, Resource? body, CancellationToken cancellationToken) =>
        ResourceSerializer.FromJson((await SendNodeAsync(method, path, body, cancellationToken).ConfigureAwait(false)).ToJsonString());

    private async Task<JsonNode> SendNodeAsync(HttpMethod method, string path, Resource? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, new Uri(_baseUrl, path));
        if (body is not null)
        {
            request.Content = new StringContent(ResourceSerializer.ToJson(body), Encoding.UTF8, "application/json");
        }

        using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        await ServerErrors.EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        return JsonNode.Parse(text) ?? throw new CapstanException(ErrorCode.Internal, $"{method} {path} returned an empty body.");
    }

    private static string Collection(string kind, string @namespace) =>
        $"api/v1/namespaces/{Uri.EscapeDataString(@namespace)}/{KindNames.Plural(kind)}";

    private static string Item(string kind, string @namespace, string name) =>
        $"{Collection(kind, @namespace)}/{Uri.EscapeDataString(name)}";

    private static string Namespace(Resource resource) => resource.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;

    private static string Name(Resource resource) =>
        resource.Metadata.Name ?? throw CapstanException.Invalid("metadata.name: missing required field 'name'");

    private sealed record EventItems(IReadOnlyList<ResourceEvent> Items);
}
