using Capstan.Core.Artifacts;
using Capstan.Server.Artifacts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using static Capstan.Server.Mlflow.MlflowRequests;

namespace Capstan.Server.Mlflow;

/// <summary>
/// MLflow's artifact proxy (<c>/api/2.0/mlflow-artifacts/artifacts</c>): clients resolve
/// <c>mlflow-artifacts:/</c> URIs through it, so they never need access to the artifact store itself.
/// Paths are relative to the artifact store's root. Bodies stream in both directions.
/// </summary>
public static class MlflowArtifactsApi
{
    public static IEndpointRouteBuilder MapMlflowArtifactsApi(this IEndpointRouteBuilder app)
    {
        var artifacts = app.ServiceProvider.GetRequiredService<IArtifactStore>();
        foreach (var prefix in new[] { "/api/2.0/mlflow-artifacts/artifacts", "/ajax-api/2.0/mlflow-artifacts/artifacts" })
        {
            var group = app.MapGroup(prefix).ExcludeFromDescription();
            group.MapGet("/", context => ListAsync(context, artifacts));
            group.MapGet("/{**path}", context => DownloadAsync(context, artifacts));
            group.MapPut("/{**path}", context => UploadAsync(context, artifacts)).WithMetadata(new DisableRequestSizeLimitAttribute());
            group.MapDelete("/{**path}", context => DeleteAsync(context, artifacts));
        }

        return app;
    }

    private static string RoutePath(HttpContext context) =>
        ArtifactPaths.Normalize(context.Request.RouteValues["path"] as string, "path");

    private static async Task ListAsync(HttpContext context, IArtifactStore artifacts)
    {
        var path = ArtifactPaths.Normalize(context.Request.Query["path"].ToString(), "path");
        var entries = await artifacts.ListAsync(path.Length == 0 ? null : path, context.RequestAborted);
        List<FileInfoWire>? files = null;
        if (entries.Count > 0)
        {
            // MLflow lists children by their names; the client joins them onto the path it asked for.
            files = new List<FileInfoWire>(entries.Count);
            foreach (var entry in entries)
            {
                files.Add(new FileInfoWire { Path = ArtifactPaths.FileName(entry.Path), IsDir = entry.IsDir, FileSize = entry.IsDir ? null : entry.FileSize });
            }
        }

        await WriteAsync(context, new ListArtifactsResponse { Files = files }, MlflowJsonContext.Default.ListArtifactsResponse);
    }

    private static async Task DownloadAsync(HttpContext context, IArtifactStore artifacts)
    {
        var path = RoutePath(context);
        var content = await artifacts.OpenReadAsync(path, context.RequestAborted);
        await using (content.ConfigureAwait(false))
        {
            context.Response.ContentType = ArtifactPaths.ContentType(path);
            if (content.CanSeek)
            {
                context.Response.ContentLength = content.Length;
            }

            await content.CopyToAsync(context.Response.Body, context.RequestAborted);
        }
    }

    private static async Task UploadAsync(HttpContext context, IArtifactStore artifacts)
    {
        var path = RoutePath(context);
        if (path.Length == 0)
        {
            throw Core.CapstanException.Invalid("Missing value for required parameter 'path'.");
        }

        await artifacts.PutAsync(path, context.Request.Body, context.RequestAborted);
        await WriteEmptyAsync(context);
    }

    private static async Task DeleteAsync(HttpContext context, IArtifactStore artifacts)
    {
        var path = RoutePath(context);
        if (path.Length == 0)
        {
            throw Core.CapstanException.Invalid("Missing value for required parameter 'path'.");
        }

        await artifacts.DeleteAsync(path, context.RequestAborted);
        await WriteEmptyAsync(context);
    }
}
