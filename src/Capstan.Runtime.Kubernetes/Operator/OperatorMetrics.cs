using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Capstan.Shared;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>
/// The operator's Prometheus metrics: the reconcile figures <c>capstan server</c> exports too (<see cref="ReconcileMetrics"/>),
/// whether this replica leads, and the process's own figures.
/// </summary>
public sealed class OperatorMetrics
{
    private readonly ReconcileMetrics _reconciles;
    private readonly Gauge _leader;

    public OperatorMetrics()
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        _reconciles = new ReconcileMetrics(Registry);
        _leader = Prometheus.Metrics.WithCustomRegistry(Registry)
            .CreateGauge("capstan_operator_leader", "1 while this replica holds the leader Lease and runs the controllers.");
    }

    public CollectorRegistry Registry { get; }

    internal void SetLeading(bool leading) => _leader.Set(leading ? 1 : 0);

    /// <summary>Counts one controller's passes; <paramref name="depth"/> is read at each scrape (a new leader term replaces it).</summary>
    internal ReconcileCounters ForKind(string kind, Func<int> depth) => _reconciles.ForKind(kind, depth);

    /// <summary>
    /// <c>/metrics</c>, <c>/healthz</c> (the process answers) and <c>/readyz</c> (the operator has started: a standby
    /// waiting for the Lease is ready too) on <paramref name="endpoint"/>, as controller-runtime's managers serve them.
    /// </summary>
    public WebApplication BuildEndpoint(IPEndPoint endpoint, Func<bool> started)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(started);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(endpoint, listen => listen.Protocols = HttpProtocols.Http1);
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/readyz", () => started() ? Results.Text("ok") : Results.Text("starting", statusCode: StatusCodes.Status503ServiceUnavailable));
        app.MapMetrics("/metrics", Registry);
        return app;
    }
}
