using System.Net;
using System.Text;
using Capstan.Core.Observability;
using Capstan.Serving.Grpc.V2;
using Capstan.Serving.Hosting;
using Capstan.Serving.Models;
using Capstan.Testing;
using Google.Protobuf;
using Grpc.Net.Client;

namespace Capstan.Serving.Tests;

/// <summary>
/// The server exports traces over OTLP to a collector on loopback: a span per request that continues the caller's
/// W3C trace, and inside it an inference span naming the model version, the run and, on failure, the error.
/// </summary>
public sealed class TracingTests
{
    private const int SpanKindInternal = 1;
    private const int SpanKindServer = 2;
    private const int StatusError = 2;
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static void LoadMlp(ModelRepository repository) =>
        repository.Load("mlp", "3", ModelSource.FromBytes(OnnxModelBuilder.Mlp(4, 8, 3, 1)), new ModelOptions());

    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task Rest_RequestWithTraceparent_ContinuesTheCallersTraceWithServerAndInferenceSpans()
    {
        await using var collector = await OtlpCollector.StartAsync();
        var tracing = new TracingSettings { Endpoint = collector.HttpEndpoint, Protocol = OtlpProtocol.HttpProtobuf, ServiceName = "fraud-model", ExportDelay = TimeSpan.FromMilliseconds(50) };
        await using var host = await ServingHost.StartAsync(LoadMlp, tracing);

        const string TraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
        const string CallerSpan = "00f067aa0ba902b7";
        using var ok = new HttpRequestMessage(HttpMethod.Post, "/v2/models/mlp/infer")
        {
            Content = Body("""{"inputs":[{"name":"x","shape":[2,4],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}]}"""),
        };
        ok.Headers.Add("traceparent", $"00-{TraceId}-{CallerSpan}-01");
        using (var response = await host.Rest.SendAsync(ok, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var server = await collector.WaitForAsync(s => s.TraceId == TraceId && s.Span.Kind == SpanKindServer, s_wait, Ct);
        Assert.Equal(CallerSpan, server.ParentSpanId);
        Assert.Equal("/v2/models/{model}/infer", server.Attribute("http.route")?.StringValue);
        Assert.Equal(200, server.Attribute("http.response.status_code")?.IntValue);
        Assert.Equal("fraud-model", server.Resource["service.name"].StringValue);

        var infer = await collector.WaitForAsync(s => s.TraceId == TraceId && s.Span.Kind == SpanKindInternal, s_wait, Ct);
        Assert.Equal("infer mlp", infer.Span.Name);
        Assert.Equal(server.SpanId, infer.ParentSpanId);
        Assert.Equal("mlp", infer.Attribute("capstan.model.name")?.StringValue);
        Assert.Equal("3", infer.Attribute("capstan.model.version")?.StringValue);
        Assert.Equal(2, infer.Attribute("capstan.onnx.run_rows")?.IntValue);
        Assert.True(infer.Attribute("capstan.onnx.run_us")?.DoubleValue > 0);
        Assert.NotEqual(StatusError, infer.Span.Status?.Code ?? 0);

        // A request with the wrong shape: the inference span is an error and says what the caller was told.
        using (var bad = await host.Rest.PostAsync("/v2/models/mlp/infer", Body("""{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"""), Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }

        var failed = await collector.WaitForAsync(s => s.Span.Name == "infer mlp" && s.Span.Status?.Code == StatusError, s_wait, Ct);
        Assert.Contains("Input 'x' has shape [1,3]", failed.Span.Status.Message, StringComparison.Ordinal);
        Assert.Equal("invalid", failed.Attribute("error.type")?.StringValue);
        var failedServer = await collector.WaitForAsync(s => s.SpanId == failed.ParentSpanId, s_wait, Ct);
        Assert.Equal(400, failedServer.Attribute("http.response.status_code")?.IntValue);

        // Scrapes and health probes make no spans; the unknown model's inference span says not_found.
        await host.Rest.GetStringAsync("/metrics", Ct);
        await host.Rest.GetAsync("/v2/health/ready", Ct);
        using (var missing = await host.Rest.PostAsync("/v2/models/nope/infer", Body("""{"inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}]}"""), Ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        var notFound = await collector.WaitForAsync(s => s.Span.Name == "infer nope", s_wait, Ct);
        Assert.Equal("not_found", notFound.Attribute("error.type")?.StringValue);
        await collector.WaitForAsync(s => s.SpanId == notFound.ParentSpanId, s_wait, Ct);
        Assert.DoesNotContain(collector.Spans, s => s.Attribute("url.path")?.StringValue is "/metrics" or "/v2/health/ready" or "/v1/traces");
    }

    [Fact]
    public async Task Grpc_ModelInfer_ExportedOverOtlpGrpc_HasTheRpcSpanAndTheInferenceSpan()
    {
        await using var collector = await OtlpCollector.StartAsync();
        var tracing = new TracingSettings { Endpoint = collector.GrpcEndpoint, Protocol = OtlpProtocol.Grpc, ExportDelay = TimeSpan.FromMilliseconds(50) };
        await using var host = await ServingHost.StartAsync(LoadMlp, tracing);
        using var channel = GrpcChannel.ForAddress(host.GrpcAddress);
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var request = new ModelInferRequest { ModelName = "mlp" };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "x", Datatype = "FP32", Shape = { 1, 4 } });
        request.RawInputContents.Add(ByteString.CopyFrom(new byte[16]));
        var reply = await client.ModelInferAsync(request, cancellationToken: Ct);
        Assert.Equal("3", reply.ModelVersion);

        var infer = await collector.WaitForAsync(s => s.Span.Name == "infer mlp", s_wait, Ct);
        var server = await collector.WaitForAsync(s => s.SpanId == infer.ParentSpanId, s_wait, Ct);
        Assert.Equal(SpanKindServer, server.Span.Kind);
        Assert.Equal(infer.TraceId, server.TraceId);
        Assert.Equal("/inference.GRPCInferenceService/ModelInfer", server.Attribute("url.path")?.StringValue);
        Assert.Equal("capstan-serving", server.Resource["service.name"].StringValue);
        Assert.DoesNotContain(collector.Spans, s => s.Attribute("url.path")?.StringValue?.Contains("TraceService", StringComparison.Ordinal) == true);
    }

    private static Func<string, string?> Env(params (string Name, string Value)[] variables) =>
        name => variables.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void FromEnvironment_StandardVariables_EndpointProtocolServiceAndSampler()
    {
        Assert.Null(TracingSettings.FromEnvironment(Env()));
        Assert.Null(TracingSettings.FromEnvironment(Env(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), ("OTEL_SDK_DISABLED", "true"))));
        Assert.Null(TracingSettings.FromEnvironment(Env(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), ("OTEL_TRACES_EXPORTER", "none"))));

        // The general endpoint is a base URL for http/protobuf (the default protocol); the traces endpoint is used as given.
        var http = TracingSettings.FromEnvironment(Env(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"), ("OTEL_SERVICE_NAME", "fraud")))!;
        Assert.Equal(new Uri("http://collector:4318/v1/traces"), http.Endpoint);
        Assert.Equal(OtlpProtocol.HttpProtobuf, http.Protocol);
        Assert.Equal("fraud", http.ServiceName);
        Assert.Equal(new Uri("http://c:9/custom"), TracingSettings.FromEnvironment(Env(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1"), ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:9/custom")))!.Endpoint);

        var grpc = TracingSettings.FromEnvironment(Env(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=abc"), ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.25"), ("OTEL_BSP_SCHEDULE_DELAY", "200")))!;
        Assert.Equal(new Uri("http://collector:4317"), grpc.Endpoint);
        Assert.Equal(OtlpProtocol.Grpc, grpc.Protocol);
        Assert.Equal("x-api-key=abc", grpc.Headers);
        Assert.Equal(new TraceSampler("traceidratio", 0.25), grpc.Sampler);
        Assert.Equal(TimeSpan.FromMilliseconds(200), grpc.ExportDelay);
    }

    [Theory]
    [InlineData("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]
    [InlineData("OTEL_TRACES_EXPORTER", "zipkin")]
    [InlineData("OTEL_TRACES_SAMPLER", "sometimes")]
    [InlineData("OTEL_TRACES_SAMPLER_ARG", "1.5")]
    [InlineData("OTEL_BSP_SCHEDULE_DELAY", "soon")]
    [InlineData("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318")]
    public void FromEnvironment_AValueTheSpecificationDoesNotAllow_NamesTheVariable(string name, string value)
    {
        var error = Assert.Throws<InvalidOperationException>(() => TracingSettings.FromEnvironment(
            Env((name, value), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), ("OTEL_TRACES_SAMPLER", "traceidratio"))));
        Assert.Contains($"{name} '{value}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoTracingSettings_NoSpansLeaveTheServer()
    {
        await using var collector = await OtlpCollector.StartAsync();
        await using (var host = await ServingHost.StartAsync(LoadMlp))
        {
            using var response = await host.Rest.PostAsync("/v2/models/mlp/infer", Body("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"""), Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(0, collector.Exports);
    }
}
