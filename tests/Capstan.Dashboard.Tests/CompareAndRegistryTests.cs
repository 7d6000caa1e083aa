using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Capstan.Dashboard.Tests;

/// <summary>Comparing runs picked in the table, and the model registry with lineage.</summary>
public sealed class CompareAndRegistryTests(DashboardFixture fixture)
{
    [Fact]
    public async Task ComparePage_TwoRunsPickedInTable_ShowsDifferingParamsAndOverlaidCurves()
    {
        var experimentId = await fixture.CreateExperimentAsync("compare-" + Guid.NewGuid().ToString("N")[..8]);
        foreach (var (name, lr, offset) in new[] { ("slow", "0.001", 0), ("fast", "0.1", 1), ("other", "0.05", 2) })
        {
            var runId = await fixture.CreateRunAsync(experimentId, name, 1_700_000_000_000 + offset);
            await fixture.LogAsync(runId, Enumerable.Range(0, 20).Select(s => ("loss", (1.0 + offset) / (s + 1), (long)s)), [("lr", lr), ("seed", "1")]);
        }

        await using var dashboard = await fixture.OpenAsync($"/experiments/{experimentId}");
        var page = dashboard.Page;
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(3);
        await page.GetByLabel("Select slow").CheckAsync();
        await page.GetByLabel("Select fast").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Compare selected" }).ClickAsync();

        await Expect(page.Locator("h1")).ToHaveTextAsync("Compare 2 runs");
        var differing = page.Locator("#param-diff .param-row");
        await Expect(differing).ToHaveCountAsync(1);
        await Expect(differing).ToContainTextAsync("lr");
        await Expect(differing).ToContainTextAsync("0.001");
        await Expect(differing).ToContainTextAsync("0.1");

        // The loss chart overlays both runs: one legend entry each beside the x axis.
        var chart = page.Locator(".chart[data-key='loss'][data-drawn]");
        await Expect(chart).ToBeVisibleAsync();
        await Expect(chart.Locator(".u-legend .u-series")).ToHaveCountAsync(3);
        await Expect(chart.Locator(".u-legend")).ToContainTextAsync("slow");
        await Expect(chart.Locator(".u-legend")).ToContainTextAsync("fast");
        Assert.True(await dashboard.PixelsOfColourAsync(".chart[data-key='loss'] canvas", 217, 72, 15) > 30, "the second run's curve is not drawn");
        await dashboard.ScreenshotAsync(fixture, "compare");

        await page.GetByLabel("Show all parameters").CheckAsync();
        await Expect(page.Locator("#param-diff .param-row")).ToHaveCountAsync(2);
        dashboard.AssertHealthy();
    }

    [Fact]
    public async Task ModelPage_VersionWithAlias_ShowsRunAndDatasetDigest()
    {
        var experimentId = await fixture.CreateExperimentAsync("registry-" + Guid.NewGuid().ToString("N")[..8]);
        var runId = await fixture.CreateRunAsync(experimentId, "trained-model", 1_700_000_000_000);
        await fixture.SendAsync(HttpMethod.Post, $"/api/v1/runs/{runId}/inputs", new
        {
            datasets = new[] { new { dataset = new { name = "iris", digest = "d1g35t42", sourceType = "local", source = "iris.csv" }, tags = Array.Empty<object>() } },
        });
        var model = "model-" + Guid.NewGuid().ToString("N")[..6];
        await fixture.SendAsync(HttpMethod.Post, "/api/v1/models", new { name = model, description = "A classifier." });
        await fixture.SendAsync(HttpMethod.Post, $"/api/v1/models/{model}/versions", new { name = model, source = $"runs:/{runId}/model", runId });
        await fixture.SendAsync(HttpMethod.Post, $"/api/v1/models/{model}/versions", new { name = model, source = "file:///elsewhere" });
        await fixture.SendAsync(HttpMethod.Put, $"/api/v1/models/{model}/aliases/champion", new { version = 1 });

        await using var dashboard = await fixture.OpenAsync("/models");
        var page = dashboard.Page;
        var row = page.Locator(".model-row").Filter(new() { HasText = model });
        await Expect(row).ToContainTextAsync("@champion → v1");
        await row.GetByRole(AriaRole.Link, new() { Name = model }).ClickAsync();

        await Expect(page.Locator(".version-row")).ToHaveCountAsync(2);
        var first = page.Locator(".version-row").Filter(new() { HasText = "v1" }).First;
        await Expect(first).ToContainTextAsync("@champion");
        await Expect(first).ToContainTextAsync("d1g35t42");
        await Expect(first.GetByRole(AriaRole.Link, new() { Name = "trained-model" })).ToBeVisibleAsync();
        await dashboard.ScreenshotAsync(fixture, "registry");

        await first.GetByRole(AriaRole.Link, new() { Name = "trained-model" }).ClickAsync();
        await Expect(page.Locator("h1")).ToContainTextAsync("trained-model");
        dashboard.AssertHealthy();
    }
}
