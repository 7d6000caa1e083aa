using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;
using Capstan.Server.Artifacts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using static Capstan.Server.Api.NativeRequests;

namespace Capstan.Server.Api;

/// <summary>Capstan's native tracking API (<c>/api/v1/experiments</c>, <c>/api/v1/runs</c>): the Core records as camelCase JSON.</summary>
public static class TrackingApi
{
    public static IEndpointRouteBuilder MapTrackingApi(this IEndpointRouteBuilder app)
    {
        var experiments = app.MapGroup("/api/v1/experiments").WithTags("Experiments").WithNativeErrors();
        experiments.MapPost("/", CreateExperimentAsync).WithName("CreateExperiment");
        experiments.MapGet("/", SearchExperimentsAsync).WithName("SearchExperiments");
        experiments.MapGet("/{id}", GetExperimentAsync).WithName("GetExperiment");
        experiments.MapGet("/by-name/{name}", GetExperimentByNameAsync).WithName("GetExperimentByName");
        experiments.MapPatch("/{id}", RenameExperimentAsync).WithName("RenameExperiment");
        experiments.MapDelete("/{id}", DeleteExperimentAsync).WithName("DeleteExperiment");
        experiments.MapPost("/{id}/restore", RestoreExperimentAsync).WithName("RestoreExperiment");
        experiments.MapPut("/{id}/tags/{key}", SetExperimentTagAsync).WithName("SetExperimentTag");

        var runs = app.MapGroup("/api/v1/runs").WithTags("Runs").WithNativeErrors();
        runs.MapPost("/", CreateRunAsync).WithName("CreateRun");
        runs.MapPost("/search", SearchRunsAsync).WithName("SearchRuns");
        runs.MapGet("/{id}", GetRunAsync).WithName("GetRun");
        runs.MapPatch("/{id}", UpdateRunAsync).WithName("UpdateRun");
        runs.MapDelete("/{id}", DeleteRunAsync).WithName("DeleteRun");
        runs.MapPost("/{id}/restore", RestoreRunAsync).WithName("RestoreRun");
        runs.MapPost("/{id}/batch", LogBatchAsync).WithName("LogBatch");
        runs.MapDelete("/{id}/tags/{key}", DeleteRunTagAsync).WithName("DeleteRunTag");
        runs.MapPost("/{id}/inputs", LogInputsAsync).WithName("LogInputs");
        runs.MapGet("/{id}/metrics/{key}", GetMetricHistoryAsync).WithName("GetMetricHistory");
        runs.MapGet("/{id}/artifacts", ListArtifactsAsync).WithName("ListRunArtifacts");
        runs.MapGet("/{id}/artifacts/{**path}", DownloadArtifactAsync).WithName("DownloadRunArtifact");
        // An artifact is any file: the body is stored as sent, whatever its Content-Type (or none, as `curl -T` sends).
        runs.MapPut("/{id}/artifacts/{**path}", UploadArtifactAsync).WithName("UploadRunArtifact")
            .Accepts<Stream>("application/octet-stream", "*/*")
            .WithMetadata(new DisableRequestSizeLimitAttribute());
        return app;
    }

    // Experiments

    private static async Task<Created<Experiment>> CreateExperimentAsync(NewExperiment body, IMetadataStore store, CancellationToken cancellationToken)
    {
        Required(Body(body).Name, "name");
        var experiment = await store.CreateExperimentAsync(body, cancellationToken);
        return TypedResults.Created($"/api/v1/experiments/{experiment.ExperimentId}", experiment);
    }

    private static async Task<Ok<Page<Experiment>>> SearchExperimentsAsync(
        IMetadataStore store,
        CancellationToken cancellationToken,
        [FromQuery] string? filter = null,
        [FromQuery] string? viewType = null,
        [FromQuery] int? maxResults = null,
        [FromQuery] string[]? orderBy = null,
        [FromQuery] string? pageToken = null)
    {
        var search = new ExperimentSearch(filter, ParseViewType(viewType), maxResults ?? 1000, orderBy, pageToken);
        return TypedResults.Ok(await store.SearchExperimentsAsync(search, cancellationToken));
    }

    private static async Task<Ok<Experiment>> GetExperimentAsync(string id, IMetadataStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.GetExperimentAsync(id, cancellationToken));

    private static async Task<Ok<Experiment>> GetExperimentByNameAsync(string name, IMetadataStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.GetExperimentByNameAsync(name, cancellationToken));

