using Capstan.Core.Observability;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Capstan.Shared;

/// <summary>
/// OTLP trace export for one ASP.NET Core host, from <see cref="TracingSettings"/>: a span for every HTTP (and gRPC)
/// request <paramref name="keep"/> accepts (a caller's W3C traceparent continues its trace), the host's own
/// <paramref name="source"/> spans, batched to the collector. Compiled into the inference server and the control plane.
/// </summary>
internal static class CapstanTracing
{
    public static void Add(IServiceCollection services, TracingSettings tracing, string defaultServiceName, string source, Func<HttpContext, bool> keep)
    {
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(tracing.ServiceName ?? defaultServiceName, serviceVersion: typeof(CapstanTracing).Assembly.GetName().Version?.ToString()))
            .WithTracing(traces => traces
                .SetSampler(Sampler(tracing.Sampler))
                .AddSource(source)
                .AddAspNetCoreInstrumentation(aspNet => aspNet.Filter = keep)
                .AddOtlpExporter(otlp =>
                {
                    otlp.Endpoint = tracing.Endpoint;
                    otlp.Protocol = tracing.Protocol == OtlpProtocol.Grpc ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
                    if (tracing.Headers is not null)
                    {
                        otlp.Headers = tracing.Headers;
                    }

                    otlp.BatchExportProcessorOptions.ScheduledDelayMilliseconds = (int)tracing.ExportDelay.TotalMilliseconds;
                }));
    }

    private static Sampler Sampler(TraceSampler sampler)
    {
        Sampler root = sampler.Root switch
        {
            "always_off" => new AlwaysOffSampler(),
            "traceidratio" => new TraceIdRatioBasedSampler(sampler.Ratio),
            _ => new AlwaysOnSampler(),
        };
        return sampler.ParentBased ? new ParentBasedSampler(root) : root;
    }
}
