using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Capstan.Cli.Hosting;
using Capstan.Core.ControlPlane;
using Capstan.Core.Registry;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Server;
using Capstan.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Capstan.Cli.Tests;

/// <summary>InferenceServices reconciled by a real control plane onto real <c>capstan serve</c> processes.</summary>
public sealed class InferenceServiceTests
{
    private static readonly float[] s_row = [5.1f, 3.5f, 1.4f, 0.2f];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static byte[] Version(int seed) => OnnxModelBuilder.Mlp(4, 8, 3, seed);

    /// <summary>Registers iris versions 1..n (seeds 1..n) with @champion on 1.</summary>
    private static async Task RegisterAsync(string home, int versions)
    {
        await using var backend = await Backend.OpenEmbeddedAsync(new Core.CapstanHome(home), Ct);
        await backend.Metadata.CreateRegisteredModelAsync(new NewRegisteredModel("iris"), Ct);
        for (var v = 1; v <= versions; v++)
        {
            await using (var onnx = new MemoryStream(Version(v)))
            {
                await backend.Artifacts.PutAsync($"1/run{v}/artifacts/model/model.onnx", onnx, Ct);
            }

            await backend.Metadata.CreateModelVersionAsync(new NewModelVersion("iris", $"mlflow-artifacts:/1/run{v}/artifacts/model"), Ct);
        }

        await backend.Metadata.SetAliasAsync("iris", "champion", 1, Ct);
    }

    private static InferenceService Service(string model = "models:/iris@champion", CanarySpec? canary = null) => new()
    {
        Metadata = new ResourceMetadata { Name = "iris" },
        Spec = new InferenceServiceSpec { Model = model, Canary = canary },
    };

