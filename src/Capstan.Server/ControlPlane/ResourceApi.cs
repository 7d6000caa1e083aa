using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;

namespace Capstan.Server.ControlPlane;

/// <summary>
/// The declarative API, shaped like Kubernetes': <c>/api/v1/namespaces/{ns}/{plural}[/{name}[/status|/events]]</c>,
/// <c>GET /api/v1/{plural}</c> across namespaces, <c>?watch=true</c> as newline-delimited JSON events, and
/// <c>POST /api/v1/apply</c> taking (multi-document) YAML or JSON. Bodies are validated by
/// <see cref="ResourceLoader"/>, so a bad one is a 422 naming every error's line, column and field path.
/// </summary>
public static class ResourceApi
{
    /// <summary>What a request body is called in validation errors unless <c>?source=</c> names its file.</summary>
    public const string DefaultSource = "request body";

    public static IEndpointRouteBuilder MapResourceApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/api/v1/apply", ApplyAsync).WithName("ApplyResources").WithTags("Resources");

        var namespaced = app.MapGroup("/api/v1/namespaces/{namespace}/{plural}").WithTags("Resources")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        namespaced.MapGet("/", ListAsync).WithName("ListNamespacedResources");
        namespaced.MapPost("/", CreateAsync).WithName("CreateResource");
        namespaced.MapGet("/{name}", GetAsync).WithName("GetResource");
        namespaced.MapPut("/{name}", ReplaceAsync).WithName("ReplaceResource");
        namespaced.MapDelete("/{name}", DeleteAsync).WithName("DeleteResource");
        namespaced.MapPut("/{name}/status", ReplaceStatusAsync).WithName("ReplaceResourceStatus");
        namespaced.MapGet("/{name}/events", ListEventsAsync).WithName("ListResourceEvents");
        namespaced.MapPost("/{name}/events", RecordEventAsync).WithName("RecordResourceEvent");

