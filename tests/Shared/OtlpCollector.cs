using System.Collections.Concurrent;
using Capstan.Testing.Otlp;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Capstan.Testing;

/// <summary>One span as a collector received it, with its resource's attributes.</summary>
public sealed record CollectedSpan(Span Span, IReadOnlyDictionary<string, AnyValue> Resource)
{
    public string TraceId => Convert.ToHexStringLower(Span.TraceId.Span);

    public string SpanId => Convert.ToHexStringLower(Span.SpanId.Span);

    public string ParentSpanId => Convert.ToHexStringLower(Span.ParentSpanId.Span);

    public AnyValue? Attribute(string key) => Span.Attributes.FirstOrDefault(a => a.Key == key)?.Value;
}

/// <summary>
/// A trace collector on 127.0.0.1 that accepts OTLP export the two ways the specification defines: protobuf
/// POSTed to /v1/traces over HTTP/1.1, and the TraceService/Export gRPC call over h2c on a second port.
/// </summary>
public sealed class OtlpCollector : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<CollectedSpan> _spans = new();
    private readonly SemaphoreSlim _arrived = new(0);

    private OtlpCollector(WebApplication app) => _app = app;

    public Uri HttpEndpoint { get; private set; } = null!;

    public Uri GrpcEndpoint { get; private set; } = null!;

    public int Exports { get; private set; }

    public static async Task<OtlpCollector> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(System.Net.IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http1);
            kestrel.Listen(System.Net.IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2);
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddGrpc();
        builder.Services.AddSingleton<TraceReceiver>();
        var app = builder.Build();
        var collector = new OtlpCollector(app);
        app.Services.GetRequiredService<TraceReceiver>().Collector = collector;
        app.MapPost("/v1/traces", async (HttpContext context) =>
        {
            if (context.Request.ContentType != "application/x-protobuf")
            {
                return Results.StatusCode(StatusCodes.Status415UnsupportedMediaType);
            }

            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            collector.Accept(ExportTraceServiceRequest.Parser.ParseFrom(body.ToArray()));
            return Results.Bytes(new ExportTraceServiceResponse().ToByteArray(), "application/x-protobuf");
        });
        app.MapGrpcService<TraceReceiver>();
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a)).ToList();
        collector.HttpEndpoint = new Uri(addresses[0], "/v1/traces");
        collector.GrpcEndpoint = addresses[1];
        return collector;
    }

    public IReadOnlyList<CollectedSpan> Spans => [.. _spans];

    /// <summary>Waits until a span matching <paramref name="match"/> has arrived; fails the test after <paramref name="timeout"/>.</summary>
    public async Task<CollectedSpan> WaitForAsync(Func<CollectedSpan, bool> match, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_spans.FirstOrDefault(match) is { } found)
            {
                return found;
            }

            var left = until - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"No matching span within {timeout.TotalSeconds:0} s; received: {string.Join(", ", _spans.Select(s => s.Span.Name))}");
            }

            await _arrived.WaitAsync(left, cancellationToken);
        }
    }

    private void Accept(ExportTraceServiceRequest request)
    {
        foreach (var resourceSpans in request.ResourceSpans)
        {
            var resource = (resourceSpans.Resource?.Attributes ?? []).ToDictionary(a => a.Key, a => a.Value);
            foreach (var span in resourceSpans.ScopeSpans.SelectMany(s => s.Spans))
            {
                _spans.Enqueue(new CollectedSpan(span, resource));
            }
        }

        Exports++;
        _arrived.Release();
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class TraceReceiver : TraceService.TraceServiceBase
    {
        public OtlpCollector Collector { get; set; } = null!;

        public override Task<ExportTraceServiceResponse> Export(ExportTraceServiceRequest request, ServerCallContext context)
        {
            Collector.Accept(request);
            return Task.FromResult(new ExportTraceServiceResponse());
        }
    }
}
