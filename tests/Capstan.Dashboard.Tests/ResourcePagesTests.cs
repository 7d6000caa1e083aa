using Capstan.Core.Resources;
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
    public async Task ServicesPage_ListsServicesOrSaysTheKindIsNotRunHere()
    {
        await using var dashboard = await fixture.OpenAsync("/services");
        var card = dashboard.Page.Locator("#inferenceservices");
        if (ResourceKinds.TypeOf("InferenceService") is null)
        {
            await Expect(card).ToContainTextAsync("does not run InferenceService resources yet");
        }
        else
        {
            await Expect(card).ToContainTextAsync("No inference services.");
        }

        dashboard.AssertHealthy();
    }
}
