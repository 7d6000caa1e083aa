using System.Globalization;

namespace Capstan.Core.Observability;

/// <summary>How spans travel to the collector (OTEL_EXPORTER_OTLP_PROTOCOL).</summary>
public enum OtlpProtocol
{
    /// <summary><c>http/protobuf</c>: the specification's default, port 4318.</summary>
    HttpProtobuf,

    /// <summary><c>grpc</c>: port 4317.</summary>
    Grpc,
}

/// <summary>
/// Which traces are recorded (OTEL_TRACES_SAMPLER): always_on, always_off or traceidratio with <see cref="Ratio"/>,
/// and whether a caller's sampling decision is followed (the parentbased_ forms, the default).
/// </summary>
public sealed record TraceSampler(string Root, double Ratio = 1, bool ParentBased = true)
{
    public static TraceSampler Default { get; } = new("always_on");
}

/// <summary>
/// Where the server sends its traces over OTLP, read from OpenTelemetry's standard environment
/// variables so a collector set up for other services works unchanged. Tracing is off unless an
/// endpoint is given; <c>OTEL_SDK_DISABLED=true</c> or <c>OTEL_TRACES_EXPORTER=none</c> turn it off too.
/// </summary>
public sealed record TracingSettings
{
    /// <summary>Where spans are posted: the full URL for http/protobuf (…/v1/traces), the collector's address for gRPC.</summary>
    public required Uri Endpoint { get; init; }

    /// <summary>http/protobuf (the specification's default, port 4318) or grpc (port 4317).</summary>
    public OtlpProtocol Protocol { get; init; } = OtlpProtocol.HttpProtobuf;

    /// <summary>The resource's <c>service.name</c>; null leaves it to the program (capstan-serving, capstan-server).</summary>
    public string? ServiceName { get; init; }

    /// <summary>Extra request headers for the collector (an API key, say): sent, never logged.</summary>
    public string? Headers { get; init; }

    /// <summary>Which traces are recorded; by default every trace whose caller did not say otherwise.</summary>
    public TraceSampler Sampler { get; init; } = TraceSampler.Default;

    /// <summary>How long finished spans wait to be sent in one batch.</summary>
    public TimeSpan ExportDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _PROTOCOL and _HEADERS, OTEL_SERVICE_NAME,
    /// OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_SCHEDULE_DELAY, OTEL_TRACES_EXPORTER and OTEL_SDK_DISABLED.
    /// Null when no endpoint is set or tracing is turned off; a value the specification does not
    /// allow throws <see cref="InvalidOperationException"/> naming the variable.
    /// </summary>
    public static TracingSettings? FromEnvironment(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        string? Get(string name) => variable(name) is { Length: > 0 } value ? value.Trim() : null;

        if (string.Equals(Get("OTEL_SDK_DISABLED"), "true", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        switch (Get("OTEL_TRACES_EXPORTER")?.ToLowerInvariant())
        {
            case null or "otlp":
                break;
            case "none":
                return null;
            case var other:
                throw new InvalidOperationException($"OTEL_TRACES_EXPORTER '{other}' is not supported: use otlp (or none).");
        }

        var protocol = (Get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? Get("OTEL_EXPORTER_OTLP_PROTOCOL"))?.ToLowerInvariant() switch
        {
            null or "http/protobuf" => OtlpProtocol.HttpProtobuf,
            "grpc" => OtlpProtocol.Grpc,
            var other => throw new InvalidOperationException($"OTEL_EXPORTER_OTLP_PROTOCOL '{other}' is not supported: use http/protobuf or grpc."),
        };

        // The signal-specific endpoint is used as given; the general one is a base URL that http/protobuf appends v1/traces to.
        Uri endpoint;
        if (Get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") is { } traces)
        {
            endpoint = ParseUri("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces);
        }
        else if (Get("OTEL_EXPORTER_OTLP_ENDPOINT") is { } general)
        {
            endpoint = ParseUri("OTEL_EXPORTER_OTLP_ENDPOINT", general);
            if (protocol == OtlpProtocol.HttpProtobuf)
            {
                endpoint = new Uri(endpoint.AbsoluteUri.TrimEnd('/') + "/v1/traces");
            }
        }
        else
        {
            return null;
        }

        var settings = new TracingSettings
        {
            Endpoint = endpoint,
            Protocol = protocol,
            Headers = Get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") ?? Get("OTEL_EXPORTER_OTLP_HEADERS"),
            Sampler = ParseSampler(Get("OTEL_TRACES_SAMPLER"), Get("OTEL_TRACES_SAMPLER_ARG")),
        };
        if (Get("OTEL_SERVICE_NAME") is { } service)
        {
            settings = settings with { ServiceName = service };
        }

        if (Get("OTEL_BSP_SCHEDULE_DELAY") is { } delay)
        {
            settings = settings with
            {
                ExportDelay = int.TryParse(delay, NumberStyles.None, CultureInfo.InvariantCulture, out var ms) && ms > 0
                    ? TimeSpan.FromMilliseconds(ms)
                    : throw new InvalidOperationException($"OTEL_BSP_SCHEDULE_DELAY '{delay}' is not a positive number of milliseconds."),
            };
        }

        return settings;
    }

    private static Uri ParseUri(string name, string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri
            : throw new InvalidOperationException($"{name} '{value}' is not an http:// or https:// URL.");

    private static TraceSampler ParseSampler(string? name, string? argument)
    {
        double Ratio()
        {
            if (argument is null)
            {
                return 1;
            }

            return double.TryParse(argument, NumberStyles.Float, CultureInfo.InvariantCulture, out var ratio) && ratio is >= 0 and <= 1
                ? ratio
                : throw new InvalidOperationException($"OTEL_TRACES_SAMPLER_ARG '{argument}' is not a ratio between 0 and 1.");
        }

        return name?.ToLowerInvariant() switch
        {
            null or "parentbased_always_on" => TraceSampler.Default,
            "parentbased_always_off" => new TraceSampler("always_off"),
            "parentbased_traceidratio" => new TraceSampler("traceidratio", Ratio()),
            "always_on" => new TraceSampler("always_on", ParentBased: false),
            "always_off" => new TraceSampler("always_off", ParentBased: false),
            "traceidratio" => new TraceSampler("traceidratio", Ratio(), ParentBased: false),
            var other => throw new InvalidOperationException(
                $"OTEL_TRACES_SAMPLER '{other}' is not supported: use always_on, always_off, traceidratio or their parentbased_ forms."),
        };
    }
}
