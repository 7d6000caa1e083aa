using Microsoft.AspNetCore.Http;

namespace Capstan.Server.Hosting;

/// <summary>
/// ASP.NET Core decodes a request path except for <c>%2F</c>, so a route value such as a model
/// named <c>team/iris</c>, sent as <c>team%2Firis</c>, would arrive still encoded. Clients escape
/// each segment, so here, after routing, the remaining <c>%2F</c> in route values becomes '/'.
/// </summary>
public sealed class EncodedSlashMiddleware(RequestDelegate next)
{
    public Task InvokeAsync(HttpContext context)
    {
        var values = context.Request.RouteValues;
        foreach (var (key, value) in values.ToArray())
        {
            if (value is string text && text.Contains("%2F", StringComparison.OrdinalIgnoreCase))
            {
                values[key] = text.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
            }
        }

        return next(context);
    }
}
