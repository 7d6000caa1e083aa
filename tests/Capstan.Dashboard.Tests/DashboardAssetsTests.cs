using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Capstan.Dashboard.Tests;

/// <summary>What the server sends for the dashboard: its own files only, a self-only CSP, revalidation, and the API's errors.</summary>
public sealed partial class DashboardAssetsTests(DashboardFixture fixture)
{
    [Fact]
    public async Task Root_Get_ServesTheDashboardWithSelfOnlyContentSecurityPolicy()
    {
        using var response = await fixture.Http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var csp = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'self'", csp, StringComparison.Ordinal);
        Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe", csp, StringComparison.Ordinal);
        Assert.Contains("<main id=\"view\">", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Assets_EveryFileTheDashboardReferences_IsServedFromTheServer()
    {
        var index = await fixture.Http.GetStringAsync("/");
        var referenced = AssetReference().Matches(index).Select(m => m.Groups[1].Value).ToList();
        Assert.Contains("/assets/vendor/uPlot.iife.min.js", referenced);
        var modules = new Queue<string>(referenced.Where(r => r.EndsWith(".js", StringComparison.Ordinal)));
        var seen = new HashSet<string>(referenced);
        while (modules.TryDequeue(out var module))
        {
            var text = await fixture.Http.GetStringAsync(module);
            foreach (Match import in ModuleImport().Matches(text))
            {
                var path = "/assets/js/" + import.Groups[1].Value;
                if (seen.Add(path))
                {
                    modules.Enqueue(path);
                }
            }
        }

        Assert.Contains("/assets/js/charts.js", seen);
        foreach (var path in seen)
        {
            using var response = await fixture.Http.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path} answered {(int)response.StatusCode}");
        }
    }

    [Fact]
    public async Task Assets_SameETag_AnswersNotModified()
    {
        using var first = await fixture.Http.GetAsync("/assets/js/app.js");
        var etag = first.Headers.ETag;
        Assert.NotNull(etag);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/assets/js/app.js");
        request.Headers.IfNoneMatch.Add(etag);
        using var second = await fixture.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotModified, second.StatusCode);
    }

    [Fact]
    public void VendoredChartLibrary_IsTheVersionInPackageLock()
    {
        var folder = Path.Combine(Directory.GetParent(fixture.Screenshots)!.Parent!.FullName, "src", "Capstan.Server", "Dashboard");
        using var lockFile = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "package-lock.json")));
        var locked = lockFile.RootElement.GetProperty("packages").GetProperty("node_modules/uplot").GetProperty("version").GetString();
        using var package = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "package.json")));
        Assert.Equal(locked, package.RootElement.GetProperty("dependencies").GetProperty("uplot").GetString());

        // The minified file names its version in its first line; `npm run vendor` refreshes it after a bump.
        var header = File.ReadLines(Path.Combine(folder, "wwwroot", "vendor", "uPlot.iife.min.js")).First();
        Assert.Contains($"(v{locked})", header, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunTable_BadFilter_IsProblemDetailsNaming400()
    {
        var experimentId = await fixture.CreateExperimentAsync("api-" + Guid.NewGuid().ToString("N")[..8]);
        using var response = await fixture.Http.PostAsync("/api/v1/dashboard/run-table", new StringContent(
            $$"""{"experimentIds":["{{experimentId}}"],"filter":"metrics.acc >>> 1"}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.False(string.IsNullOrWhiteSpace(body.RootElement.GetProperty("detail").GetString()));
    }

    [Fact]
    public async Task RunTable_ChosenColumns_ReturnsOnlyThoseValuesInOrderAndAnETag()
    {
        var experimentId = await fixture.CreateExperimentAsync("api-" + Guid.NewGuid().ToString("N")[..8]);
        var runId = await fixture.CreateRunAsync(experimentId, "one", 1_700_000_000_000);
        await fixture.LogAsync(runId, [("a", 1, 0), ("b", 2, 0), ("c", 3, 0)], [("p", "x")]);
        var query = $$"""{"experimentIds":["{{experimentId}}"],"metrics":["c","a","missing"],"params":[],"tags":[]}""";
        using var response = await fixture.Http.PostAsync("/api/v1/dashboard/run-table", new StringContent(query, System.Text.Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var row = body.RootElement.GetProperty("rows")[0];
        Assert.Equal("[3,1,null]", row.GetProperty("metrics").GetRawText());
        Assert.Equal(0, row.GetProperty("params").GetArrayLength());
        Assert.Equal(["a", "b", "c"], body.RootElement.GetProperty("pageKeys").GetProperty("metrics").EnumerateArray().Select(e => e.GetString()));

        using var again = new HttpRequestMessage(HttpMethod.Post, "/api/v1/dashboard/run-table") { Content = new StringContent(query, System.Text.Encoding.UTF8, "application/json") };
        again.Headers.IfNoneMatch.Add(response.Headers.ETag!);
        using var unchanged = await fixture.Http.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, unchanged.StatusCode);
    }

    [Fact]
    public async Task MetricSeries_LongerThanMaxPoints_IsThinnedEvenlyKeepingTheLastPoint()
    {
        var experimentId = await fixture.CreateExperimentAsync("api-" + Guid.NewGuid().ToString("N")[..8]);
        var runId = await fixture.CreateRunAsync(experimentId, "long", 1_700_000_000_000);
        await fixture.LogAsync(runId, Enumerable.Range(0, 1000).Select(step => ("loss", 1.0 / (step + 1), (long)step)));
        using var response = await fixture.Http.PostAsync("/api/v1/dashboard/metric-series", new StringContent(
            $$"""{"runIds":["{{runId}}"],"maxPoints":100}""", System.Text.Encoding.UTF8, "application/json"));
        response.EnsureSuccessStatusCode();
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var series = Assert.Single(body.RootElement.GetProperty("series").EnumerateArray());
        Assert.Equal("loss", series.GetProperty("key").GetString());
        Assert.Equal(1000, series.GetProperty("totalPoints").GetInt32());
        var steps = series.GetProperty("steps").EnumerateArray().Select(e => e.GetInt64()).ToList();
        Assert.Equal(100, steps.Count);
        Assert.Equal(0, steps[0]);
        Assert.Equal(10, steps[1]);
        Assert.Equal(999, steps[^1]);
        Assert.Equal(0.001, series.GetProperty("values")[99].GetDouble(), 9);
    }

    [Fact]
    public async Task ExperimentsPage_WithExperiment_ListsItAndLinksToItsRuns()
    {
        var name = "listed-" + Guid.NewGuid().ToString("N")[..8];
        var experimentId = await fixture.CreateExperimentAsync(name);
        await fixture.CreateRunAsync(experimentId, "only-run", 1_700_000_000_000);
        await using var dashboard = await fixture.OpenAsync("/");
        var page = dashboard.Page;
        await Expect(page.Locator(".experiment-row").Filter(new() { HasText = name })).ToBeVisibleAsync();
        await dashboard.ScreenshotAsync(fixture, "experiments");
        await page.GetByRole(AriaRole.Link, new() { Name = name, Exact = true }).ClickAsync();
        await Expect(page.Locator(".run-row")).ToHaveCountAsync(1);
        await Expect(page.Locator("h1")).ToContainTextAsync(name);
        dashboard.AssertHealthy();
    }

    [GeneratedRegex("(?:src|href)=\"(/assets/[^\"]+)\"")]
    private static partial Regex AssetReference();

    [GeneratedRegex("from '\\./([a-z]+\\.js)'")]
    private static partial Regex ModuleImport();
}
