using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Capstan.Testing;

/// <summary>
/// A real Prometheus (Debian's <c>prometheus</c> package) on a free loopback port scraping one target every second,
/// queried through its HTTP API. Under CI=true a missing binary fails the test instead of skipping it.
/// </summary>
public sealed class PrometheusProcess : IDisposable
{
    private readonly Process _process;
    private readonly string _folder;
    private readonly StringBuilder _log = new();
    private readonly HttpClient _api;

    private PrometheusProcess(Process process, string folder, int port)
    {
        _process = process;
        _folder = folder;
        _api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>Starts Prometheus scraping <paramref name="target"/> (host:port) at /metrics under <paramref name="job"/>.</summary>
    public static async Task<PrometheusProcess> StartAsync(string job, string target, CancellationToken cancellationToken)
    {
        var binary = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin").Select(folder => Path.Combine(folder, "prometheus")).FirstOrDefault(File.Exists);
        if (binary is null)
        {
            const string Missing = "the prometheus binary is not installed (apt-get install prometheus)";
            Assert.SkipWhen(!string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase), Missing);
            Assert.Fail("CI=true: " + Missing);
        }

        var folder = Directory.CreateTempSubdirectory("capstan-prometheus-").FullName;
        var port = FreePort();
        var config = Path.Combine(folder, "prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: {job}
                metrics_path: /metrics
                static_configs:
                  - targets: ["{target}"]
            """, cancellationToken);
        var info = new ProcessStartInfo(binary!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(folder, "data")}", $"--web.listen-address=127.0.0.1:{port}" })
        {
            info.ArgumentList.Add(argument);
        }

        return new PrometheusProcess(Process.Start(info)!, folder, port);
    }

    /// <summary>Runs an instant query through <c>/api/v1/query</c> until its result satisfies <paramref name="done"/>; fails the test after 60 s.</summary>
    public async Task<JsonElement> QueryUntilAsync(string query, Func<JsonElement, bool> done, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var last = "";
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            Assert.False(_process.HasExited, $"prometheus exited with {(_process.HasExited ? _process.ExitCode : 0)}: {Log()}");
            try
            {
                last = await _api.GetStringAsync("/api/v1/query?query=" + Uri.EscapeDataString(query), cancellationToken);
                var root = JsonDocument.Parse(last).RootElement;
                if (root.GetProperty("status").GetString() == "success" && root.GetProperty("data").GetProperty("result") is { ValueKind: JsonValueKind.Array } result && done(result))
                {
                    return result.Clone();
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(250, cancellationToken);
        }

        Assert.Fail($"'{query}' never gave the expected series; last answer: {last}; prometheus log: {Log()}");
        return default;
    }

    public void Dispose()
    {
        _api.Dispose();
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
        _process.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    private void Append(string? line)
    {
        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    private string Log()
    {
        lock (_log)
        {
            return _log.ToString();
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
