using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.Registry;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;
using Capstan.Server.Artifacts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using static Capstan.Server.Mlflow.MlflowRequests;

namespace Capstan.Server.Mlflow;

/// <summary>
/// MLflow's tracking and model-registry REST API (<c>/api/2.0/mlflow/...</c>, also under
/// <c>/ajax-api/</c>), so MLflow clients pointed at Capstan work unchanged.
/// </summary>
public static class MlflowApi
{
    public static readonly string[] Prefixes = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];

    public static IEndpointRouteBuilder MapMlflowApi(this IEndpointRouteBuilder app)
    {
        var handlers = new MlflowHandlers(
            app.ServiceProvider.GetRequiredService<IMetadataStore>(),
            app.ServiceProvider.GetRequiredService<IArtifactStore>());

        foreach (var prefix in Prefixes)
        {
            var group = app.MapGroup(prefix).ExcludeFromDescription();

            group.MapPost("/experiments/create", handlers.CreateExperimentAsync);
            group.MapGet("/experiments/get", handlers.GetExperimentAsync);
            group.MapGet("/experiments/get-by-name", handlers.GetExperimentByNameAsync);
            group.MapMethods("/experiments/search", [HttpMethods.Get, HttpMethods.Post], handlers.SearchExperimentsAsync);
            group.MapPost("/experiments/update", handlers.UpdateExperimentAsync);
            group.MapPost("/experiments/delete", handlers.DeleteExperimentAsync);
            group.MapPost("/experiments/restore", handlers.RestoreExperimentAsync);
            group.MapPost("/experiments/set-experiment-tag", handlers.SetExperimentTagAsync);

            group.MapPost("/runs/create", handlers.CreateRunAsync);
            group.MapGet("/runs/get", handlers.GetRunAsync);
            group.MapPost("/runs/update", handlers.UpdateRunAsync);
            group.MapPost("/runs/delete", handlers.DeleteRunAsync);
            group.MapPost("/runs/restore", handlers.RestoreRunAsync);
            group.MapPost("/runs/search", handlers.SearchRunsAsync);
            group.MapPost("/runs/log-metric", handlers.LogMetricAsync);
            group.MapPost("/runs/log-parameter", handlers.LogParameterAsync);
            group.MapPost("/runs/set-tag", handlers.SetTagAsync);
            group.MapPost("/runs/delete-tag", handlers.DeleteTagAsync);
            group.MapPost("/runs/log-batch", handlers.LogBatchAsync);
            group.MapPost("/runs/log-inputs", handlers.LogInputsAsync);
            group.MapGet("/metrics/get-history", handlers.GetMetricHistoryAsync);
            group.MapGet("/artifacts/list", handlers.ListArtifactsAsync);

            group.MapPost("/registered-models/create", handlers.CreateRegisteredModelAsync);
            group.MapGet("/registered-models/get", handlers.GetRegisteredModelAsync);
            group.MapGet("/registered-models/search", handlers.SearchRegisteredModelsAsync);
            group.MapPatch("/registered-models/update", handlers.UpdateRegisteredModelAsync);
            group.MapPost("/registered-models/rename", handlers.RenameRegisteredModelAsync);
            group.MapDelete("/registered-models/delete", handlers.DeleteRegisteredModelAsync);
            group.MapMethods("/registered-models/get-latest-versions", [HttpMethods.Get, HttpMethods.Post], handlers.GetLatestVersionsAsync);
            group.MapPost("/registered-models/set-tag", handlers.SetRegisteredModelTagAsync);
            group.MapDelete("/registered-models/delete-tag", handlers.DeleteRegisteredModelTagAsync);
            group.MapPost("/registered-models/alias", handlers.SetAliasAsync);
            group.MapDelete("/registered-models/alias", handlers.DeleteAliasAsync);
            group.MapGet("/registered-models/alias", handlers.GetModelVersionByAliasAsync);

            group.MapPost("/model-versions/create", handlers.CreateModelVersionAsync);
            group.MapGet("/model-versions/get", handlers.GetModelVersionAsync);
            group.MapGet("/model-versions/search", handlers.SearchModelVersionsAsync);
            group.MapPatch("/model-versions/update", handlers.UpdateModelVersionAsync);
            group.MapDelete("/model-versions/delete", handlers.DeleteModelVersionAsync);
            group.MapPost("/model-versions/set-tag", handlers.SetModelVersionTagAsync);
            group.MapDelete("/model-versions/delete-tag", handlers.DeleteModelVersionTagAsync);
            group.MapGet("/model-versions/get-download-uri", handlers.GetDownloadUriAsync);

            group.Map("/{**rest}", EndpointNotFoundAsync);
        }

        return app;
    }

    private static Task EndpointNotFoundAsync(HttpContext context) =>
        WriteErrorAsync(context, StatusCodes.Status404NotFound, "ENDPOINT_NOT_FOUND",
            $"No MLflow endpoint {context.Request.Method} {context.Request.Path}.");
}

