using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Capstan.Cli.Tests;

/// <summary><c>dotnet capstan.dll server</c> as a child process; always killed on dispose.</summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _output = new();

    private ServerProcess(Process process) => _process = process;

    public static ServerProcess Start(int port, string home, params string[] extraArgs)
    {
        var capstan = Path.Combine(AppContext.BaseDirectory, "capstan.dll");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { capstan, "server", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--home", home }.Concat(extraArgs))
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment.Remove("CAPSTAN_URL");
        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
        var server = new ServerProcess(process);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    public async Task WaitHealthyAsync(HttpClient http, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (_process.HasExited)
            {
                Assert.Fail($"server exited with {_process.ExitCode}: {Output}");
            }

            try
            {
                using var response = await http.GetAsync("healthz", ct);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(100, ct);
        }

        Assert.Fail($"server not healthy within 60 s: {Output}");
    }

    private string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>SIGKILL to the server alone, as a crash would: the jobs it started keep running, for a restarted server to adopt.</summary>
    public void KillServerOnly()
    {
        _process.Kill(entireProcessTree: false);
        _process.WaitForExit();
    }

    /// <summary>SIGKILL on Linux: no shutdown hooks, no flushing.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Kill();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
