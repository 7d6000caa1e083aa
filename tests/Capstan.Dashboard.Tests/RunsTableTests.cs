using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Capstan.Dashboard.Tests;

/// <summary>An experiment's runs as a table: rows, sorting, the API's filter grammar, columns, paging, escaping.</summary>
public sealed class RunsTableTests(DashboardFixture fixture)
{
    private async Task<string> SeedAsync(int runs)
    {
        var experimentId = await fixture.CreateExperimentAsync("table-" + Guid.NewGuid().ToString("N")[..8]);
        for (var i = 0; i < runs; i++)
        {
            var runId = await fixture.CreateRunAsync(experimentId, $"run-{i:00}", 1_700_000_000_000 + (i * 1000), ("team", i % 3 == 0 ? "vision" : "nlp"));
            var acc = i / 100.0;
            await fixture.LogAsync(
                runId,
                [("acc", acc, 0), ("loss", 1 - acc, 0)],
                [("lr", i % 2 == 0 ? "0.01" : "0.1"), ("seed", "7")]);
            await fixture.FinishAsync(runId);
        }

        return experimentId;
    }

    private static ILocator FirstRunName(IPage page) => page.Locator(".run-row").First.Locator("td").Nth(1);

    [Fact]
    public async Task RunsTable_ThirtyRuns_ShowsEveryRowWithMetricAndParamColumns()
    {
        var experimentId = await SeedAsync(30);
        await using var dashboard = await fixture.OpenAsync($"/experiments/{experimentId}");
        var page = dashboard.Page;

        await Expect(page.Locator(".run-row")).ToHaveCountAsync(30);
        await Expect(page.Locator("th[data-order='metrics.acc']")).ToBeVisibleAsync();
        await Expect(page.Locator("th[data-order='params.lr']")).ToBeVisibleAsync();
        await Expect(page.Locator("#runs-status")).ToHaveTextAsync("Runs 1–30");

        // The newest run first, as MLflow orders a search, with its metric value in the row.
        await Expect(FirstRunName(page)).ToHaveTextAsync("run-29");
        await Expect(page.Locator(".run-row").First).ToContainTextAsync("0.29");
        await dashboard.ScreenshotAsync(fixture, "runs-table");
        dashboard.AssertHealthy();
    }

    [Fact]
    public async Task RunsTable_ClickMetricHeader_SortsDescendingThenAscending()
    {
        var experimentId = await SeedAsync(12);
        await using var dashboard = await fixture.OpenAsync($"/experiments/{experimentId}");
        var page = dashboard.Page;
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(12);

        await page.Locator("th[data-order='metrics.loss']").ClickAsync();
        await Expect(FirstRunName(page)).ToHaveTextAsync("run-00");
        await Expect(page.Locator("th[data-order='metrics.loss']")).ToContainTextAsync("▼");

        await page.Locator("th[data-order='metrics.loss']").ClickAsync();
        await Expect(FirstRunName(page)).ToHaveTextAsync("run-11");
        await Expect(page.Locator("th[data-order='metrics.loss']")).ToContainTextAsync("▲");
        dashboard.AssertHealthy();
    }

    [Fact]
    public async Task RunsTable_FilterWithApiGrammar_ShowsOnlyMatchingRuns()
    {
        var experimentId = await SeedAsync(30);
        await using var dashboard = await fixture.OpenAsync($"/experiments/{experimentId}");
        var page = dashboard.Page;
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(30);

        await page.GetByLabel("Filter runs").FillAsync("metrics.acc > 0.2 and params.lr = '0.01'");
        await page.GetByLabel("Filter runs").PressAsync("Enter");

        // Runs 21..29 with an even index: 22, 24, 26, 28.
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(4);
        var names = await page.Locator(".run-row td:nth-child(2)").AllTextContentsAsync();
        Assert.Equal(["run-28", "run-26", "run-24", "run-22"], names);
        Assert.Contains("filter=", page.Url, StringComparison.Ordinal);
        await dashboard.ScreenshotAsync(fixture, "runs-table-filtered");
        dashboard.AssertHealthy();
    }

