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

    private static int FreePort() => ServerProcess.FreePort();
}
