using Capstan.Core;
using Capstan.Core.Registry;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using static Capstan.Server.Api.NativeRequests;

namespace Capstan.Server.Api;

/// <summary>Capstan's native model-registry API (<c>/api/v1/models</c>, <c>/api/v1/model-versions</c>).</summary>
public static class RegistryApi
{
    public static IEndpointRouteBuilder MapRegistryApi(this IEndpointRouteBuilder app)
    {
        var models = app.MapGroup("/api/v1/models").WithTags("Registered models").WithNativeErrors();
        models.MapPost("/", CreateModelAsync).WithName("CreateRegisteredModel");
        models.MapGet("/", SearchModelsAsync).WithName("SearchRegisteredModels");
        models.MapGet("/{name}", GetModelAsync).WithName("GetRegisteredModel");
        models.MapPatch("/{name}", UpdateModelAsync).WithName("UpdateRegisteredModel");
        models.MapPost("/{name}/rename", RenameModelAsync).WithName("RenameRegisteredModel");
        models.MapDelete("/{name}", DeleteModelAsync).WithName("DeleteRegisteredModel");
        models.MapPut("/{name}/tags/{key}", SetModelTagAsync).WithName("SetRegisteredModelTag");
        models.MapDelete("/{name}/tags/{key}", DeleteModelTagAsync).WithName("DeleteRegisteredModelTag");

        var versions = models.MapGroup("/{name}/versions").WithTags("Model versions");
        versions.MapPost("/", CreateVersionAsync).WithName("CreateModelVersion");
        versions.MapGet("/latest", GetLatestVersionsAsync).WithName("GetLatestModelVersions");
        versions.MapGet("/{version:long}", GetVersionAsync).WithName("GetModelVersion");
        versions.MapPatch("/{version:long}", UpdateVersionAsync).WithName("UpdateModelVersion");
        versions.MapDelete("/{version:long}", DeleteVersionAsync).WithName("DeleteModelVersion");
        versions.MapPut("/{version:long}/tags/{key}", SetVersionTagAsync).WithName("SetModelVersionTag");
        versions.MapDelete("/{version:long}/tags/{key}", DeleteVersionTagAsync).WithName("DeleteModelVersionTag");

        var aliases = models.MapGroup("/{name}/aliases").WithTags("Aliases");
        aliases.MapPut("/{alias}", SetAliasAsync).WithName("SetModelAlias");
        aliases.MapGet("/{alias}", GetByAliasAsync).WithName("GetModelVersionByAlias");
        aliases.MapDelete("/{alias}", DeleteAliasAsync).WithName("DeleteModelAlias");

        // An unknown native route answers in the API's own error format, not with an empty 404.
        app.Map("/api/v1/{**rest}", (HttpContext context) => Task.FromException(CapstanException.NotFound(
                $"No endpoint {context.Request.Method} {context.Request.Path}; see /openapi/v1.json.")))
            .ExcludeFromDescription();

        app.MapGet("/api/v1/model-versions", SearchVersionsAsync).WithName("SearchModelVersions").WithTags("Model versions")
            .ProducesProblem(StatusCodes.Status400BadRequest);
        return app;
    }

    // Registered models

    private static async Task<Created<RegisteredModel>> CreateModelAsync(NewRegisteredModel body, IMetadataStore store, CancellationToken cancellationToken)
    {
        Required(Body(body).Name, "name");
        var model = await store.CreateRegisteredModelAsync(body, cancellationToken);
        return TypedResults.Created($"/api/v1/models/{Uri.EscapeDataString(model.Name)}", model);
    }

    private static async Task<Ok<Page<RegisteredModel>>> SearchModelsAsync(
        IMetadataStore store,
        CancellationToken cancellationToken,
        [FromQuery] string? filter = null,
        [FromQuery] int? maxResults = null,
        [FromQuery] string[]? orderBy = null,
        [FromQuery] string? pageToken = null) =>
        TypedResults.Ok(await store.SearchRegisteredModelsAsync(new RegistrySearch(filter, maxResults ?? 100, orderBy, pageToken), cancellationToken));

