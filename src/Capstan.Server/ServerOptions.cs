namespace Capstan.Server;

/// <summary>Where <c>capstan server</c> listens and keeps its state.</summary>
public sealed class ServerOptions
{
    /// <summary>An IP address, <c>localhost</c>, or <c>*</c> for every interface. Loopback unless told otherwise.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>The TCP port; 0 picks a free one (read it back from the server's addresses).</summary>
    public int Port { get; set; } = 5000;

    /// <summary>The state folder; null means <c>$CAPSTAN_HOME</c> or <c>~/.capstan</c>.</summary>
    public string? Home { get; set; }

    /// <summary>Run the control plane (reconcilers and the local runtime) with the API; false serves the API alone,
    /// for a caller that drives status itself (tests of the resource API).</summary>
    public bool RunControlPlane { get; set; } = true;

    /// <summary>The least severe log level written by default (configuration such as <c>Logging__LogLevel__Default</c> still wins);
    /// <c>capstan run</c> uses Warning so its output is the job's.</summary>
    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; set; } = Microsoft.Extensions.Logging.LogLevel.Information;

    /// <summary>OTLP trace export of API requests and reconcile passes; null (the default) records none.</summary>
    public Capstan.Core.Observability.TracingSettings? Tracing { get; set; }
}