    private static float[] Expected(int version)
    {
        using var session = new InferenceSession(Version(version));
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(s_row, [1, 4]))]);
        return [.. results.First().AsEnumerable<float>()];
    }

    private static async Task<(string Version, float[] Data)> InferAsync(HttpClient http, string url)
    {
        using var response = await http.PostAsync(
            $"{url}/v2/models/iris/infer",
            new StringContent("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}""", Encoding.UTF8, "application/json"),
            Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var root = JsonDocument.Parse(body).RootElement;
        return (root.GetProperty("model_version").GetString()!, [.. root.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(e => e.GetSingle())]);
    }

    private static async Task<WebApplication> StartServerAsync(string home)
    {
        var app = await CapstanServer.BuildAsync(new ServerOptions { Host = "127.0.0.1", Port = 0, Home = home, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning }, Ct);
        await app.StartAsync(Ct);
        return app;
    }

    private static async Task<InferenceService> WaitAsync(IResourceStore resources, Func<InferenceService, bool> done, string what)
    {
        var clock = Stopwatch.StartNew();
        InferenceService service;
        do
        {
            service = await resources.GetAsync<InferenceService>("default", "iris", Ct);
            if (done(service))
            {
                return service;
            }

            await Task.Delay(100, Ct);
        }
        while (clock.Elapsed < TimeSpan.FromSeconds(90));
        Assert.Fail($"timed out waiting for {what}; status: {ResourceSerializer.ToJson(service)}");
        return service;
    }

    /// <summary>Deletes the service and waits until its server has stopped, so no process outlives the test.</summary>
    private static async Task DeleteAndWaitStoppedAsync(WebApplication app, string workloadId)
    {
        await app.Services.GetRequiredService<IResourceStore>().DeleteAsync(InferenceService.KindName, "default", "iris", Ct);
        var runtime = app.Services.GetRequiredService<IWorkloadRuntime>();
        var clock = Stopwatch.StartNew();
        while ((await runtime.GetStatusAsync(workloadId, Ct))?.IsFinished != true && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(100, Ct);
        }

        Assert.True((await runtime.GetStatusAsync(workloadId, Ct))!.IsFinished, $"{workloadId} still runs after the delete");
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i], 5);
        }
    }

    [Fact]
    public async Task InferenceService_AliasMoves_RollsToTheNewVersionWithoutAFailedRequestAndDeleteStopsTheServer()
    {
        using var home = new TempHome();
        await RegisterAsync(home.Root, 2);
        await using var app = await StartServerAsync(home.Root);
        var resources = app.Services.GetRequiredService<IResourceStore>();
        var runtime = app.Services.GetRequiredService<IWorkloadRuntime>();
        await resources.CreateAsync(Service(), Ct);

        var ready = await WaitAsync(resources, s => s.Status?.Phase == InferenceServicePhase.Ready, "Ready");
        var url = ready.Status!.Url!;
        Assert.Matches(@"^http://127\.0\.0\.1:\d+$", url);
        Assert.Equal("True", ready.Status.Conditions!.Single(c => c.Type == "Ready").Status.ToString());
        Assert.Equal(("default", "1", 100), (ready.Status.Traffic![0].Tag, ready.Status.Traffic[0].Version, ready.Status.Traffic[0].Percent));
        using var http = new HttpClient();
        var first = await InferAsync(http, url);
        Assert.Equal("1", first.Version);
        AssertClose(Expected(1), first.Data);

        // The control plane's API shows the server's own log and, for the dashboard, its scraped request counters.
        var api = app.Urls.Single();
        var log = await http.GetStringAsync($"{api}/api/v1/namespaces/default/inferenceservices/iris/log", Ct);
        Assert.Contains("Serving iris", log, StringComparison.Ordinal);
        var scrape = JsonDocument.Parse(await http.GetStringAsync($"{api}/api/v1/dashboard/services/default/iris/metrics", Ct)).RootElement;
        Assert.True(scrape.GetProperty("available").GetBoolean(), scrape.ToString());
        var figures = scrape.GetProperty("versions").EnumerateArray().Single(v => v.GetProperty("version").GetString() == "1");
        Assert.Equal(1, figures.GetProperty("requests").GetProperty("success").GetDouble());
        Assert.Equal(1, figures.GetProperty("latencyCount").GetDouble());

        // Requests keep flowing while the alias moves; not one may fail.
        using var stopLoad = new CancellationTokenSource();
        var failures = 0;
        var served = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var load = Task.Run(async () =>
        {
            while (!stopLoad.IsCancellationRequested)
            {
                try
                {
                    var (version, _) = await InferAsync(http, url);
                    served.AddOrUpdate(version, 1, (_, n) => n + 1);
                }
                catch (Exception) when (!stopLoad.IsCancellationRequested)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        }, Ct);
        await using (var backend = await Backend.OpenEmbeddedAsync(new Core.CapstanHome(home.Root), Ct))
        {
            await backend.Metadata.SetAliasAsync("iris", "champion", 2, Ct);
        }

        var rolled = await WaitAsync(resources, s => s.Status?.Traffic?[0].Version == "2", "the rollout to version 2");
        var second = await InferAsync(http, url);
        await stopLoad.CancelAsync();
        await load;

        Assert.Equal(0, failures);
        Assert.Equal(url, rolled.Status!.Url);
        Assert.Equal("2", second.Version);
        AssertClose(Expected(2), second.Data);
        Assert.True(served.ContainsKey("1"), $"versions served during the move: {string.Join(", ", served)}");
        var events = await resources.ListEventsAsync(InferenceService.KindName, "default", "iris", Ct);
        Assert.Contains(events, e => e.Reason == "RolledOut" && e.Message.Contains("to version 2", StringComparison.Ordinal));

        var workloadId = rolled.Status.WorkloadId!;
        await resources.DeleteAsync(InferenceService.KindName, "default", "iris", Ct);
        var clock = Stopwatch.StartNew();
        while ((await runtime.GetStatusAsync(workloadId, Ct))?.IsFinished != true && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(100, Ct);
        }

        Assert.Equal(WorkloadReasons.Stopped, (await runtime.GetStatusAsync(workloadId, Ct))!.Reason);
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync($"{url}/v2/health/ready", Ct));
    }

    [Fact]
    public async Task InferenceService_SpecEnvNamesACollector_ItsServerSendsTracesNamedAfterTheService()
    {
        using var home = new TempHome();
        await RegisterAsync(home.Root, 1);
        await using var collector = await OtlpCollector.StartAsync();
        await using var app = await StartServerAsync(home.Root);
        var resources = app.Services.GetRequiredService<IResourceStore>();
        var service = Service();
        service.Spec.Env =
        [
            new k8s.Models.V1EnvVar { Name = "OTEL_EXPORTER_OTLP_ENDPOINT", Value = collector.HttpEndpoint.GetLeftPart(UriPartial.Authority) },
            new k8s.Models.V1EnvVar { Name = "OTEL_BSP_SCHEDULE_DELAY", Value = "100" },
        ];
        await resources.CreateAsync(service, Ct);
        var ready = await WaitAsync(resources, s => s.Status?.Phase == InferenceServicePhase.Ready, "Ready");
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{ready.Status!.Url}/v2/models/iris/infer")
        {
            Content = new StringContent("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        using (var response = await http.SendAsync(request, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // The server process is a child of the control plane: its spans reach the collector under the service's name, in the caller's trace.
        var infer = await collector.WaitForAsync(s => s.Span.Name == "infer iris", TimeSpan.FromSeconds(30), Ct);
        Assert.Equal("iris", infer.Resource["service.name"].StringValue);
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", infer.TraceId);
        Assert.Equal("1", infer.Attribute("capstan.model.version")?.StringValue);
        await DeleteAndWaitStoppedAsync(app, ready.Status.WorkloadId!);
    }

    [Fact]
    public async Task InferenceService_ControlPlaneRestarts_AdoptsTheRunningServer()
    {
        using var home = new TempHome();
        await RegisterAsync(home.Root, 1);
        string url;
        string workloadId;
        await using (var app = await StartServerAsync(home.Root))
        {
            var resources = app.Services.GetRequiredService<IResourceStore>();
            await resources.CreateAsync(Service("models:/iris/1"), Ct);
            var ready = await WaitAsync(resources, s => s.Status?.Phase == InferenceServicePhase.Ready, "Ready");
            (url, workloadId) = (ready.Status!.Url!, ready.Status.WorkloadId!);
            await app.StopAsync(Ct);
        }

        using var http = new HttpClient();
        Assert.Equal("1", (await InferAsync(http, url)).Version);

        await using var again = await StartServerAsync(home.Root);
        var store = again.Services.GetRequiredService<IResourceStore>();
        var adopted = await WaitAsync(store, s => s.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Reason == WorkloadReasons.Adopted) == true, "adoption");

        Assert.Equal((url, workloadId, 0), (adopted.Status!.Url, adopted.Status.WorkloadId, adopted.Status.Restarts));
        AssertClose(Expected(1), (await InferAsync(http, url)).Data);
        await store.DeleteAsync(InferenceService.KindName, "default", "iris", Ct);
        var runtime = again.Services.GetRequiredService<IWorkloadRuntime>();
        var clock = Stopwatch.StartNew();
        while ((await runtime.GetStatusAsync(workloadId, Ct))?.IsFinished != true && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(100, Ct);
        }

        Assert.True((await runtime.GetStatusAsync(workloadId, Ct))!.IsFinished);
    }

    [Fact]
    public async Task InferenceService_MissingAlias_FailsWithModelNotFoundAndServesOnceRegistered()
    {
        using var home = new TempHome();
        await RegisterAsync(home.Root, 1);
        await using var app = await StartServerAsync(home.Root);
        var resources = app.Services.GetRequiredService<IResourceStore>();
        await resources.CreateAsync(Service("models:/iris@production"), Ct);

        var failed = await WaitAsync(resources, s => s.Status?.Phase == InferenceServicePhase.Failed, "Failed");
        Assert.Equal(InferenceServiceReconciler.ReasonModelNotFound, failed.Status!.Conditions!.Single(c => c.Type == "Ready").Reason);
        Assert.Contains("production", failed.Status.Message, StringComparison.Ordinal);

        await using (var backend = await Backend.OpenEmbeddedAsync(new Core.CapstanHome(home.Root), Ct))
        {
            await backend.Metadata.SetAliasAsync("iris", "production", 1, Ct);
        }

        var ready = await WaitAsync(resources, s => s.Status?.Phase == InferenceServicePhase.Ready, "Ready");
        using var http = new HttpClient();
        Assert.Equal("1", (await InferAsync(http, ready.Status!.Url!)).Version);
        await DeleteAndWaitStoppedAsync(app, ready.Status.WorkloadId!);
    }

    [Fact]
    public async Task Run_InferenceServiceFile_PrintsTheUrlServesUntilCanceledThenStops()
    {
        using var home = new TempHome();
        await RegisterAsync(home.Root, 2);
        var file = Path.Combine(home.Root, "isvc.yaml");
        await File.WriteAllTextAsync(file, """
            apiVersion: capstan.dev/v1alpha1
            kind: InferenceService
            metadata: {name: iris}
            spec:
              model: models:/iris@champion
              canary: {model: models:/iris/2, trafficPercent: 50}
            """, Ct);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var context = new CliContext(CliContext.CreatePlainConsole(TextWriter.Synchronized(stdout), 250), CliContext.CreatePlainConsole(TextWriter.Synchronized(stderr), 250), name => home.Environment.TryGetValue(name, out var v) ? v : null);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var running = CapstanCli.RunAsync(["run", "-f", file], context, stop.Token);

        Match url = Match.Empty;
        for (var i = 0; i < 1200 && !url.Success && !running.IsCompleted; i++)
        {
            await Task.Delay(100, Ct);
            url = Regex.Match(stdout.ToString(), @"(http://127\.0\.0\.1:\d+)/v2/models/iris/infer");
        }

        Assert.True(url.Success, $"no URL printed; stdout: {stdout} stderr: {stderr}");
        using var http = new HttpClient();
        var versions = new HashSet<string>();
        for (var i = 0; i < 60 && versions.Count < 2; i++)
        {
            versions.Add((await InferAsync(http, url.Groups[1].Value)).Version);
        }

        Assert.Equal(["1", "2"], versions.Order());
        await stop.CancelAsync();
        var exit = await running;

        Assert.Equal(ExitCodes.Ok, exit);
        Assert.Contains("inferenceservice/iris stopped", stderr.ToString(), StringComparison.Ordinal);
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync($"{url.Groups[1].Value}/v2/health/ready", Ct));
    }

    [Fact]
    public async Task Serve_FileWithCanary_StartupLineShowsBothVersionsAndTheExecutionProvider()
    {
        using var home = new TempHome();
        var main = Path.Combine(home.Root, "iris.onnx");
        var canary = Path.Combine(home.Root, "iris-next.onnx");
        await File.WriteAllBytesAsync(main, Version(1), Ct);
        await File.WriteAllBytesAsync(canary, Version(2), Ct);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var context = new CliContext(CliContext.CreatePlainConsole(TextWriter.Synchronized(stdout), 250), CliContext.CreatePlainConsole(TextWriter.Synchronized(stderr), 250), name => home.Environment.TryGetValue(name, out var v) ? v : null);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var serving = CapstanCli.RunAsync(["serve", main, "--canary", canary, "--canary-percent", "25", "--intra-op-threads", "1", "--port", "0", "--grpc-port", "0"], context, stop.Token);

        for (var i = 0; i < 300 && !stdout.ToString().Contains("http://", StringComparison.Ordinal) && !serving.IsCompleted; i++)
        {
            await Task.Delay(50, Ct);
        }

        await stop.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await serving);
        var line = stdout.ToString().Split('\n')[0];
        Assert.Matches(@"^Serving iris version 1 \(75% default\), version 1-canary \(25% canary\) on http://127\.0\.0\.1:\d+ \(cpu: .+, 1 intra-op thread\)", line);
    }

    [Fact]
    public async Task Quickstart_FreshHome_ServesTheChampionAndShowsPredictionsOnnxRuntimeAgreesWith()
    {
        using var home = new TempHome();

        var result = await CliHarness.RunAsync(new Dictionary<string, string?>(), "quickstart", "--home", home.Root);

        Assert.True(result.ExitCode == ExitCodes.Ok, result.Error);
        Assert.Contains("Predictions", result.Out, StringComparison.Ordinal);
        Assert.Matches(@"Serving iris-classifier version 1 \(cpu: .+\) on http://127\.0\.0\.1:\d+", result.Error);
        var rows = result.Out.Split('\n')
            .Select(line => line.Split('│', StringSplitOptions.TrimEntries))
            .Where(cells => cells.Length == 9 && double.TryParse(cells[1], System.Globalization.CultureInfo.InvariantCulture, out _))
            .Select(cells => (Features: cells[1..5].Select(c => float.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).ToArray(), Actual: cells[5], Predicted: cells[6], Probability: cells[7]))
            .ToList();
        Assert.Equal(["setosa", "versicolor", "virginica"], rows.Select(r => r.Actual));

        // The same rows through ONNX Runtime directly, on the registered model file.
        await using var backend = await Backend.OpenEmbeddedAsync(new Core.CapstanHome(home.Root), Ct);
        var champion = await backend.Metadata.GetModelVersionByAliasAsync("iris-classifier", "champion", Ct);
        var bytes = new MemoryStream();
        await using (var download = await backend.Artifacts.OpenReadAsync(Core.Artifacts.ArtifactUri.ToStorePath(champion.Source) + "/model.onnx", Ct))
        {
            await download.CopyToAsync(bytes, Ct);
        }

        using var session = new InferenceSession(bytes.ToArray());
        string[] columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
        var inputs = session.InputMetadata.Keys
            .Select(name => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(rows.Select(r => r.Features[Array.IndexOf(columns, name)]).ToArray(), [rows.Count, 1])))
            .ToList();
        using var outputs = session.Run(inputs);
        var labels = outputs.Single(o => o.Name == "label").AsEnumerable<string>().ToList();
        Assert.Equal(labels, rows.Select(r => r.Predicted));
        Assert.All(rows, r => Assert.EndsWith("%", r.Probability, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Get_AppliedExample_ShowsDefaultsInYamlAndTheServiceInTheTable()
    {
        using var home = new TempHome();
        var apply = await CliHarness.RunAsync(home.Environment, "apply", "-f", Path.Combine(AppContext.BaseDirectory, "examples", "inferenceservice-iris.yaml"));
        Assert.True(apply.ExitCode == 0, apply.Error);

        var yaml = await CliHarness.RunAsync(home.Environment, "get", "isvc", "iris", "-o", "yaml");
        var table = await CliHarness.RunAsync(home.Environment, "get", "isvc");

        Assert.Equal(0, yaml.ExitCode);
        Assert.Contains("modelName: iris\n", yaml.Out, StringComparison.Ordinal);
        Assert.Contains("port: 8080\n", yaml.Out, StringComparison.Ordinal);
        Assert.Contains("grpcPort: 8081\n", yaml.Out, StringComparison.Ordinal);
        Assert.Contains("trafficPercent: 10\n", yaml.Out, StringComparison.Ordinal);
        Assert.Contains("TRAFFIC", table.Out, StringComparison.Ordinal);
        Assert.Contains("iris", table.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InferenceService_SpecChanges_CanaryIsReloadedInPlaceAndAnEnvChangeStartsANewServer()
    {
        using var home = new TempHome();
        await RegisterAsync(home.Root, 2);
        await using var app = await StartServerAsync(home.Root);
        var resources = app.Services.GetRequiredService<IResourceStore>();
        await resources.CreateAsync(Service("models:/iris/1"), Ct);
        var ready = await WaitAsync(resources, s => s.Status?.Phase == InferenceServicePhase.Ready, "Ready");
        var (url, workloadId) = (ready.Status!.Url!, ready.Status.WorkloadId!);

        var withCanary = await resources.GetAsync<InferenceService>("default", "iris", Ct);
        withCanary.Spec.Canary = new CanarySpec { Model = "models:/iris/2", TrafficPercent = 50 };
        await resources.UpdateAsync(withCanary, Ct);
        var split = await WaitAsync(resources, s => s.Status?.Traffic?.Count == 2 && s.Status.Phase == InferenceServicePhase.Ready, "the canary");

        Assert.Equal((url, workloadId), (split.Status!.Url, split.Status.WorkloadId));
        Assert.Equal(["default:1:50", "canary:2:50"], split.Status.Traffic!.Select(t => $"{t.Tag}:{t.Version}:{t.Percent}"));
        using var http = new HttpClient();
        var versions = new HashSet<string>();
        for (var i = 0; i < 60 && versions.Count < 2; i++)
        {
            versions.Add((await InferAsync(http, url)).Version);
        }

        Assert.Equal(["1", "2"], versions.Order());

        var withEnv = await resources.GetAsync<InferenceService>("default", "iris", Ct);
        withEnv.Spec.Env = [new k8s.Models.V1EnvVar { Name = "DOTNET_gcServer", Value = "0" }];
        await resources.UpdateAsync(withEnv, Ct);
        var restarted = await WaitAsync(resources, s => s.Status?.Restarts == 1 && s.Status.Phase == InferenceServicePhase.Ready, "the new server");

        Assert.NotEqual(workloadId, restarted.Status!.WorkloadId);
        Assert.Equal(2, restarted.Status.Traffic!.Count);
        Assert.Equal(WorkloadReasons.Stopped, (await app.Services.GetRequiredService<IWorkloadRuntime>().GetStatusAsync(workloadId, Ct))!.Reason);
        Assert.Contains((await InferAsync(http, restarted.Status.Url!)).Version, new[] { "1", "2" });
        await DeleteAndWaitStoppedAsync(app, restarted.Status.WorkloadId!);
    }
}
