using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.Registry;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;

namespace Capstan.Client;

/// <summary>
/// The typed client of a Capstan server's native REST API (<c>/api/v1</c>) and of its MLflow
/// artifact proxy. It implements the same interfaces as the embedded stores, and maps the
/// server's problem details back to <see cref="CapstanException"/>s, so code written against
/// <see cref="IMetadataStore"/> and <see cref="IArtifactStore"/> behaves the same remote or local.
/// </summary>
public sealed class CapstanClient : IMetadataStore, IArtifactStore, IDisposable
{
    private const string Api = "api/v1/";
    private const string ArtifactProxy = "api/2.0/mlflow-artifacts/artifacts";

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _baseUrl;

    /// <param name="baseUrl">The server's root, e.g. <c>http://127.0.0.1:5000</c>.</param>
    /// <param name="http">A caller-owned client (e.g. from IHttpClientFactory); one is created and owned when null.</param>
    public CapstanClient(Uri baseUrl, HttpClient? http = null)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        var text = baseUrl.AbsoluteUri;
        _baseUrl = new Uri(text.EndsWith('/') ? text : text + "/");
        _ownsHttp = http is null;
        _http = http ?? new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
    }

    public Uri BaseUrl => _baseUrl;

    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    // Experiments

    public Task<Experiment> CreateExperimentAsync(NewExperiment experiment, CancellationToken cancellationToken = default) =>
        SendAsync<Experiment>(HttpMethod.Post, "experiments", experiment, cancellationToken);

    public Task<Experiment> GetExperimentAsync(string experimentId, CancellationToken cancellationToken = default) =>
        SendAsync<Experiment>(HttpMethod.Get, $"experiments/{E(experimentId)}", null, cancellationToken);

    public Task<Experiment> GetExperimentByNameAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync<Experiment>(HttpMethod.Get, $"experiments/by-name/{E(name)}", null, cancellationToken);

    public Task<Page<Experiment>> SearchExperimentsAsync(ExperimentSearch search, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(search);
        var query = new QueryString()
            .Add("filter", search.Filter)
            .Add("viewType", search.ViewType.ToString())
            .Add("maxResults", search.MaxResults.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .AddAll("orderBy", search.OrderBy)
            .Add("pageToken", search.PageToken);
        return SendAsync<Page<Experiment>>(HttpMethod.Get, "experiments" + query, null, cancellationToken);
    }

    public Task RenameExperimentAsync(string experimentId, string newName, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Patch, $"experiments/{E(experimentId)}", new { name = newName }, cancellationToken);

    public Task DeleteExperimentAsync(string experimentId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"experiments/{E(experimentId)}", null, cancellationToken);

    public Task RestoreExperimentAsync(string experimentId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"experiments/{E(experimentId)}/restore", null, cancellationToken);

    public Task SetExperimentTagAsync(string experimentId, string key, string value, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Put, $"experiments/{E(experimentId)}/tags/{E(key)}", new { value }, cancellationToken);

    // Runs

    public Task<Run> CreateRunAsync(NewRun run, CancellationToken cancellationToken = default) =>
        SendAsync<Run>(HttpMethod.Post, "runs", run, cancellationToken);

    public Task<Run> GetRunAsync(string runId, CancellationToken cancellationToken = default) =>
        SendAsync<Run>(HttpMethod.Get, $"runs/{E(runId)}", null, cancellationToken);

    public Task<RunInfo> UpdateRunAsync(string runId, RunUpdate update, CancellationToken cancellationToken = default) =>
        SendAsync<RunInfo>(HttpMethod.Patch, $"runs/{E(runId)}", update, cancellationToken);

    public Task DeleteRunAsync(string runId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"runs/{E(runId)}", null, cancellationToken);

    public Task RestoreRunAsync(string runId, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"runs/{E(runId)}/restore", null, cancellationToken);

    public Task LogBatchAsync(string runId, LogBatch batch, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"runs/{E(runId)}/batch", batch, cancellationToken);

    public Task DeleteTagAsync(string runId, string key, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"runs/{E(runId)}/tags/{E(key)}", null, cancellationToken);

    public Task LogInputsAsync(string runId, IReadOnlyList<DatasetInput> inputs, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, $"runs/{E(runId)}/inputs", new { datasets = inputs }, cancellationToken);

    public Task<Page<Run>> SearchRunsAsync(RunSearch search, CancellationToken cancellationToken = default) =>
        SendAsync<Page<Run>>(HttpMethod.Post, "runs/search", search, cancellationToken);

    public Task<Page<Metric>> GetMetricHistoryAsync(string runId, string key, int maxResults = 100_000, string? pageToken = null, CancellationToken cancellationToken = default)
    {
        var query = new QueryString()
            .Add("maxResults", maxResults.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Add("pageToken", pageToken);
        return SendAsync<Page<Metric>>(HttpMethod.Get, $"runs/{E(runId)}/metrics/{E(key)}{query}", null, cancellationToken);
    }

    // Registered models

    public Task<RegisteredModel> CreateRegisteredModelAsync(NewRegisteredModel model, CancellationToken cancellationToken = default) =>
        SendAsync<RegisteredModel>(HttpMethod.Post, "models", model, cancellationToken);

    public Task<RegisteredModel> GetRegisteredModelAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync<RegisteredModel>(HttpMethod.Get, $"models/{E(name)}", null, cancellationToken);

    public Task<Page<RegisteredModel>> SearchRegisteredModelsAsync(RegistrySearch search, CancellationToken cancellationToken = default) =>
        SendAsync<Page<RegisteredModel>>(HttpMethod.Get, "models" + RegistryQuery(search), null, cancellationToken);

    public Task<RegisteredModel> UpdateRegisteredModelAsync(string name, string? description, CancellationToken cancellationToken = default) =>
        SendAsync<RegisteredModel>(HttpMethod.Patch, $"models/{E(name)}", new { description }, cancellationToken);

    public Task<RegisteredModel> RenameRegisteredModelAsync(string name, string newName, CancellationToken cancellationToken = default) =>
        SendAsync<RegisteredModel>(HttpMethod.Post, $"models/{E(name)}/rename", new { newName }, cancellationToken);

    public Task DeleteRegisteredModelAsync(string name, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"models/{E(name)}", null, cancellationToken);

    public Task SetRegisteredModelTagAsync(string name, string key, string value, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Put, $"models/{E(name)}/tags/{E(key)}", new { value }, cancellationToken);

    public Task DeleteRegisteredModelTagAsync(string name, string key, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"models/{E(name)}/tags/{E(key)}", null, cancellationToken);

    // Model versions

    public Task<ModelVersion> CreateModelVersionAsync(NewModelVersion version, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(version);
        return SendAsync<ModelVersion>(HttpMethod.Post, $"models/{E(version.Name)}/versions", version, cancellationToken);
    }

    public Task<ModelVersion> GetModelVersionAsync(string name, long version, CancellationToken cancellationToken = default) =>
        SendAsync<ModelVersion>(HttpMethod.Get, VersionPath(name, version), null, cancellationToken);

    public Task<ModelVersion> UpdateModelVersionAsync(string name, long version, string? description, CancellationToken cancellationToken = default) =>
        SendAsync<ModelVersion>(HttpMethod.Patch, VersionPath(name, version), new { description }, cancellationToken);

    public Task DeleteModelVersionAsync(string name, long version, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, VersionPath(name, version), null, cancellationToken);

    public Task<Page<ModelVersion>> SearchModelVersionsAsync(RegistrySearch search, CancellationToken cancellationToken = default) =>
        SendAsync<Page<ModelVersion>>(HttpMethod.Get, "model-versions" + RegistryQuery(search), null, cancellationToken);

    public async Task<IReadOnlyList<ModelVersion>> GetLatestVersionsAsync(string name, IReadOnlyList<string>? stages = null, CancellationToken cancellationToken = default)
    {
        var query = new QueryString().AddAll("stages", stages);
        return await SendAsync<ModelVersion[]>(HttpMethod.Get, $"models/{E(name)}/versions/latest{query}", null, cancellationToken).ConfigureAwait(false);
    }

    public Task SetModelVersionTagAsync(string name, long version, string key, string value, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Put, $"{VersionPath(name, version)}/tags/{E(key)}", new { value }, cancellationToken);

    public Task DeleteModelVersionTagAsync(string name, long version, string key, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"{VersionPath(name, version)}/tags/{E(key)}", null, cancellationToken);

    // Aliases

    public Task SetAliasAsync(string name, string alias, long version, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Put, $"models/{E(name)}/aliases/{E(alias)}", new { version }, cancellationToken);

    public Task DeleteAliasAsync(string name, string alias, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Delete, $"models/{E(name)}/aliases/{E(alias)}", null, cancellationToken);

    public Task<ModelVersion> GetModelVersionByAliasAsync(string name, string alias, CancellationToken cancellationToken = default) =>
        SendAsync<ModelVersion>(HttpMethod.Get, $"models/{E(name)}/aliases/{E(alias)}", null, cancellationToken);

    // Artifacts, through the MLflow artifact proxy. Paths are relative to the artifact store's root.

    public async Task<ArtifactFile> PutAsync(string path, Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        long? length = content.CanSeek ? content.Length - content.Position : null;
        using var request = new HttpRequestMessage(HttpMethod.Put, ArtifactUrl(path));
        // The body is read from the source as it is sent: a large model never sits whole in memory.
        request.Content = new UploadContent(content, length);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");

        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        return new ArtifactFile(NormalizePath(path), false, length);
    }

    public async Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, ArtifactUrl(path));
        var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return new ResponseStream(body, response);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    public async Task<IReadOnlyList<ArtifactFile>> ListAsync(string? path, CancellationToken cancellationToken = default)
    {
        var folder = string.IsNullOrEmpty(path) ? string.Empty : NormalizePath(path);
        var query = new QueryString().Add("path", folder.Length == 0 ? null : folder);
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(_baseUrl, ArtifactProxy + query));
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        var listing = await response.Content.ReadFromJsonAsync<ProxyListing>(s_proxyJson, cancellationToken).ConfigureAwait(false);
        if (listing?.Files is null)
        {
            return [];
        }

        // The proxy lists paths relative to the folder asked for; IArtifactStore speaks store-root paths.
        var prefix = folder.Length == 0 ? string.Empty : folder + "/";
        return [.. listing.Files.Select(f => new ArtifactFile(prefix + f.Path.TrimStart('/'), f.IsDir, f.FileSize))];
    }

    public async Task DeleteAsync(string path, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, ArtifactUrl(path));
        using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return;
        }

        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
    }

    // Plumbing

    private static string E(string segment) => Uri.EscapeDataString(segment);

    private static string VersionPath(string name, long version) =>
        $"models/{E(name)}/versions/{version.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    private static string NormalizePath(string path) => path.Replace('\\', '/').Trim('/');

    private Uri ArtifactUrl(string path)
    {
        var escaped = string.Join('/', NormalizePath(path).Split('/').Select(Uri.EscapeDataString));
        return new Uri(_baseUrl, $"{ArtifactProxy}/{escaped}");
    }

    private static QueryString RegistryQuery(RegistrySearch search)
    {
        ArgumentNullException.ThrowIfNull(search);
        return new QueryString()
            .Add("filter", search.Filter)
            .Add("maxResults", search.MaxResults.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .AddAll("orderBy", search.OrderBy)
            .Add("pageToken", search.PageToken);
    }

    private async Task<T> SendAsync<T>(HttpMethod method, string relative, object? body, CancellationToken cancellationToken)
    {
        using var request = CreateRequest(method, relative, body);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
        var result = await response.Content.ReadFromJsonAsync<T>(CapstanJson.Options, cancellationToken).ConfigureAwait(false);
        return result ?? throw new CapstanException(ErrorCode.Internal, $"{method} {relative} returned an empty body.");
    }

    private async Task SendAsync(HttpMethod method, string relative, object? body, CancellationToken cancellationToken)
    {
        using var request = CreateRequest(method, relative, body);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
    }

    private HttpRequestMessage CreateRequest(HttpMethod method, string relative, object? body)
    {
        var request = new HttpRequestMessage(method, new Uri(_baseUrl, Api + relative));
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, body.GetType(), options: CapstanJson.Options);
        }

        return request;
    }

    private static Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken) =>
        ServerErrors.EnsureSuccessAsync(response, cancellationToken);

    private static readonly JsonSerializerOptions s_proxyJson = new(JsonSerializerDefaults.Web);

    private sealed record ProxyListing([property: JsonPropertyName("files")] IReadOnlyList<ProxyFile>? Files);

    private sealed record ProxyFile(
        [property: JsonPropertyName("path")] string Path,
        [property: JsonPropertyName("is_dir")] bool IsDir,
        [property: JsonPropertyName("file_size")] long? FileSize);

    /// <summary>A query string built from optional parts, each escaped.</summary>
    private readonly struct QueryString
    {
        private readonly string? _text;

        private QueryString(string text) => _text = text;

        public QueryString Add(string name, string? value)
        {
            if (value is null)
            {
                return this;
            }

            var part = $"{Uri.EscapeDataString(name)}={Uri.EscapeDataString(value)}";
            return new QueryString(string.IsNullOrEmpty(_text) ? "?" + part : _text + "&" + part);
        }

        public QueryString AddAll(string name, IEnumerable<string>? values)
        {
            var query = this;
            foreach (var value in values ?? [])
            {
                query = query.Add(name, value);
            }

            return query;
        }

        public override string ToString() => _text ?? string.Empty;
    }
}
