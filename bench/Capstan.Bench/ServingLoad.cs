using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Capstan.Serving.Grpc.V2;
using Google.Protobuf;
using Grpc.Net.Client;

namespace Capstan.Bench;

/// <summary>What one load run measured on the client side.</summary>
public sealed record LoadResult(long Requests, long Errors, double Seconds, double P50Us = double.NaN, double P99Us = double.NaN)
{
    public double Rate => Requests / Seconds;
}

/// <summary>
/// Drives closed-loop load at a server on loopback: each connection sends its next request when the
/// previous answer is in. Implementations run in a separate process where the tool is installed
/// (wrk for HTTP/1.1, h2load for HTTP/2), so the generator does not share the server's runtime, GC
/// and thread pool; the in-process .NET client is the fallback and says so.
/// </summary>
public abstract class LoadGenerator
{
    public abstract string Name { get; }

    public abstract bool SeparateProcess { get; }

    /// <param name="headers">More request headers, e.g. the binary-data extension's Inference-Header-Content-Length.</param>
    public abstract Task<LoadResult> RunAsync(string path, byte[] body, string contentType, int connections, int seconds, IReadOnlyDictionary<string, string>? headers = null);

    /// <summary>wrk when installed, the in-process HttpClient otherwise.</summary>
    public static LoadGenerator ForRest(Uri server, string workDir) =>
        Find("wrk") is { } wrk ? new WrkLoad(wrk, server, workDir) : new HttpClientLoad(server);

    /// <summary>h2load (gRPC over h2c, and REST with --h1 so both sides use one tool) when installed, .NET clients otherwise.</summary>
    public static (LoadGenerator Grpc, LoadGenerator RestLoad) ForGrpcComparison(Uri rest, Uri grpc, string workDir) =>
        Find("h2load") is { } h2load
            ? (new H2LoadLoad(h2load, grpc, workDir, http1: false), new H2LoadLoad(h2load, rest, workDir, http1: true))
            : (new GrpcClientLoad(grpc), new HttpClientLoad(rest));

    public static string? Find(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, tool))
            .FirstOrDefault(File.Exists);

    protected static async Task<string> RunToolAsync(string file, IEnumerable<string> arguments, int seconds)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(seconds + 30));
        await process.WaitForExitAsync(timeout.Token);
        var output = await stdout + await stderr;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} exited {process.ExitCode}: {output}");
        }

        return output;
    }

    protected static string WriteBody(string workDir, byte[] body)
    {
        var path = Path.Combine(workDir, $"body-{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(body))[..16]}.bin");
        if (!File.Exists(path))
        {
            File.WriteAllBytes(path, body);
        }

        return path;
    }
}

/// <summary>wrk (Debian package) with a Lua script that POSTs the body and prints the summary in one parseable line.</summary>
internal sealed partial class WrkLoad(string wrk, Uri server, string workDir) : LoadGenerator
{
    public override string Name => "wrk (separate process)";

    public override bool SeparateProcess => true;

    public override async Task<LoadResult> RunAsync(string path, byte[] body, string contentType, int connections, int seconds, IReadOnlyDictionary<string, string>? headers = null)
    {
        var bodyFile = WriteBody(workDir, body);
        var extra = string.Concat((headers ?? new Dictionary<string, string>()).Select(h => $"wrk.headers[\"{h.Key}\"] = \"{h.Value}\"\n"));
        var script = Path.Combine(workDir, $"post-{Path.GetFileNameWithoutExtension(bodyFile)}-{contentType.Replace('/', '_')}-{headers?.Count ?? 0}.lua");
        await File.WriteAllTextAsync(script, $$"""
            local f = assert(io.open("{{bodyFile}}", "rb"))
            wrk.method = "POST"
            wrk.body = f:read("*a")
            f:close()
            wrk.headers["Content-Type"] = "{{contentType}}"
            {{extra}}
            done = function(summary, latency, requests)
              local e = summary.errors
              io.write(string.format("capstan-load requests=%d errors=%d us=%d p50=%d p99=%d\n",
                summary.requests, e.connect + e.read + e.write + e.status + e.timeout, summary.duration,
                latency:percentile(50), latency:percentile(99)))
            end
            """);
        var output = await RunToolAsync(wrk, ["-t1", $"-c{connections}", $"-d{seconds}s", "--timeout", "10s", "-s", script, new Uri(server, path).ToString()], seconds);
        var match = SummaryLine().Match(output);
        if (!match.Success)
        {
            throw new InvalidOperationException($"wrk printed no summary: {output}");
        }

        long Get(string name) => long.Parse(match.Groups[name].Value, CultureInfo.InvariantCulture);
        return new LoadResult(Get("requests"), Get("errors"), Get("us") / 1e6, Get("p50"), Get("p99"));
    }

    [GeneratedRegex(@"capstan-load requests=(?<requests>\d+) errors=(?<errors>\d+) us=(?<us>\d+) p50=(?<p50>\d+) p99=(?<p99>\d+)")]
    private static partial Regex SummaryLine();
}

/// <summary>
/// h2load (Debian package nghttp2-client): HTTP/2 with prior knowledge for gRPC (the body is one
/// length-prefixed message), or HTTP/1.1 with --h1. Counts succeeded requests; gRPC's own status is
/// in trailers h2load does not read, so the benchmark checks the server's success counter as well.
/// </summary>
internal sealed partial class H2LoadLoad(string h2load, Uri server, string workDir, bool http1) : LoadGenerator
{
    public override string Name => http1 ? "h2load --h1 (separate process)" : "h2load h2c (separate process)";

