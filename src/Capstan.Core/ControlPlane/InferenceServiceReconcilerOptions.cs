using System.Net;
using System.Net.Sockets;

namespace Capstan.Core.ControlPlane;

/// <summary>Settings of <see cref="InferenceServiceReconciler"/>.</summary>
public sealed class InferenceServiceReconcilerOptions
{
    /// <summary>
    /// The program and leading arguments that start an inference server, <c>serve</c> and its options following
    /// (locally: this very program, e.g. <c>dotnet capstan.dll</c>). Empty: InferenceServices fail with reason NoServer.
    /// </summary>
    public IReadOnlyList<string> ServerCommand { get; set; } = [];

    /// <summary>Variables a server process gets so it reaches the registry (<c>CAPSTAN_URL</c>, <c>CAPSTAN_HOME</c>), read on every start.</summary>
    public Func<IReadOnlyDictionary<string, string>> ServerEnvironment { get; set; } = () => new Dictionary<string, string>();

    /// <summary>
    /// The key the servers' repository tokens are derived from (HMAC of the workload id), so a restarted control plane can
    /// still reload the servers it adopts without a token ever being stored. Keep it secret; 32 random bytes.
    /// </summary>
    public byte[] TokenKey { get; set; } = [];

    /// <summary>A free TCP port on loopback for a server to listen on.</summary>
    public Func<int> AllocatePort { get; set; } = FreeLoopbackPort;

    /// <summary>How often a ready service is checked again: its aliases (a moved alias rolls it out) and its health.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often a starting server's readiness is probed.</summary>
    public TimeSpan StartupProbeInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Waits before restarting a server that exited: base, doubled per restart, capped.</summary>
    public TimeSpan RestartBackoffBase { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan RestartBackoffCap { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan RestartBackoff(int restarts)
    {
        var ticks = RestartBackoffBase.Ticks * Math.Pow(2, Math.Clamp(restarts, 0, 30));
        return ticks >= RestartBackoffCap.Ticks ? RestartBackoffCap : TimeSpan.FromTicks((long)ticks);
    }

    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
