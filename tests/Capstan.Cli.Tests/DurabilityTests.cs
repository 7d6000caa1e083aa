using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Client;

namespace Capstan.Cli.Tests;

/// <summary>What a server acknowledged must survive the server being killed with SIGKILL.</summary>
public sealed class DurabilityTests
{
    [Fact]
    public async Task LogBatch_ServerKilledMidStream_AcknowledgedMetricsSurviveRestart()
    {
        var ct = TestContext.Current.CancellationToken;
        using var home = new TempHome();
        var port = FreePort();
        var baseUrl = new Uri($"http://127.0.0.1:{port}/");
        using var http = new HttpClient { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(10) };
        var acknowledged = new List<long>();
        string runId;

        using (var server = ServerProcess.Start(port, home.Root))
        {
            await server.WaitHealthyAsync(http, ct);
            var experiment = await PostAsync(http, "api/2.0/mlflow/experiments/create", new JsonObject { ["name"] = "durability" }, ct);
            var run = await PostAsync(http, "api/2.0/mlflow/runs/create", new JsonObject { ["experiment_id"] = experiment["experiment_id"]!.GetValue<string>() }, ct);
            runId = run["run"]!["info"]!["run_id"]!.GetValue<string>();

            // Batches of 100 points, each acknowledged before the next; the kill lands while one is in flight.
            const int batchSize = 100;
            Task<HttpResponseMessage>? inFlight = null;
            for (var batch = 0; batch < 30; batch++)
            {
                var metrics = new JsonArray();
                for (var i = 0; i < batchSize; i++)
                {
                    var step = (batch * batchSize) + i;
                    metrics.Add(new JsonObject { ["key"] = "loss", ["value"] = 1.0 / (step + 1), ["timestamp"] = 1_700_000_000_000 + step, ["step"] = step });
                }

                var send = http.PostAsJsonAsync("api/2.0/mlflow/runs/log-batch", new JsonObject { ["run_id"] = runId, ["metrics"] = metrics }, ct);
                if (batch == 29)
                {
                    inFlight = send;
                    break;
                }

                using var response = await send;
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                acknowledged.AddRange(Enumerable.Range(batch * batchSize, batchSize).Select(s => (long)s));
            }

            server.Kill();
            try
            {
                using var last = await inFlight!;
                if (last.StatusCode == HttpStatusCode.OK)
                {
                    acknowledged.AddRange(Enumerable.Range(29 * batchSize, batchSize).Select(s => (long)s));
                }
            }
            catch (HttpRequestException)
            {
                // Killed before it answered: not acknowledged, so nothing is promised about it.
            }
        }

        using (var restarted = ServerProcess.Start(port, home.Root))
        {
            await restarted.WaitHealthyAsync(http, ct);
            using var client = new CapstanClient(baseUrl);
            var history = await client.GetMetricHistoryAsync(runId, "loss", cancellationToken: ct);
            var stored = history.Items.Select(m => m.Step).ToHashSet();
            Assert.True(acknowledged.Count >= 2900, $"only {acknowledged.Count} acknowledged");
            Assert.All(acknowledged, step => Assert.Contains(step, stored));
        }
    }

    private static async Task<JsonNode> PostAsync(HttpClient http, string path, JsonObject body, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync(path, body, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary><c>dotnet capstan.dll server</c> as a child process; always killed on dispose.</summary>
    private sealed class ServerProcess : IDisposable
    {
        private readonly Process _process;
        private readonly System.Text.StringBuilder _output = new();

        private ServerProcess(Process process) => _process = process;

        public static ServerProcess Start(int port, string home)
        {
            var capstan = Path.Combine(AppContext.BaseDirectory, "capstan.dll");
            var info = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[] { capstan, "server", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--home", home })
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
}