    private static async Task<Ok<RegisteredModel>> GetModelAsync(string name, IMetadataStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.GetRegisteredModelAsync(name, cancellationToken));

    private static async Task<Ok<RegisteredModel>> UpdateModelAsync(string name, DescriptionUpdate body, IMetadataStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.UpdateRegisteredModelAsync(name, Body(body).Description, cancellationToken));

    private static async Task<Ok<RegisteredModel>> RenameModelAsync(string name, ModelRename body, IMetadataStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.RenameRegisteredModelAsync(name, Required(Body(body).NewName, "newName"), cancellationToken));

    private static async Task<NoContent> DeleteModelAsync(string name, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.DeleteRegisteredModelAsync(name, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> SetModelTagAsync(string name, string key, TagValue body, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.SetRegisteredModelTagAsync(name, key, Body(body).Value ?? string.Empty, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> DeleteModelTagAsync(string name, string key, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.DeleteRegisteredModelTagAsync(name, key, cancellationToken);
        return TypedResults.NoContent();
    }

    // Model versions

    private static async Task<Created<ModelVersion>> CreateVersionAsync(string name, NewModelVersion body, IMetadataStore store, CancellationToken cancellationToken)
    {
        Required(Body(body).Source, "source");
        var version = await store.CreateModelVersionAsync(body with { Name = name }, cancellationToken);
        return TypedResults.Created($"/api/v1/models/{Uri.EscapeDataString(name)}/versions/{version.Version}", version);
    }

    private static async Task<Ok<IReadOnlyList<ModelVersion>>> GetLatestVersionsAsync(
        string name,
        IMetadataStore store,
        CancellationToken cancellationToken,
        [FromQuery] string[]? stages = null) =>
        TypedResults.Ok(await store.GetLatestVersionsAsync(name, stages, cancellationToken));

    private static async Task<Ok<ModelVersion>> GetVersionAsync(string name, long version, IMetadataStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.GetModelVersionAsync(name, version, cancellationToken));

    private static async Task<Ok<ModelVersion>> UpdateVersionAsync(string name, long version, DescriptionUpdate body, IMetadataStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.UpdateModelVersionAsync(name, version, Body(body).Description, cancellationToken));

    private static async Task<NoContent> DeleteVersionAsync(string name, long version, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.DeleteModelVersionAsync(name, version, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> SetVersionTagAsync(string name, long version, string key, TagValue body, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.SetModelVersionTagAsync(name, version, key, Body(body).Value ?? string.Empty, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> DeleteVersionTagAsync(string name, long version, string key, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.DeleteModelVersionTagAsync(name, version, key, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<Page<ModelVersion>>> SearchVersionsAsync(
        IMetadataStore store,
        CancellationToken cancellationToken,
        [FromQuery] string? filter = null,
        [FromQuery] int? maxResults = null,
        [FromQuery] string[]? orderBy = null,
        [FromQuery] string? pageToken = null) =>
        TypedResults.Ok(await store.SearchModelVersionsAsync(new RegistrySearch(filter, maxResults ?? 100, orderBy, pageToken), cancellationToken));

    // Aliases

    private static async Task<NoContent> SetAliasAsync(string name, string alias, AliasTarget body, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.SetAliasAsync(name, alias, Body(body).Version, cancellationToken);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<ModelVersion>> GetByAliasAsync(string name, string alias, IMetadataStore store, CancellationToken cancellationToken) =>
        TypedResults.Ok(await store.GetModelVersionByAliasAsync(name, alias, cancellationToken));

    private static async Task<NoContent> DeleteAliasAsync(string name, string alias, IMetadataStore store, CancellationToken cancellationToken)
    {
        await store.DeleteAliasAsync(name, alias, cancellationToken);
        return TypedResults.NoContent();
    }
}
