using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Capstan.Server.Dashboard;

/// <summary>
/// The dashboard at <c>/</c> and the few endpoints it needs beyond the native API, under <c>/api/v1/dashboard</c>:
/// a page of runs with only the chosen columns, the metric/param/tag keys of an experiment, many metric series
/// in one columnar answer, and resources of any kind across namespaces. Answers carry an ETag, so the
/// dashboard's polling costs a 304 when nothing changed.
/// </summary>
public static class DashboardApi
{
    /// <summary>How many of an experiment's newest runs are read to list its column keys.</summary>
    public const int KeySampleRuns = 300;

    /// <summary>The most points one series returns; longer series are thinned evenly, last point kept.</summary>
    public const int MaxPointsPerSeries = 5000;

    private const int DefaultMetricColumns = 8;
    private const int DefaultParamColumns = 6;

    public static IEndpointRouteBuilder MapDashboard(this IEndpointRouteBuilder app)
    {
        app.MapDashboardAssets();
        var api = app.MapGroup("/api/v1/dashboard").WithTags("Dashboard")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapPost("/run-table", RunTableAsync).WithName("DashboardRunTable");
        api.MapGet("/experiments/{id}/keys", ExperimentKeysAsync).WithName("DashboardExperimentKeys");
        api.MapPost("/metric-series", MetricSeriesAsync).WithName("DashboardMetricSeries");
        api.MapGet("/resources/{plural}", ListResourcesAsync).WithName("DashboardListResources");
        api.MapServiceMetrics();
        return app;
    }

    private static async Task<IResult> RunTableAsync(HttpContext context, RunTableQuery body, IMetadataStore store, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (body.ExperimentIds is not { Count: > 0 })
        {
            throw CapstanException.Invalid("Missing value for required field 'experimentIds'.");
        }

        var maxResults = body.MaxResults ?? 100;
        if (maxResults is < 1 or > 1000)
        {
            throw CapstanException.Invalid($"maxResults must be between 1 and 1000, got {maxResults}.");
        }

        var page = await store.SearchRunsAsync(new RunSearch(body.ExperimentIds, body.Filter, ViewType.ActiveOnly, maxResults, body.OrderBy, body.PageToken), cancellationToken);
        var metricKeys = new SortedSet<string>(StringComparer.Ordinal);
        var paramKeys = new SortedSet<string>(StringComparer.Ordinal);
        var tagKeys = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var run in page.Items)
        {
            metricKeys.UnionWith(run.Data.Metrics.Select(m => m.Key));
            paramKeys.UnionWith(run.Data.Params.Select(p => p.Key));
            tagKeys.UnionWith(run.Data.Tags.Select(t => t.Key));
        }

        // Columns left out of the query are the first keys of the page (tags only when asked for).
        var columns = new RunColumns(
            body.Metrics ?? [.. metricKeys.Take(DefaultMetricColumns)],
            body.Params ?? [.. paramKeys.Take(DefaultParamColumns)],
            body.Tags ?? []);
        var rows = new List<RunRow>(page.Items.Count);
        foreach (var run in page.Items)
        {
            rows.Add(new RunRow(
                run.Info.RunId,
                run.Info.ExperimentId,
                run.Info.RunName,
                run.Info.UserId,
                run.Info.Status,
                run.Info.StartTime,
                run.Info.EndTime,
                Pick(run.Data.Metrics, columns.Metrics, m => m.Key, m => (double?)m.Value),
                Pick(run.Data.Params, columns.Params, p => p.Key, p => p.Value),
                Pick(run.Data.Tags, columns.Tags, t => t.Key, t => t.Value)));
        }

