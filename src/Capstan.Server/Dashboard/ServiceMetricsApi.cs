using System.Globalization;
using System.Net;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Capstan.Server.Dashboard;

/// <summary>
/// <c>GET /api/v1/dashboard/services/{ns}/{name}/metrics</c>: the service's inference server scraped now, its
/// <c>/metrics</c> reduced to what the service page plots — per model version the request counters by outcome, the
/// latency histogram's cumulative buckets and the queue depth. Counters are cumulative, as Prometheus serves them; the
/// page turns two scrapes into rates and interval percentiles. Only a server on a loopback address is scraped: the
/// URL comes from the service's status, and the dashboard must not become a way to reach other hosts.
/// </summary>
public static class ServiceMetricsApi
{
    private static readonly HttpClient s_http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
    {
        Timeout = TimeSpan.FromSeconds(2),
    };

    public static RouteGroupBuilder MapServiceMetrics(this RouteGroupBuilder api)
    {
        api.MapGet("/services/{namespace}/{name}/metrics", ScrapeAsync).WithName("DashboardServiceMetrics");
        return api;
    }

    private static async Task<ServiceMetrics> ScrapeAsync(HttpContext context, string @namespace, string name, CancellationToken cancellationToken)
    {
        // A server without a control plane has no resource store: its services do not exist.
        if (context.RequestServices.GetService<IResourceStore>() is not { } resources
            || await resources.FindAsync(InferenceService.KindName, @namespace, name, cancellationToken) is not InferenceService service)
        {
            throw CapstanException.NotFound($"InferenceService '{@namespace}/{name}' does not exist.");
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        if (service.Status?.Url is not { Length: > 0 } url || !Uri.TryCreate(url, UriKind.Absolute, out var baseUri))
        {
            return ServiceMetrics.Unavailable(now, "The service has no server address yet.");
        }

        if (!IsLoopback(baseUri))
        {
            return ServiceMetrics.Unavailable(now, $"The server at {baseUri.Host} is not on this machine; scrape it with Prometheus.");
        }

        string text;
        try
        {
            text = await s_http.GetStringAsync(new Uri(baseUri, "/metrics"), cancellationToken);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return ServiceMetrics.Unavailable(now, $"The server did not answer /metrics: {e.Message}");
        }

        return ServiceMetrics.From(now, url, PrometheusText.Parse(text));
    }

    private static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
}

/// <summary>One scrape of a service's server; <see cref="Time"/> in Unix milliseconds.</summary>
public sealed record ServiceMetrics(bool Available, long Time, string? Url, string? Reason, IReadOnlyList<VersionMetrics> Versions)
{
    public static ServiceMetrics Unavailable(long time, string reason) => new(false, time, null, reason, []);

    public static ServiceMetrics From(long time, string url, IEnumerable<PrometheusSample> samples)
    {
        var versions = new SortedDictionary<(string Model, string Version), VersionMetrics>();
        VersionMetrics Of(PrometheusSample s)
        {
            var key = (s.Label("model"), s.Label("version"));
            if (!versions.TryGetValue(key, out var v))
            {
                versions[key] = v = new VersionMetrics(key.Item1, key.Item2);
            }

            return v;
        }

        foreach (var sample in samples)
        {
            switch (sample.Name)
            {
                case "capstan_inference_requests_total":
                    var requests = Of(sample).Requests;
                    requests[sample.Label("outcome")] = requests.GetValueOrDefault(sample.Label("outcome")) + sample.Value;
                    break;
                case "capstan_inference_request_duration_seconds_bucket"
                    when double.TryParse(sample.Label("le"), NumberStyles.Float, CultureInfo.InvariantCulture, out var le):
                    Of(sample).LatencyBuckets.Add([le, sample.Value]);
                    break;
                case "capstan_inference_request_duration_seconds_count":
                    Of(sample).LatencyCount = sample.Value;
                    break;
                case "capstan_inference_request_duration_seconds_sum":
                    Of(sample).LatencySum = sample.Value;
                    break;
                case "capstan_inference_queue_depth":
                    Of(sample).QueueDepth = sample.Value;
                    break;
            }
        }

        foreach (var v in versions.Values)
        {
            v.LatencyBuckets.Sort((a, b) => a[0].CompareTo(b[0]));
        }

        return new ServiceMetrics(true, time, url, null, [.. versions.Values]);
    }
}

/// <summary>
/// One model version's figures: requests by outcome, latency buckets as <c>[upper bound in seconds, cumulative count]</c>
/// (the <c>+Inf</c> bucket is <see cref="LatencyCount"/>), queue depth.
/// </summary>
public sealed class VersionMetrics(string model, string version)
{
    public string Model { get; } = model;

    public string Version { get; } = version;

    public Dictionary<string, double> Requests { get; } = new(StringComparer.Ordinal);

    public List<double[]> LatencyBuckets { get; } = [];

    public double LatencyCount { get; set; }

    public double LatencySum { get; set; }

    public double QueueDepth { get; set; }
}