internal sealed class MlflowHandlers(IMetadataStore store, IArtifactStore artifacts)
{
    private static string RunId(string? runId, string? runUuid) =>
        !string.IsNullOrEmpty(runId) ? runId : Required(runUuid, "run_id");

    // Experiments

    public async Task CreateExperimentAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.ExperimentRequest);
        var experiment = await store.CreateExperimentAsync(
            new NewExperiment(
                Required(request.Name, "name"),
                string.IsNullOrEmpty(request.ArtifactLocation) ? null : request.ArtifactLocation,
                MlflowMapping.ToTags(request.Tags, "tags")),
            context.RequestAborted);
        await WriteAsync(context, new CreateExperimentResponse { ExperimentId = experiment.ExperimentId }, MlflowJsonContext.Default.CreateExperimentResponse);
    }

    public async Task GetExperimentAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.ExperimentRequest);
        var experiment = await store.GetExperimentAsync(Required(request.ExperimentId, "experiment_id"), context.RequestAborted);
        await WriteAsync(context, new ExperimentResponse { Experiment = MlflowMapping.ToWire(experiment) }, MlflowJsonContext.Default.ExperimentResponse);
    }

    public async Task GetExperimentByNameAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.ExperimentRequest);
        var experiment = await store.GetExperimentByNameAsync(Required(request.ExperimentName, "experiment_name"), context.RequestAborted);
        await WriteAsync(context, new ExperimentResponse { Experiment = MlflowMapping.ToWire(experiment) }, MlflowJsonContext.Default.ExperimentResponse);
    }

    public async Task SearchExperimentsAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.ExperimentRequest);
        var page = await store.SearchExperimentsAsync(
            new ExperimentSearch(
                string.IsNullOrEmpty(request.Filter) ? null : request.Filter,
                MlflowMapping.ParseViewType(request.ViewType, "view_type"),
                MaxResults(request.MaxResults, 1000),
                request.OrderBy,
                string.IsNullOrEmpty(request.PageToken) ? null : request.PageToken),
            context.RequestAborted);
        var experiments = page.Items.Count == 0 ? null : page.Items.Select(MlflowMapping.ToWire).ToList();
        await WriteAsync(context, new SearchExperimentsResponse { Experiments = experiments, NextPageToken = page.NextPageToken }, MlflowJsonContext.Default.SearchExperimentsResponse);
    }

    public async Task UpdateExperimentAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.ExperimentRequest);
        await store.RenameExperimentAsync(Required(request.ExperimentId, "experiment_id"), Required(request.NewName, "new_name"), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task DeleteExperimentAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.ExperimentRequest);
        await store.DeleteExperimentAsync(Required(request.ExperimentId, "experiment_id"), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task RestoreExperimentAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.ExperimentRequest);
        await store.RestoreExperimentAsync(Required(request.ExperimentId, "experiment_id"), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task SetExperimentTagAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.ExperimentRequest);
        await store.SetExperimentTagAsync(
            Required(request.ExperimentId, "experiment_id"),
            Required(request.Key, "key"),
            request.Value ?? string.Empty,
            context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    // Runs

    public async Task CreateRunAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RunRequest);
        var run = await store.CreateRunAsync(
            new NewRun(
                Required(request.ExperimentId, "experiment_id"),
                string.IsNullOrEmpty(request.RunName) ? null : request.RunName,
                string.IsNullOrEmpty(request.UserId) ? null : request.UserId,
                request.StartTime,
                MlflowMapping.ToTags(request.Tags, "tags")),
            context.RequestAborted);
        await WriteAsync(context, new RunResponse { Run = MlflowMapping.ToWire(run) }, MlflowJsonContext.Default.RunResponse);
    }

    public async Task GetRunAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RunRequest);
        var run = await store.GetRunAsync(RunId(request.RunId, request.RunUuid), context.RequestAborted);
        await MlflowResponseWriter.WriteRunAsync(context, run);
    }

    public async Task UpdateRunAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RunRequest);
        var info = await store.UpdateRunAsync(
            RunId(request.RunId, request.RunUuid),
            new RunUpdate(
                string.IsNullOrEmpty(request.Status) ? null : MlflowMapping.ParseRunStatus(request.Status),
                request.EndTime,
                string.IsNullOrEmpty(request.RunName) ? null : request.RunName),
            context.RequestAborted);
        await WriteAsync(context, new UpdateRunResponse { RunInfo = MlflowMapping.ToWire(info) }, MlflowJsonContext.Default.UpdateRunResponse);
    }

    public async Task DeleteRunAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RunRequest);
        await store.DeleteRunAsync(RunId(request.RunId, request.RunUuid), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task RestoreRunAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RunRequest);
        await store.RestoreRunAsync(RunId(request.RunId, request.RunUuid), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task SearchRunsAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.SearchRunsRequest);
        var page = await store.SearchRunsAsync(
            new RunSearch(
                request.ExperimentIds ?? [],
                string.IsNullOrEmpty(request.Filter) ? null : request.Filter,
                MlflowMapping.ParseViewType(request.RunViewType, "run_view_type"),
                MaxResults(request.MaxResults, 1000),
                request.OrderBy,
                string.IsNullOrEmpty(request.PageToken) ? null : request.PageToken),
            context.RequestAborted);
        await MlflowResponseWriter.WriteRunsAsync(context, page);
    }

    public async Task LogMetricAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.LogMetricRequest);
        var runId = RunId(request.RunId, request.RunUuid);
        var metric = new Metric(
            Required(request.Key, "key"),
            Required(request.Value, "value"),
            Required(request.Timestamp, "timestamp"),
            request.Step ?? 0);
        await store.LogBatchAsync(runId, new LogBatch(Metrics: [metric]), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task LogParameterAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RunRequest);
        var runId = RunId(request.RunId, request.RunUuid);
        var param = new Param(Required(request.Key, "key"), request.Value ?? string.Empty);
        await store.LogBatchAsync(runId, new LogBatch(Params: [param]), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task SetTagAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RunRequest);
        var runId = RunId(request.RunId, request.RunUuid);
        var tag = new Tag(Required(request.Key, "key"), request.Value ?? string.Empty);
        await store.LogBatchAsync(runId, new LogBatch(Tags: [tag]), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task DeleteTagAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RunRequest);
        await store.DeleteTagAsync(RunId(request.RunId, request.RunUuid), Required(request.Key, "key"), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task LogBatchAsync(HttpContext context)
    {
        var request = await LogBatchReader.ReadAsync(context.Request.BodyReader, context.RequestAborted);
        var runId = Required(request.RunId, "run_id");
        // The reader already stopped at the per-list limits; the total is MLflow's fourth limit.
        var metricCount = request.Metrics?.Length ?? 0;
        var paramCount = request.Params?.Length ?? 0;
        var tagCount = request.Tags?.Length ?? 0;
        if (metricCount + paramCount + tagCount > LogBatch.MaxItems)
        {
            throw CapstanException.Invalid(
                $"A batch logging request can contain at most {LogBatch.MaxItems} metrics, params and tags in total, but got {metricCount + paramCount + tagCount}.");
        }

        await store.LogBatchAsync(runId, new LogBatch(request.Metrics, request.Params, request.Tags), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task LogInputsAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RunRequest);
        var runId = RunId(request.RunId, request.RunUuid);
        var inputs = new List<DatasetInput>(request.Datasets?.Count ?? 0);
        for (var i = 0; i < (request.Datasets?.Count ?? 0); i++)
        {
            inputs.Add(MlflowMapping.ToDatasetInput(request.Datasets![i], i));
        }

        await store.LogInputsAsync(runId, inputs, context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task GetMetricHistoryAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RunRequest);
        var page = await store.GetMetricHistoryAsync(
            RunId(request.RunId, request.RunUuid),
            Required(request.MetricKey, "metric_key"),
            MaxResults(request.MaxResults, 100_000),
            string.IsNullOrEmpty(request.PageToken) ? null : request.PageToken,
            context.RequestAborted);
        await MlflowResponseWriter.WriteMetricHistoryAsync(context, page);
    }

    public async Task ListArtifactsAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RunRequest);
        var run = await store.GetRunAsync(RunId(request.RunId, request.RunUuid), context.RequestAborted);
        var root = ArtifactUri.ToStorePath(run.Info.ArtifactUri);
        var relative = ArtifactPaths.Normalize(request.Path, "path");
        var entries = await artifacts.ListAsync(ArtifactPaths.Join(root, relative), context.RequestAborted);
        List<FileInfoWire>? files = null;
        if (entries.Count > 0)
        {
            files = new List<FileInfoWire>(entries.Count);
            foreach (var entry in entries)
            {
                files.Add(new FileInfoWire { Path = ArtifactPaths.RelativeTo(root, entry.Path), IsDir = entry.IsDir, FileSize = entry.IsDir ? null : entry.FileSize });
            }
        }

        await WriteAsync(context, new ListArtifactsResponse { RootUri = run.Info.ArtifactUri, Files = files }, MlflowJsonContext.Default.ListArtifactsResponse);
    }

    // Registered models

    public async Task CreateRegisteredModelAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var model = await store.CreateRegisteredModelAsync(
            new NewRegisteredModel(Required(request.Name, "name"), request.Description, MlflowMapping.ToTags(request.Tags, "tags")),
            context.RequestAborted);
        await WriteModelAsync(context, model);
    }

    public async Task GetRegisteredModelAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var model = await store.GetRegisteredModelAsync(Required(request.Name, "name"), context.RequestAborted);
        await WriteModelAsync(context, model);
    }

    public async Task SearchRegisteredModelsAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var page = await store.SearchRegisteredModelsAsync(ToSearch(request, 100), context.RequestAborted);
        var models = page.Items.Count == 0 ? null : page.Items.Select(MlflowMapping.ToWire).ToList();
        await WriteAsync(context, new SearchRegisteredModelsResponse { RegisteredModels = models, NextPageToken = page.NextPageToken }, MlflowJsonContext.Default.SearchRegisteredModelsResponse);
    }

    public async Task UpdateRegisteredModelAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var model = await store.UpdateRegisteredModelAsync(Required(request.Name, "name"), request.Description, context.RequestAborted);
        await WriteModelAsync(context, model);
    }

    public async Task RenameRegisteredModelAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var model = await store.RenameRegisteredModelAsync(Required(request.Name, "name"), Required(request.NewName, "new_name"), context.RequestAborted);
        await WriteModelAsync(context, model);
    }

    public async Task DeleteRegisteredModelAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        await store.DeleteRegisteredModelAsync(Required(request.Name, "name"), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task GetLatestVersionsAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var versions = await store.GetLatestVersionsAsync(Required(request.Name, "name"), request.Stages, context.RequestAborted);
        await WriteAsync(context, new ModelVersionsResponse { ModelVersions = MlflowMapping.ToWire(versions) }, MlflowJsonContext.Default.ModelVersionsResponse);
    }

    public async Task SetRegisteredModelTagAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        await store.SetRegisteredModelTagAsync(Required(request.Name, "name"), Required(request.Key, "key"), request.Value ?? string.Empty, context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task DeleteRegisteredModelTagAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        await store.DeleteRegisteredModelTagAsync(Required(request.Name, "name"), Required(request.Key, "key"), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task SetAliasAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        await store.SetAliasAsync(Required(request.Name, "name"), Required(request.Alias, "alias"), Required(request.Version, "version"), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task DeleteAliasAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        await store.DeleteAliasAsync(Required(request.Name, "name"), Required(request.Alias, "alias"), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task GetModelVersionByAliasAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var version = await store.GetModelVersionByAliasAsync(Required(request.Name, "name"), Required(request.Alias, "alias"), context.RequestAborted);
        await WriteVersionAsync(context, version);
    }

    // Model versions

    public async Task CreateModelVersionAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var version = await store.CreateModelVersionAsync(
            new NewModelVersion(
                Required(request.Name, "name"),
                Required(request.Source, "source"),
                string.IsNullOrEmpty(request.RunId) ? null : request.RunId,
                string.IsNullOrEmpty(request.RunLink) ? null : request.RunLink,
                request.Description,
                MlflowMapping.ToTags(request.Tags, "tags")),
            context.RequestAborted);
        await WriteVersionAsync(context, version);
    }

    public async Task GetModelVersionAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var version = await store.GetModelVersionAsync(Required(request.Name, "name"), Required(request.Version, "version"), context.RequestAborted);
        await WriteVersionAsync(context, version);
    }

    public async Task SearchModelVersionsAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var page = await store.SearchModelVersionsAsync(ToSearch(request, 10_000), context.RequestAborted);
        await WriteAsync(context, new ModelVersionsResponse { ModelVersions = MlflowMapping.ToWire(page.Items), NextPageToken = page.NextPageToken }, MlflowJsonContext.Default.ModelVersionsResponse);
    }

    public async Task UpdateModelVersionAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var version = await store.UpdateModelVersionAsync(Required(request.Name, "name"), Required(request.Version, "version"), request.Description, context.RequestAborted);
        await WriteVersionAsync(context, version);
    }

    public async Task DeleteModelVersionAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        await store.DeleteModelVersionAsync(Required(request.Name, "name"), Required(request.Version, "version"), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task SetModelVersionTagAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        await store.SetModelVersionTagAsync(
            Required(request.Name, "name"), Required(request.Version, "version"), Required(request.Key, "key"), request.Value ?? string.Empty, context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task DeleteModelVersionTagAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        await store.DeleteModelVersionTagAsync(Required(request.Name, "name"), Required(request.Version, "version"), Required(request.Key, "key"), context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    public async Task GetDownloadUriAsync(HttpContext context)
    {
        var request = await ReadAsync(context, MlflowJsonContext.Default.RegistryRequest);
        var version = await store.GetModelVersionAsync(Required(request.Name, "name"), Required(request.Version, "version"), context.RequestAborted);
        var uri = await ResolveSourceAsync(version.Source, context.RequestAborted);
        await WriteAsync(context, new DownloadUriResponse { ArtifactUri = uri }, MlflowJsonContext.Default.DownloadUriResponse);
    }

    /// <summary>
    /// Like MLflow, a <c>runs:/RUN_ID/path</c> source resolves to where the run's artifacts actually are,
    /// so a client can download without knowing the run. Other sources are returned as registered.
    /// </summary>
    private async Task<string> ResolveSourceAsync(string source, CancellationToken cancellationToken)
    {
        const string RunsScheme = "runs:/";
        if (!source.StartsWith(RunsScheme, StringComparison.Ordinal))
        {
            return source;
        }

        var rest = source[RunsScheme.Length..].TrimStart('/');
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var runId = slash < 0 ? rest : rest[..slash];
        var path = slash < 0 ? string.Empty : rest[(slash + 1)..].Trim('/');
        if (runId.Length == 0)
        {
            return source;
        }

        try
        {
            var run = await store.GetRunAsync(runId, cancellationToken);
            return path.Length == 0 ? run.Info.ArtifactUri : $"{run.Info.ArtifactUri.TrimEnd('/')}/{path}";
        }
        catch (CapstanException exception) when (exception.Code == ErrorCode.ResourceDoesNotExist)
        {
            return source;
        }
    }

    private static RegistrySearch ToSearch(RegistryRequest request, int defaultMaxResults) => new(
        string.IsNullOrEmpty(request.Filter) ? null : request.Filter,
        MaxResults(request.MaxResults, defaultMaxResults),
        request.OrderBy,
        string.IsNullOrEmpty(request.PageToken) ? null : request.PageToken);

    private static Task WriteModelAsync(HttpContext context, RegisteredModel model) =>
        WriteAsync(context, new RegisteredModelResponse { RegisteredModel = MlflowMapping.ToWire(model) }, MlflowJsonContext.Default.RegisteredModelResponse);

    private static Task WriteVersionAsync(HttpContext context, ModelVersion version) =>
        WriteAsync(context, new ModelVersionResponse { ModelVersion = MlflowMapping.ToWire(version) }, MlflowJsonContext.Default.ModelVersionResponse);
}