        var table = new RunTable(rows, page.NextPageToken, columns, new RunKeys([.. metricKeys], [.. paramKeys], [.. tagKeys], Sampled: false));
        return Tagged(context, table);
    }

    /// <summary>The chosen keys' values in the chosen order (null where the run lacks one); NaN and infinities as null, since JSON has neither.</summary>
    private static IReadOnlyList<TValue?> Pick<TItem, TValue>(IReadOnlyList<TItem> items, IReadOnlyList<string> keys, Func<TItem, string> key, Func<TItem, TValue?> value)
    {
        if (keys.Count == 0)
        {
            return [];
        }

        var byKey = new Dictionary<string, TItem>(items.Count, StringComparer.Ordinal);
        foreach (var item in items)
        {
            byKey[key(item)] = item;
        }

        var values = new TValue?[keys.Count];
        for (var i = 0; i < keys.Count; i++)
        {
            if (byKey.TryGetValue(keys[i], out var item))
            {
                var v = value(item);
                values[i] = v is double d && !double.IsFinite(d) ? default : v;
            }
        }

        return values;
    }

    private static async Task<IResult> ExperimentKeysAsync(HttpContext context, string id, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.GetExperimentAsync(id, cancellationToken);
        var page = await store.SearchRunsAsync(new RunSearch([id], MaxResults: KeySampleRuns), cancellationToken);
        var metrics = new SortedSet<string>(StringComparer.Ordinal);
        var parameters = new SortedSet<string>(StringComparer.Ordinal);
        var tags = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var run in page.Items)
        {
            metrics.UnionWith(run.Data.Metrics.Select(m => m.Key));
            parameters.UnionWith(run.Data.Params.Select(p => p.Key));
            tags.UnionWith(run.Data.Tags.Select(t => t.Key));
        }

        return Tagged(context, new RunKeys([.. metrics], [.. parameters], [.. tags], Sampled: page.NextPageToken is not null));
    }

    private static async Task<IResult> MetricSeriesAsync(HttpContext context, MetricSeriesQuery body, IMetadataStore store, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (body.RunIds is not { Count: > 0 })
        {
            throw CapstanException.Invalid("Missing value for required field 'runIds'.");
        }

        if (body.RunIds.Count > 100)
        {
            throw CapstanException.Invalid($"At most 100 runs at once, got {body.RunIds.Count}.");
        }

        var maxPoints = Math.Clamp(body.MaxPoints ?? MaxPointsPerSeries, 2, MaxPointsPerSeries);
        var wanted = new List<(string RunId, string Key)>();
        foreach (var runId in body.RunIds.Distinct(StringComparer.Ordinal))
        {
            var keys = body.Keys;
            if (keys is not { Count: > 0 })
            {
                var run = await store.GetRunAsync(runId, cancellationToken);
                keys = [.. run.Data.Metrics.Select(m => m.Key).Order(StringComparer.Ordinal)];
            }

            wanted.AddRange(keys.Select(key => (runId, key)));
        }

        // Each series is its own indexed read; the store's readers run side by side.
        var found = new MetricSeries?[wanted.Count];
        await Parallel.ForAsync(0, wanted.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount), CancellationToken = cancellationToken }, async (i, ct) =>
            found[i] = await ReadSeriesAsync(store, wanted[i].RunId, wanted[i].Key, maxPoints, ct));
        var series = found.OfType<MetricSeries>().ToList();
        return Tagged(context, new MetricSeriesList(series));
    }

    private static async Task<MetricSeries?> ReadSeriesAsync(IMetadataStore store, string runId, string key, int maxPoints, CancellationToken cancellationToken)
    {
        var points = new List<Metric>();
        string? token = null;
        do
        {
            var history = await store.GetMetricHistoryAsync(runId, key, 100_000, token, cancellationToken);
            points.AddRange(history.Items);
            token = history.NextPageToken;
        }
        while (token is not null);

        if (points.Count == 0)
        {
            return null;
        }

        var stride = Math.Max(1, (int)Math.Ceiling(points.Count / (double)maxPoints));
        var count = ((points.Count - 1) / stride) + 1;
        var steps = new long[count];
        var times = new long[count];
        var values = new double?[count];
        for (var i = 0; i < count; i++)
        {
            // Thinned series keep their last point: it is the value the table shows.
            var point = points[i == count - 1 ? points.Count - 1 : i * stride];
            steps[i] = point.Step;
            times[i] = point.Timestamp;
            values[i] = double.IsFinite(point.Value) ? point.Value : null;
        }

        return new MetricSeries(runId, key, steps, times, values, points.Count);
    }

    private static async Task<IResult> ListResourcesAsync(HttpContext context, string plural, [FromQuery] string? @namespace, CancellationToken cancellationToken)
    {
        var kind = KindNames.Require(plural);
        var store = context.RequestServices.GetService<IResourceStore>();
        var items = new JsonArray();
        if (store is not null && ResourceKinds.TypeOf(kind) is not null)
        {
            foreach (var resource in await store.ListAsync(kind, string.IsNullOrWhiteSpace(@namespace) ? null : @namespace, null, cancellationToken))
            {
                items.Add(ResourceSerializer.ToJsonNode(resource));
            }
        }

        // A kind this server knows by name but cannot hold yet lists as empty, with supported=false.
        var list = new JsonObject
        {
            ["apiVersion"] = Resource.V1Alpha1,
            ["kind"] = kind + "List",
            ["supported"] = store is not null && ResourceKinds.TypeOf(kind) is not null,
            ["items"] = items,
        };
        return TaggedBytes(context, JsonSerializer.SerializeToUtf8Bytes(list, ResourceSerializer.JsonOptions));
    }

    private static IResult Tagged<T>(HttpContext context, T value) =>
        TaggedBytes(context, JsonSerializer.SerializeToUtf8Bytes(value, CapstanJson.Options));

    /// <summary>The body with a strong ETag of its bytes; 304 when the client already has them.</summary>
    private static IResult TaggedBytes(HttpContext context, byte[] bytes)
    {
        var etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(bytes))[..20] + "\"";
        context.Response.Headers.ETag = etag;
        context.Response.Headers.CacheControl = "no-cache";
        return context.Request.Headers.IfNoneMatch.ToString() == etag
            ? Results.StatusCode(StatusCodes.Status304NotModified)
            : Results.Bytes(bytes, "application/json");
    }
}