    [Fact]
    public async Task RunsTable_InvalidFilter_ShowsTheApiErrorAndNoRows()
    {
        var experimentId = await SeedAsync(3);
        await using var dashboard = await fixture.OpenAsync($"/experiments/{experimentId}");
        var page = dashboard.Page;
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(3);

        await page.GetByLabel("Filter runs").FillAsync("metrics.acc >>> 1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search", Exact = true }).ClickAsync();

        var error = page.GetByRole(AriaRole.Alert);
        await Expect(error).ToBeVisibleAsync();
        await Expect(error).ToContainTextAsync("Invalid search expression 'metrics.acc >>> 1'");
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(0);

        // Correcting it brings the rows back and clears the error.
        await page.GetByLabel("Filter runs").FillAsync("metrics.acc >= 0.01");
        await page.GetByLabel("Filter runs").PressAsync("Enter");
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(2);
        await Expect(error).ToBeHiddenAsync();
    }

    [Fact]
    public async Task RunsTable_ColumnChooser_AddsTagColumnWithValues()
    {
        var experimentId = await SeedAsync(6);
        await using var dashboard = await fixture.OpenAsync($"/experiments/{experimentId}");
        var page = dashboard.Page;
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(6);
        Assert.Equal(0, await page.Locator("th[data-order='tags.team']").CountAsync());

        await page.GetByText("Columns").ClickAsync();
        await page.Locator("input[data-kind='tags'][data-key='team']").CheckAsync();

        await Expect(page.Locator("th[data-order='tags.team']")).ToBeVisibleAsync();
        await Expect(page.Locator(".run-row").Filter(new() { HasText = "vision" })).ToHaveCountAsync(2);

        // Removing a metric column takes it out of the table.
        await page.Locator("input[data-kind='metrics'][data-key='loss']").UncheckAsync();
        await Expect(page.Locator("th[data-order='metrics.loss']")).ToHaveCountAsync(0);
        dashboard.AssertHealthy();
    }

    [Fact]
    public async Task RunsTable_SmallPages_NextShowsTheRest()
    {
        var experimentId = await SeedAsync(30);
        await using var dashboard = await fixture.OpenAsync($"/experiments/{experimentId}");
        var page = dashboard.Page;
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(30);

        await page.GetByLabel("Runs per page").SelectOptionAsync("25");
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(25);
        await page.GetByRole(AriaRole.Button, new() { Name = "Next ›" }).ClickAsync();
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(5);
        await Expect(page.Locator("#runs-status")).ToHaveTextAsync("Runs 26–30");
        await Expect(FirstRunName(page)).ToHaveTextAsync("run-04");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Next ›" })).ToBeDisabledAsync();
    }

    [Fact]
    public async Task RunsTable_HostileRunNameAndParam_AreShownAsText()
    {
        var experimentId = await fixture.CreateExperimentAsync("xss-" + Guid.NewGuid().ToString("N")[..8]);
        const string Name = "<img src=x onerror=\"window.__xss=1\">";
        var runId = await fixture.CreateRunAsync(experimentId, Name, 1_700_000_000_000);
        await fixture.LogAsync(runId, [("acc", 0.5, 0)], [("note", "<script>window.__xss=2</script>")]);

        await using var dashboard = await fixture.OpenAsync($"/experiments/{experimentId}");
        var page = dashboard.Page;
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = Name, Exact = true })).ToBeVisibleAsync();
        await Expect(page.Locator(".run-row")).ToContainTextAsync("<script>window.__xss=2</script>");
        Assert.Equal(0, await page.Locator("#runs-table img").CountAsync());

        await page.GetByRole(AriaRole.Link, new() { Name = Name, Exact = true }).ClickAsync();
        await Expect(page.Locator("h1")).ToContainTextAsync(Name);
        Assert.True(await page.EvaluateAsync<bool>("() => window.__xss === undefined"));
        dashboard.AssertHealthy();
    }
}