    public override bool SeparateProcess => true;

    public override async Task<LoadResult> RunAsync(string path, byte[] body, string contentType, int connections, int seconds, IReadOnlyDictionary<string, string>? headers = null)
    {
        var bodyFile = WriteBody(workDir, body);
        List<string> arguments = ["-t1", $"-c{connections}", "-m1", $"-D{seconds}", "-d", bodyFile, "-H", $"content-type: {contentType}"];
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            arguments.AddRange(["-H", $"{name.ToLowerInvariant()}: {value}"]);
        }

        if (http1)
        {
            arguments.Add("--h1");
        }
        else
        {
            arguments.AddRange(["-H", "te: trailers"]);
        }

        arguments.Add(new Uri(server, path).ToString());
        var output = await RunToolAsync(h2load, arguments, seconds);
        var finished = Finished().Match(output);
        var requests = Requests().Match(output);
        if (!finished.Success || !requests.Success)
        {
            throw new InvalidOperationException($"h2load printed no summary: {output}");
        }

        var elapsed = double.Parse(finished.Groups["s"].Value, CultureInfo.InvariantCulture);
        var succeeded = long.Parse(requests.Groups["ok"].Value, CultureInfo.InvariantCulture);
        var failed = long.Parse(requests.Groups["failed"].Value, CultureInfo.InvariantCulture) + long.Parse(requests.Groups["errored"].Value, CultureInfo.InvariantCulture);
        return new LoadResult(succeeded, failed, elapsed);
    }

    [GeneratedRegex(@"finished in (?<s>[0-9.]+)s")]
    private static partial Regex Finished();

    [GeneratedRegex(@"requests: \d+ total, \d+ started, \d+ done, (?<ok>\d+) succeeded, (?<failed>\d+) failed, (?<errored>\d+) errored")]
    private static partial Regex Requests();
}

/// <summary>The fallback: HttpClient in this process, sharing the server's cores, runtime and thread pool.</summary>
internal sealed class HttpClientLoad(Uri server) : LoadGenerator
{
    public override string Name => "in-process HttpClient (shares the server's CPU: install wrk/nghttp2-client for sound figures)";

    public override bool SeparateProcess => false;

    public override async Task<LoadResult> RunAsync(string path, byte[] body, string contentType, int connections, int seconds, IReadOnlyDictionary<string, string>? headers = null)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = connections }) { BaseAddress = server };
        var count = 0L;
        var errors = 0L;
        var latencies = new List<double>[connections];
        var until = Stopwatch.GetTimestamp() + (seconds * Stopwatch.Frequency);
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, connections).Select(c => Task.Run(async () =>
        {
            var mine = latencies[c] = new List<double>(100_000);
            while (Stopwatch.GetTimestamp() < until)
            {
                var sent = Stopwatch.GetTimestamp();
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
                foreach (var (name, value) in headers ?? new Dictionary<string, string>())
                {
                    content.Headers.TryAddWithoutValidation(name, value);
                }

                using var response = await http.PostAsync(path, content);
                await response.Content.CopyToAsync(Stream.Null);
                mine.Add(Stopwatch.GetElapsedTime(sent).TotalMicroseconds);
                Interlocked.Increment(ref response.IsSuccessStatusCode ? ref count : ref errors);
            }
        })));
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        return new LoadResult(count, errors, elapsed, all[all.Length / 2], all[all.Length * 99 / 100]);
    }
}

/// <summary>The gRPC fallback: Grpc.Net.Client in this process, one channel (one HTTP/2 connection) per connection asked for.</summary>
internal sealed class GrpcClientLoad(Uri server) : LoadGenerator
{
    public override string Name => "in-process Grpc.Net.Client (shares the server's CPU: install nghttp2-client for sound figures)";

    public override bool SeparateProcess => false;

    public override async Task<LoadResult> RunAsync(string path, byte[] body, string contentType, int connections, int seconds, IReadOnlyDictionary<string, string>? headers = null)
    {
        // The body is a gRPC frame: a 5-byte prefix, then the message.
        var request = ModelInferRequest.Parser.ParseFrom(body.AsSpan(5));
        var channels = Enumerable.Range(0, connections).Select(_ => GrpcChannel.ForAddress(server)).ToArray();
        try
        {
            var count = 0L;
            var errors = 0L;
            var until = Stopwatch.GetTimestamp() + (seconds * Stopwatch.Frequency);
            var started = Stopwatch.GetTimestamp();
            await Task.WhenAll(channels.Select(channel => Task.Run(async () =>
            {
                var stub = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
                while (Stopwatch.GetTimestamp() < until)
                {
                    try
                    {
                        await stub.ModelInferAsync(request);
                        Interlocked.Increment(ref count);
                    }
                    catch (global::Grpc.Core.RpcException)
                    {
                        Interlocked.Increment(ref errors);
                    }
                }
            })));
            return new LoadResult(count, errors, Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
        finally
        {
            foreach (var channel in channels)
            {
                channel.Dispose();
            }
        }
    }

    /// <summary>A unary gRPC request body: uncompressed flag, big-endian length, message.</summary>
    public static byte[] Frame(IMessage message)
    {
        var bytes = message.ToByteArray();
        var frame = new byte[5 + bytes.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), bytes.Length);
        bytes.CopyTo(frame, 5);
        return frame;
    }
}
