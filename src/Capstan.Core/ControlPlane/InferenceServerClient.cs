using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Resources;

namespace Capstan.Core.ControlPlane;

/// <summary>What the control plane asks of a running inference server: readiness (<c>/v2/health/ready</c>) and a rollout
/// through the repository extension (<c>POST /v2/repository/models/{name}/load</c>).</summary>
public sealed class InferenceServerClient(HttpClient http)
{
    public async Task<bool> IsReadyAsync(Uri baseUrl, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        try
        {
            using var response = await http.GetAsync(new Uri(baseUrl, "v2/health/ready"), cancellationToken).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The probe timed out.
            return false;
        }
    }

    /// <summary>Rolls the server's model to the plan and returns what it serves now.</summary>
    /// <exception cref="CapstanException">The server refused the plan (its error message) or could not be reached.</exception>
    public async Task<IList<TrafficTarget>> LoadAsync(Uri baseUrl, string token, string modelName, JsonObject parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUrl, $"v2/repository/models/{Uri.EscapeDataString(modelName)}/load"))
        {
            Content = new StringContent(new JsonObject { ["parameters"] = parameters }.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        string body;
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new CapstanException(ErrorCode.Internal, $"The inference server at {baseUrl} cannot be reached: {e.Message}");
        }

        using (response)
        {
            var json = JsonNode.Parse(body);
            if (!response.IsSuccessStatusCode)
            {
                throw CapstanException.Invalid(json?["error"]?.GetValue<string>() ?? $"HTTP {(int)response.StatusCode}");
            }

            return [.. (json?["traffic"]?.AsArray() ?? []).Select(t => new TrafficTarget
            {
                Tag = t?["tag"]?.GetValue<string>(),
                Model = t?["model"]?.GetValue<string>(),
                Version = t?["version"]?.GetValue<string>(),
                Percent = t?["percent"]?.GetValue<int>(),
            })];
        }
    }

    /// <summary>The body's parameters for a plan.</summary>
    public static JsonObject Parameters(string model, string? canary, int canaryPercent, int maxBatchSize, int maxLatencyMs, int timeoutSeconds)
    {
        var parameters = new JsonObject
        {
            ["model"] = model,
            ["max_batch_size"] = maxBatchSize,
            ["max_latency_ms"] = maxLatencyMs,
            ["timeout_seconds"] = timeoutSeconds,
        };
        if (canary is not null)
        {
            parameters["canary_model"] = canary;
            parameters["canary_traffic_percent"] = canaryPercent;
        }

        return parameters;
    }

    internal static string Serialize(IEnumerable<TrafficTarget> traffic) =>
        JsonSerializer.Serialize(traffic.Select(t => new[] { t.Tag, t.Version, t.Percent?.ToString(System.Globalization.CultureInfo.InvariantCulture) }));
}
