using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.Core.Resources;
using Capstan.Serving.Hosting;
using Capstan.Serving.Models;
using Capstan.Testing;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Capstan.Dashboard.Tests;

/// <summary>Jobs and services through the resource API: status, conditions, events and the live log.</summary>
public sealed class ResourcePagesTests(DashboardFixture fixture)
{
    [Fact]
    public async Task JobPage_TrainJobThatRan_ShowsPhaseConditionsEventsAndLog()
    {
        fixture.RequireBrowser();
        var name = "dash-job-" + Guid.NewGuid().ToString("N")[..6];
        var yaml = $$"""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata:
              name: {{name}}
            spec:
              command: [/bin/sh, -c]
              args:
                - |
                  echo "hello from the dashboard job"
                  echo "loss=0.25"
              restartPolicy: Never
            """;
        await fixture.SendAsync(HttpMethod.Post, "/api/v1/apply", yaml, contentType: "application/yaml");

        await using var dashboard = await fixture.OpenAsync("/jobs");
        var page = dashboard.Page;
        var row = page.Locator(".resource-row").Filter(new() { HasText = name });
        await Expect(row).ToContainTextAsync("Succeeded", new() { Timeout = 30_000 });
        await row.GetByRole(AriaRole.Link, new() { Name = name }).ClickAsync();

        await Expect(page.Locator("h1")).ToContainTextAsync("Succeeded");
        await Expect(page.Locator("#conditions .condition-row").First).ToBeVisibleAsync();
        await Expect(page.Locator("#events .event-row").First).ToBeVisibleAsync();
        await Expect(page.Locator("#log")).ToContainTextAsync("hello from the dashboard job");
        await dashboard.ScreenshotAsync(fixture, "job");

        // The job's run is linked, and its page shows the stdout metric and the job's log.
        await page.Locator("#status").GetByRole(AriaRole.Link).First.ClickAsync();
        await Expect(page.Locator(".chart[data-key='loss'][data-drawn]")).ToBeVisibleAsync();
        await Expect(page.Locator("#job-log")).ToContainTextAsync("hello from the dashboard job");
        dashboard.AssertHealthy();
    }

    [Fact]
    public async Task ServicePage_ServedModel_ShowsRequestRatePerVersionAndLatencyPercentiles()
    {
        fixture.RequireBrowser();
        await using var dashboard = await fixture.OpenAsync("/services");
        await Expect(dashboard.Page.Locator("#inferenceservices")).ToContainTextAsync("No inference services.");

        // A real inference server with two versions; the service's status points at it as the control plane's would.
        using var repository = ServingServer.CreateRepository();
        var options = new ModelOptions { IntraOpThreads = 1 };
        repository.Load("iris", "1", ModelSource.FromBytes(OnnxModelBuilder.Mlp(4, 8, 3, seed: 1)), options);
        repository.Load("iris", "2", ModelSource.FromBytes(OnnxModelBuilder.Mlp(4, 8, 3, seed: 2)), options, makeDefault: false);
        await using var server = ServingServer.Build(new ServingOptions { Port = 0, GrpcPort = 0 }, repository);
        await server.StartAsync(TestContext.Current.CancellationToken);
        var url = server.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var name = "dash-svc-" + Guid.NewGuid().ToString("N")[..6];
        await fixture.SendAsync(HttpMethod.Post, "/api/v1/apply", $$"""
            apiVersion: capstan.dev/v1alpha1
            kind: InferenceService
            metadata:
              name: {{name}}
            spec:
              model: models:/iris@champion
            """, contentType: "application/yaml");
        try
        {
            await SetStatusUrlAsync(name, url);
            using var http = new HttpClient { BaseAddress = new Uri(url) };
            using var stopLoad = new CancellationTokenSource();
            var load = Task.Run(async () =>
            {
                // Three requests to version 1 for each one to version 2, as a 25 % canary would split them.
                for (var i = 0; !stopLoad.IsCancellationRequested; i++)
                {
                    var path = i % 4 == 3 ? "/v2/models/iris/versions/2/infer" : "/v2/models/iris/versions/1/infer";
                    using var body = new StringContent("""{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}""", Encoding.UTF8, "application/json");
                    using var response = await http.PostAsync(path, body, stopLoad.Token);
                    response.EnsureSuccessStatusCode();
                    await Task.Delay(5, stopLoad.Token);
                }
            });

            var page = dashboard.Page;
            await page.Locator(".resource-row").Filter(new() { HasText = name }).GetByRole(AriaRole.Link, new() { Name = name }).ClickAsync();
            var v1 = page.Locator("#serving-figures .serving-row").Filter(new() { HasText = "iris v1" });
            var v2 = page.Locator("#serving-figures .serving-row").Filter(new() { HasText = "iris v2" });
            await Expect(v1).ToBeVisibleAsync(new() { Timeout = 20_000 });
            await Expect(v2).ToBeVisibleAsync();
            await Expect(page.Locator(".chart[data-key='Requests per second'][data-drawn]")).ToBeVisibleAsync();
            await Expect(page.Locator(".chart[data-key='Latency (ms)'][data-drawn]")).ToBeVisibleAsync();

            // Wait for an interval that saw both versions, then check what the rows say against the load sent.
            await page.WaitForFunctionAsync("""() => [...document.querySelectorAll('#serving-figures .serving-row')].every(r => parseFloat(r.children[1].textContent) > 0)""", null, new() { Timeout = 20_000 });
            var rate1 = await RateAsync(v1);
            var rate2 = await RateAsync(v2);
            Assert.True(rate1 > rate2, $"version 1 takes 3 of 4 requests, yet shows {rate1}/s against {rate2}/s");
            Assert.Equal("0 %", (await v1.Locator("td").Nth(2).TextContentAsync())?.Trim());
            Assert.True(double.TryParse((await v1.Locator("td").Nth(3).TextContentAsync())?.Trim(), CultureInfo.InvariantCulture, out var p50) && p50 > 0, "p50 is shown in ms");
            await dashboard.ScreenshotAsync(fixture, "service");
            await stopLoad.CancelAsync();
            await load.ContinueWith(_ => { }, TaskScheduler.Default);
            dashboard.AssertHealthy();
        }
        finally
        {
            await fixture.SendAsync(HttpMethod.Delete, $"/api/v1/namespaces/default/inferenceservices/{name}");
        }
    }

    private static async Task<double> RateAsync(ILocator row) =>
        double.Parse((await row.Locator("td").Nth(1).TextContentAsync())!.Trim(), CultureInfo.InvariantCulture);

    /// <summary>Writes status.url through the status subresource, retrying on 409 while the control plane writes its own status.</summary>
    private async Task SetStatusUrlAsync(string name, string url)
    {
        for (var attempt = 0; ; attempt++)
        {
            var service = (await fixture.SendAsync(HttpMethod.Get, $"/api/v1/namespaces/default/inferenceservices/{name}"))!.AsObject();
            var status = service["status"] as JsonObject ?? [];
            status["url"] = url;
            service["status"] = status.DeepClone();
            using var request = new HttpRequestMessage(HttpMethod.Put, $"/api/v1/namespaces/default/inferenceservices/{name}/status")
            {
                Content = new StringContent(service.ToJsonString(), Encoding.UTF8, "application/json"),
            };
            using var response = await fixture.Http.SendAsync(request);
            if (response.IsSuccessStatusCode)
            {
                return;
            }

            Assert.True(response.StatusCode == System.Net.HttpStatusCode.Conflict && attempt < 20, $"status write answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            await Task.Delay(50);
        }
    }
}