/// <summary>POST /api/v1/dashboard/run-table: a run search plus the metric, param and tag columns to return.</summary>
public sealed record RunTableQuery(
    IReadOnlyList<string>? ExperimentIds,
    string? Filter = null,
    IReadOnlyList<string>? OrderBy = null,
    int? MaxResults = null,
    string? PageToken = null,
    IReadOnlyList<string>? Metrics = null,
    IReadOnlyList<string>? Params = null,
    IReadOnlyList<string>? Tags = null);

/// <summary>One row: the run's attributes and the chosen columns' values, in the query's order.</summary>
public sealed record RunRow(
    string RunId,
    string ExperimentId,
    string RunName,
    string UserId,
    RunStatus Status,
    long StartTime,
    long? EndTime,
    IReadOnlyList<double?> Metrics,
    IReadOnlyList<string?> Params,
    IReadOnlyList<string?> Tags);

/// <summary>The column keys seen; <see cref="Sampled"/> is true when only the newest runs were read.</summary>
public sealed record RunKeys(IReadOnlyList<string> Metrics, IReadOnlyList<string> Params, IReadOnlyList<string> Tags, bool Sampled);

/// <summary>A page of the table: its rows, the columns they carry and every key seen on the page.</summary>
public sealed record RunTable(IReadOnlyList<RunRow> Rows, string? NextPageToken, RunColumns Columns, RunKeys PageKeys);

/// <summary>The metric, param and tag keys of the table's columns, in order.</summary>
public sealed record RunColumns(IReadOnlyList<string> Metrics, IReadOnlyList<string> Params, IReadOnlyList<string> Tags);

/// <summary>POST /api/v1/dashboard/metric-series: the runs and keys (every key of each run when empty).</summary>
public sealed record MetricSeriesQuery(IReadOnlyList<string>? RunIds, IReadOnlyList<string>? Keys = null, int? MaxPoints = null);

/// <summary>One series as columns; <see cref="TotalPoints"/> is the count before thinning.</summary>
public sealed record MetricSeries(string RunId, string Key, long[] Steps, long[] Timestamps, double?[] Values, int TotalPoints);

public sealed record MetricSeriesList(IReadOnlyList<MetricSeries> Series);
