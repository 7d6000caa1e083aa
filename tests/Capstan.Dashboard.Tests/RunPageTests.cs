using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Capstan.Dashboard.Tests;

/// <summary>A run's page: its curves drawn, params and tags, artifacts previewed, live updates.</summary>
public sealed class RunPageTests(DashboardFixture fixture)
{
    // The first series colour of the dashboard's palette (#1f6fb2).
    private const int SeriesRed = 31, SeriesGreen = 111, SeriesBlue = 178;

    private async Task<string> SeedRunAsync(string name, bool finish = true)
    {
        var experimentId = await fixture.CreateExperimentAsync("run-" + Guid.NewGuid().ToString("N")[..8]);
        var runId = await fixture.CreateRunAsync(experimentId, name, 1_700_000_000_000, ("owner", "ada"));
        await fixture.LogAsync(
            runId,
            Enumerable.Range(0, 50).SelectMany(step => new[] { ("loss", 2.0 / (step + 1), (long)step), ("accuracy", 1 - (1.0 / (step + 2)), (long)step) }),
            [("lr", "0.01"), ("epochs", "50")]);
        if (finish)
        {
            await fixture.FinishAsync(runId);
        }

        return runId;
    }

    [Fact]
    public async Task RunPage_MetricHistory_DrawsTheCurvesWithParamsAndTags()
    {
        var runId = await SeedRunAsync("curves");
        await using var dashboard = await fixture.OpenAsync($"/runs/{runId}");
        var page = dashboard.Page;

        var loss = page.Locator(".chart[data-key='loss'][data-drawn]");
        await Expect(loss).ToBeVisibleAsync();
        await Expect(page.Locator(".chart[data-key='accuracy'][data-drawn]")).ToBeVisibleAsync();
        Assert.True(await dashboard.PixelsOfColourAsync(".chart[data-key='loss'] canvas", SeriesRed, SeriesGreen, SeriesBlue) > 100, "the loss curve has no pixels of its colour");
        await Expect(page.Locator("#params")).ToContainTextAsync("epochs");
        await Expect(page.Locator("#params")).ToContainTextAsync("0.01");
        await Expect(page.Locator("#tags")).ToContainTextAsync("ada");
        await Expect(page.Locator("h1")).ToContainTextAsync("Finished");
        await dashboard.ScreenshotAsync(fixture, "run");

        // Log scale and another x axis redraw the charts, still with the curve on them.
        await page.GetByLabel("Log scale").CheckAsync();
        await page.GetByLabel("X axis").SelectOptionAsync("relative");
        await Expect(loss).ToBeVisibleAsync();
        Assert.True(await dashboard.PixelsOfColourAsync(".chart[data-key='loss'] canvas", SeriesRed, SeriesGreen, SeriesBlue) > 100, "the log-scale curve has no pixels");

        // Finding a metric narrows the charts to it.
        await page.GetByLabel("Find a metric").FillAsync("acc");
        await Expect(page.Locator(".chart")).ToHaveCountAsync(1);
        dashboard.AssertHealthy();
    }

    [Fact]
    public async Task RunPage_ArtifactsBrowser_PreviewsTextAndImages()
    {
        var runId = await SeedRunAsync("artifacts");
        await fixture.SendAsync(HttpMethod.Put, $"/api/v1/runs/{runId}/artifacts/notes/readme.txt", bytes: "hello <b>artifacts</b>\nline two"u8.ToArray(), contentType: "application/octet-stream");
        await fixture.SendAsync(HttpMethod.Put, $"/api/v1/runs/{runId}/artifacts/plot.png", bytes: Convert.FromBase64String(OnePixelPng), contentType: "application/octet-stream");

        await using var dashboard = await fixture.OpenAsync($"/runs/{runId}");
        var page = dashboard.Page;
        await page.GetByRole(AriaRole.Button, new() { Name = "notes/" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "readme.txt" }).ClickAsync();
        await Expect(page.Locator("#artifact-preview pre")).ToHaveTextAsync("hello <b>artifacts</b>\nline two");

        await page.GetByRole(AriaRole.Button, new() { Name = "root" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "plot.png" }).ClickAsync();
        var image = page.Locator("#artifact-preview img");
        await Expect(image).ToBeVisibleAsync();
        await page.WaitForFunctionAsync("() => document.querySelector('#artifact-preview img')?.naturalWidth === 1");
        dashboard.AssertHealthy();
    }

    [Fact]
    public async Task RunPage_RunningRun_ShowsNewMetricWithoutReload()
    {
        var runId = await SeedRunAsync("live", finish: false);
        await using var dashboard = await fixture.OpenAsync($"/runs/{runId}");
        var page = dashboard.Page;
        await Expect(page.Locator(".chart[data-key='loss'][data-drawn]")).ToBeVisibleAsync();
        await Expect(page.Locator("h1")).ToContainTextAsync("Running");

        await fixture.LogAsync(runId, [("val_loss", 0.7, 0), ("val_loss", 0.5, 1)]);
        await fixture.FinishAsync(runId);

        await Expect(page.Locator(".chart[data-key='val_loss'][data-drawn]")).ToBeVisibleAsync();
        await Expect(page.Locator("h1")).ToContainTextAsync("Finished");
        dashboard.AssertHealthy();
    }

    private const string OnePixelPng = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
}