    private static async Task<NoContent> RenameExperimentAsync(string id, ExperimentRename body, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.RenameExperimentAsync(id, Required(Body(body).Name, "name"), cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> DeleteExperimentAsync(string id, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.DeleteExperimentAsync(id, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> RestoreExperimentAsync(string id, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.RestoreExperimentAsync(id, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> SetExperimentTagAsync(string id, string key, TagValue body, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.SetExperimentTagAsync(id, key, Body(body).Value ?? string.Empty, cancellationToken);
        return TypedResults.NoContent();
    }

    // Runs

    private static async Task<Created<Run>> CreateRunAsync(NewRun body, IMetadataStore store, CancellationToken cancellationToken)
    {
        Required(Body(body).ExperimentId, "experimentId");
        var run = await store.CreateRunAsync(body, cancellationToken);
        return TypedResults.Created($"/api/v1/runs/{run.Info.RunId}", run);
    }

    private static async Task<Ok<Page<Run>>> SearchRunsAsync(RunSearch body, IMetadataStore store, CancellationToken cancellationToken)
    {
        Body(body);
        return TypedResults.Ok(await store.SearchRunsAsync(body with { ExperimentIds = body.ExperimentIds ?? [] }, cancellationToken));
    }

    private static async Task<Ok<Run>> GetRunAsync(string id, IMetadataStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.GetRunAsync(id, cancellationToken));

    private static async Task<Ok<RunInfo>> UpdateRunAsync(string id, RunUpdate body, IMetadataStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.UpdateRunAsync(id, Body(body), cancellationToken));

    private static async Task<NoContent> DeleteRunAsync(string id, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.DeleteRunAsync(id, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> RestoreRunAsync(string id, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.RestoreRunAsync(id, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> LogBatchAsync(string id, LogBatch body, IMetadataStore store, CancellationToken cancellationToken)
    {
        Body(body);
        var metrics = body.Metrics?.Count ?? 0;
        var parameters = body.Params?.Count ?? 0;
        var tags = body.Tags?.Count ?? 0;
        if (metrics > LogBatch.MaxMetrics || parameters > LogBatch.MaxParams || tags > LogBatch.MaxTags || metrics + parameters + tags > LogBatch.MaxItems)
        {
            throw CapstanException.Invalid(
                $"A batch may hold at most {LogBatch.MaxMetrics} metrics, {LogBatch.MaxParams} params, {LogBatch.MaxTags} tags and {LogBatch.MaxItems} items in all; got {metrics}, {parameters}, {tags}.");
        }

        await store.LogBatchAsync(id, body, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> DeleteRunTagAsync(string id, string key, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.DeleteTagAsync(id, key, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> LogInputsAsync(string id, RunInputs body, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.LogInputsAsync(id, Body(body).Datasets ?? [], cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<Page<Metric>>> GetMetricHistoryAsync(
        string id,
        string key,
        IMetadataStore store,
        CancellationToken cancellationToken,
        [FromQuery] int? maxResults = null,
        [FromQuery] string? pageToken = null) =>
        TypedResults.Ok(await store.GetMetricHistoryAsync(id, key, maxResults ?? 100_000, pageToken, cancellationToken));

    private static async Task<string> RunRootAsync(string id, IMetadataStore store, CancellationToken cancellationToken)
    {
        var run = await store.GetRunAsync(id, cancellationToken);
        return ArtifactUri.ToStorePath(run.Info.ArtifactUri);
    }

    private static async Task<Ok<Page<ArtifactFile>>> ListArtifactsAsync(
        string id,
        IMetadataStore store,
        IArtifactStore artifacts,
        CancellationToken cancellationToken,
        [FromQuery] string? path = null)
    {
        var relative = ArtifactPaths.Normalize(path, "path");
        var root = await RunRootAsync(id, store, cancellationToken);
        var entries = await artifacts.ListAsync(ArtifactPaths.Join(root, relative), cancellationToken);
        var files = entries.Select(entry => entry with { Path = ArtifactPaths.RelativeTo(root, entry.Path) }).ToList();
        return TypedResults.Ok(new Page<ArtifactFile>(files, null));
    }

    private static async Task<FileStreamHttpResult> DownloadArtifactAsync(
        string id,
        string path,
        IMetadataStore store,
        IArtifactStore artifacts,
        CancellationToken cancellationToken)
    {
        var relative = ArtifactPaths.Normalize(path, "path");
        var root = await RunRootAsync(id, store, cancellationToken);
        var content = await artifacts.OpenReadAsync(ArtifactPaths.Join(root, relative), cancellationToken);
        return TypedResults.Stream(content, ArtifactPaths.ContentType(relative));
    }

    private static async Task<Created<ArtifactFile>> UploadArtifactAsync(
        string id,
        string path,
        HttpRequest request,
        IMetadataStore store,
        IArtifactStore artifacts,
        CancellationToken cancellationToken)
    {
        var relative = ArtifactPaths.Normalize(path, "path");
        if (relative.Length == 0)
        {
            throw CapstanException.Invalid("Missing value for required field 'path'.");
        }

        var root = await RunRootAsync(id, store, cancellationToken);
        var file = await artifacts.PutAsync(ArtifactPaths.Join(root, relative), request.Body, cancellationToken);
        return TypedResults.Created($"/api/v1/runs/{id}/artifacts/{relative}", file with { Path = ArtifactPaths.RelativeTo(root, file.Path) });
    }
}
