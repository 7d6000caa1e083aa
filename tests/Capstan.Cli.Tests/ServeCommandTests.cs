using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Capstan.Cli.Hosting;
using Capstan.Core.Registry;
using Capstan.Testing;

namespace Capstan.Cli.Tests;

public sealed class ServeCommandTests
{
    /// <summary>A 4-input MLP as iris.onnx in the home folder.</summary>
    private static async Task<string> ModelFileAsync(TempHome home)
    {
        var model = Path.Combine(home.Root, "iris.onnx");
        await File.WriteAllBytesAsync(model, OnnxModelBuilder.Mlp(4, 8, 3), TestContext.Current.CancellationToken);
        return model;
    }

    /// <summary>Runs <c>capstan serve ARGS</c> in process until <paramref name="stop"/>; returns once it prints its REST address.</summary>
    private static async Task<(Task<int> Serving, Uri Url)> StartServeAsync(Dictionary<string, string?> environment, string[] args, CancellationToken stop)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var context = new CliContext(CliContext.CreatePlainConsole(TextWriter.Synchronized(stdout), 250), CliContext.CreatePlainConsole(TextWriter.Synchronized(stderr), 250), name => environment.TryGetValue(name, out var v) ? v : null);
        var serving = CapstanCli.RunAsync(["serve", .. args], context, stop);
        var url = Match.Empty;
        for (var i = 0; i < 300 && !url.Success && !serving.IsCompleted; i++)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
            url = Regex.Match(stdout.ToString(), @"http://127\.0\.0\.1:\d+");
        }

        Assert.True(url.Success, $"no address printed; stdout: {stdout} stderr: {stderr}");
        return (serving, new Uri(url.Value));
    }

    [Fact]
    public async Task Serve_RegistryAlias_AnswersOipRequestsUntilCanceled()
    {
        using var home = new TempHome();
        await using (var backend = await Backend.OpenEmbeddedAsync(new Core.CapstanHome(home.Root), TestContext.Current.CancellationToken))
        {
            await using (var onnx = new MemoryStream(OnnxModelBuilder.Mlp(4, 8, 3)))
            {
                await backend.Artifacts.PutAsync("1/run1/artifacts/model/model.onnx", onnx);
            }

            await backend.Metadata.CreateRegisteredModelAsync(new NewRegisteredModel("iris"));
            await backend.Metadata.CreateModelVersionAsync(new NewModelVersion("iris", "mlflow-artifacts:/1/run1/artifacts/model"));
            await backend.Metadata.SetAliasAsync("iris", "champion", 1);
        }

        using var stop = new CancellationTokenSource();
        var (serving, url) = await StartServeAsync(home.Environment, ["models:/iris@champion", "--port", "0", "--grpc-port", "0"], stop.Token);
        using var http = new HttpClient { BaseAddress = url };
        var metadata = JsonDocument.Parse(await http.GetStringAsync("/v2/models/iris", TestContext.Current.CancellationToken)).RootElement;
        Assert.Equal("1", metadata.GetProperty("versions")[0].GetString());
        using var response = await http.PostAsync(
            "/v2/models/iris/infer",
            new StringContent("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}""", Encoding.UTF8, "application/json"),
            TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var output = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.GetProperty("outputs")[0];
        Assert.Equal(3, output.GetProperty("data").GetArrayLength());

        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await serving);
    }

    [Fact]
    public async Task Serve_OtelEnvironmentVariables_ExportSpansToTheCollectorUnderTheServiceName()
    {
        using var home = new TempHome();
        var model = await ModelFileAsync(home);
        await using var collector = await OtlpCollector.StartAsync();
        var environment = new Dictionary<string, string?>(home.Environment)
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.HttpEndpoint.GetLeftPart(UriPartial.Authority),
            ["OTEL_SERVICE_NAME"] = "iris-serving",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
        };
        using var stop = new CancellationTokenSource();
        var (serving, url) = await StartServeAsync(environment, [model, "--port", "0", "--grpc-port", "-1"], stop.Token);
        using (var http = new HttpClient { BaseAddress = url })
        using (var response = await http.PostAsync(
            "/v2/models/iris/infer",
            new StringContent("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}""", Encoding.UTF8, "application/json"),
            TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var infer = await collector.WaitForAsync(s => s.Span.Name == "infer iris", TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Assert.Equal("iris-serving", infer.Resource["service.name"].StringValue);
        Assert.Equal("1", infer.Attribute("capstan.model.version")?.StringValue);

        // The model loaded at start-up, before the server listened, has its span too.
        var load = await collector.WaitForAsync(s => s.Span.Name == "load model", TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
        Assert.Equal(("iris", "cpu"), (load.Attribute("capstan.model.name")?.StringValue, load.Attribute("capstan.execution_provider")?.StringValue));
        Assert.True(load.Span.EndTimeUnixNano <= infer.Span.StartTimeUnixNano);
        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await serving);
    }

    [Fact]
    public async Task Serve_OtelProtocolItCannotSpeak_IsAUsageErrorNamingTheVariable()
    {
        using var home = new TempHome();
        var model = await ModelFileAsync(home);
        var environment = new Dictionary<string, string?>(home.Environment)
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4318",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/json",
        };
        var result = await CliHarness.RunAsync(environment, "serve", model, "--port", "0", "--grpc-port", "-1");
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("OTEL_EXPORTER_OTLP_PROTOCOL 'http/json' is not supported", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_MissingFile_FailsWithOneLine()
    {
        using var home = new TempHome();
        var result = await CliHarness.RunAsync(home.Environment, "serve", Path.Combine(home.Root, "nope.onnx"));
        Assert.Equal(ExitCodes.UserError, result.ExitCode);
        Assert.Contains("does not exist", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Serve_NegativeIntraOpThreads_IsAUsageErrorThatSaysWhy()
    {
        using var home = new TempHome();
        var result = await CliHarness.RunAsync(home.Environment, "serve", Path.Combine(home.Root, "any.onnx"), "--intra-op-threads", "-2");
        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("--intra-op-threads must be 0", result.Error, StringComparison.Ordinal);
    }
}