        // Literal routes (/api/v1/experiments of the tracking API, /api/v1/models) win over this one.
        app.MapGet("/api/v1/{plural}", ListAllAsync).WithName("ListResources").WithTags("Resources");
        return app;
    }

    private static async Task<IResult> ApplyAsync(HttpRequest request, [FromServices] IResourceStore store, string? source, CancellationToken cancellationToken)
    {
        var resources = await ReadResourcesAsync(request, source, cancellationToken);
        var items = new JsonArray();
        foreach (var resource in resources)
        {
            var result = await store.ApplyAsync(resource, cancellationToken);
            items.Add(new JsonObject
            {
                ["outcome"] = result.Outcome.ToString().ToLowerInvariant(),
                ["object"] = ResourceSerializer.ToJsonNode(result.Object),
            });
        }

        return Json(new JsonObject { ["items"] = items });
    }

    private static async Task ListAsync(HttpContext context, string @namespace, string plural, bool? watch, string? resourceVersion, string? labelSelector, int? timeoutSeconds, [FromServices] IResourceStore store)
    {
        var kind = KindNames.Require(plural);
        if (watch == true)
        {
            await WatchAsync(context, store, kind, @namespace, resourceVersion, timeoutSeconds);
            return;
        }

        var items = await store.ListAsync(kind, @namespace, ParseSelector(labelSelector), context.RequestAborted);
        await WriteListAsync(context, kind, items);
    }

    private static async Task ListAllAsync(HttpContext context, string plural, bool? watch, string? resourceVersion, string? labelSelector, int? timeoutSeconds, [FromServices] IResourceStore store)
    {
        var kind = KindNames.Resolve(plural) ?? throw CapstanException.NotFound(
            $"No endpoint {context.Request.Method} {context.Request.Path}; see /openapi/v1.json.");
        if (watch == true)
        {
            await WatchAsync(context, store, kind, null, resourceVersion, timeoutSeconds);
            return;
        }

        var items = await store.ListAsync(kind, null, ParseSelector(labelSelector), context.RequestAborted);
        await WriteListAsync(context, kind, items);
    }

    private static async Task<IResult> CreateAsync(HttpRequest request, string @namespace, string plural, [FromServices] IResourceStore store, CancellationToken cancellationToken)
    {
        var kind = KindNames.Require(plural);
        var resource = await ReadOneAsync(request, kind, @namespace, null, cancellationToken);
        var created = await store.CreateAsync(resource, cancellationToken);
        var location = $"/api/v1/namespaces/{@namespace}/{KindNames.Plural(kind)}/{created.Metadata.Name}";
        return Json(ResourceSerializer.ToJsonNode(created), StatusCodes.Status201Created, location);
    }

    private static async Task<IResult> GetAsync(string @namespace, string plural, string name, [FromServices] IResourceStore store, CancellationToken cancellationToken) =>
        Json(ResourceSerializer.ToJsonNode(await store.GetAsync(KindNames.Require(plural), @namespace, name, cancellationToken)));

    private static async Task<IResult> ReplaceAsync(HttpRequest request, string @namespace, string plural, string name, [FromServices] IResourceStore store, CancellationToken cancellationToken)
    {
        var kind = KindNames.Require(plural);
        var resource = await ReadOneAsync(request, kind, @namespace, name, cancellationToken);
        return Json(ResourceSerializer.ToJsonNode(await store.UpdateAsync(resource, cancellationToken)));
    }

    private static async Task<IResult> ReplaceStatusAsync(HttpRequest request, string @namespace, string plural, string name, [FromServices] IResourceStore store, CancellationToken cancellationToken)
    {
        var kind = KindNames.Require(plural);
        var resource = await ReadOneAsync(request, kind, @namespace, name, cancellationToken);
        return Json(ResourceSerializer.ToJsonNode(await store.UpdateStatusAsync(resource, cancellationToken)));
    }

    private static async Task<IResult> DeleteAsync(string @namespace, string plural, string name, [FromServices] IResourceStore store, CancellationToken cancellationToken) =>
        Json(ResourceSerializer.ToJsonNode(await store.DeleteAsync(KindNames.Require(plural), @namespace, name, cancellationToken)));

    private static async Task<IResult> ListEventsAsync(string @namespace, string plural, string name, [FromServices] IResourceStore store, CancellationToken cancellationToken)
    {
        var kind = KindNames.Require(plural);
        await store.GetAsync(kind, @namespace, name, cancellationToken);
        var events = await store.ListEventsAsync(kind, @namespace, name, cancellationToken);
        return TypedResults.Json(new EventList(events), CapstanJson.Options);
    }

    private static async Task<IResult> RecordEventAsync(NewResourceEvent body, string @namespace, string plural, string name, [FromServices] IResourceStore store, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        var involved = await store.GetAsync(KindNames.Require(plural), @namespace, name, cancellationToken);
        if (string.IsNullOrWhiteSpace(body.Reason))
        {
            throw CapstanException.Invalid("Missing value for required field 'reason'.");
        }

        var recorded = await store.RecordEventAsync(involved, body.Type, body.Reason, body.Message ?? "", cancellationToken);
        return TypedResults.Json(recorded, CapstanJson.Options, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>Kubernetes' watch stream: one <c>{"type":"ADDED","object":{...}}</c> per line, flushed as it happens.</summary>
    private static async Task WatchAsync(HttpContext context, [FromServices] IResourceStore store, string kind, string? @namespace, string? resourceVersion, int? timeoutSeconds)
    {
        long? from = string.IsNullOrEmpty(resourceVersion) ? null : ResourceVersions.Parse(resourceVersion);
        var stopping = context.RequestServices.GetService(typeof(IHostApplicationLifetime)) is IHostApplicationLifetime lifetime
            ? lifetime.ApplicationStopping
            : CancellationToken.None;
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        if (timeoutSeconds is > 0)
        {
            cancel.CancelAfter(TimeSpan.FromSeconds(timeoutSeconds.Value));
        }

        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        var body = context.Response.Body;

        // Headers go out now, so a client knows the watch is established before the first change.
        await body.FlushAsync(context.RequestAborted);
        try
        {
            await foreach (var change in store.WatchAsync(kind, @namespace, from, cancel.Token).WithCancellation(cancel.Token))
            {
                var line = new JsonObject
                {
                    ["type"] = change.Type.ToString().ToUpperInvariant(),
                    ["object"] = ResourceSerializer.ToJsonNode(change.Object),
                }.ToJsonString(ResourceSerializer.JsonOptions) + "\n";
                await body.WriteAsync(Encoding.UTF8.GetBytes(line), cancel.Token);
                await body.FlushAsync(cancel.Token);
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // The client left, the timeout passed or the server is stopping: the stream just ends.
        }
    }

    private static async Task WriteListAsync(HttpContext context, string kind, IReadOnlyList<Resource> items)
    {
        var list = new JsonObject
        {
            ["apiVersion"] = Resource.V1Alpha1,
            ["kind"] = kind + "List",
            ["items"] = new JsonArray([.. items.Select(i => (JsonNode)ResourceSerializer.ToJsonNode(i))]),
        };
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(list.ToJsonString(ResourceSerializer.JsonOptions), context.RequestAborted);
    }

    /// <summary>The body's one resource, which must be the URL's kind, namespace and (when given) name.</summary>
    private static async Task<Resource> ReadOneAsync(HttpRequest request, string kind, string @namespace, string? name, CancellationToken cancellationToken)
    {
        var resources = await ReadResourcesAsync(request, null, cancellationToken);
        if (resources.Count != 1)
        {
            throw CapstanException.Invalid($"Expected one resource in the request body, found {resources.Count}.");
        }

        var resource = resources[0];
        if (resource.Kind != kind)
        {
            throw CapstanException.Invalid($"The body is a {resource.Kind} but the URL is for {KindNames.Plural(kind)}.");
        }

        // Defaults put an omitted namespace at "default"; the URL's namespace is the one meant then.
        if (resource.Metadata.Namespace != @namespace && resource.Metadata.Namespace != ResourceMetadata.DefaultNamespace)
        {
            throw CapstanException.Invalid($"metadata.namespace '{resource.Metadata.Namespace}' does not match the namespace of the URL '{@namespace}'.");
        }

        resource.Metadata.Namespace = @namespace;
        if (name is not null && resource.Metadata.Name != name)
        {
            throw CapstanException.Invalid($"metadata.name '{resource.Metadata.Name}' does not match the name in the URL '{name}'.");
        }

        return resource;
    }

    /// <summary>YAML or JSON (JSON is YAML), validated whole: any error is a <see cref="ResourceValidationException"/> (422).</summary>
    private static async Task<IReadOnlyList<Resource>> ReadResourcesAsync(HttpRequest request, string? source, CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync(cancellationToken);
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new CapstanException(ErrorCode.BadRequest, "A YAML or JSON request body is required.");
        }

        var result = ResourceLoader.Read(text, string.IsNullOrWhiteSpace(source) ? DefaultSource : source);
        return result.Errors.Count > 0 ? throw new ResourceValidationException(result.Errors) : result.Resources;
    }

    /// <summary>Kubernetes' equality selector: <c>team=vision,tier=gpu</c>.</summary>
    private static Dictionary<string, string>? ParseSelector(string? selector)
    {
        if (string.IsNullOrWhiteSpace(selector))
        {
            return null;
        }

        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var term in selector.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = term.Split(term.Contains("==", StringComparison.Ordinal) ? "==" : "=", 2, StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || parts[0].Length == 0)
            {
                throw CapstanException.Invalid($"Invalid labelSelector term '{term}': expected key=value.");
            }

            labels[parts[0]] = parts[1];
        }

        return labels;
    }

    private static IResult Json(JsonNode node, int status = StatusCodes.Status200OK, string? location = null) =>
        new ResourceJsonResult(node, status, location);

    private sealed class ResourceJsonResult(JsonNode node, int status, string? location) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = status;
            httpContext.Response.ContentType = "application/json";
            if (location is not null)
            {
                httpContext.Response.Headers.Location = location;
            }

            return httpContext.Response.WriteAsync(node.ToJsonString(ResourceSerializer.JsonOptions), httpContext.RequestAborted);
        }
    }
}

/// <summary>GET .../{name}/events.</summary>
public sealed record EventList(IReadOnlyList<ResourceEvent> Items);

/// <summary>POST .../{name}/events: what a controller outside the server records about the object.</summary>
public sealed record NewResourceEvent(ResourceEventType Type, string Reason, string? Message);
