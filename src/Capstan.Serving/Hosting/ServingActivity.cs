using System.Diagnostics;

namespace Capstan.Serving.Hosting;

/// <summary>The server's own spans: one per inference (inside the HTTP or gRPC span) and one per model load.</summary>
public static class ServingActivity
{
    public const string SourceName = "Capstan.Serving";

    internal static readonly ActivitySource Source = new(SourceName, typeof(ServingActivity).Assembly.GetName().Version?.ToString());
}
