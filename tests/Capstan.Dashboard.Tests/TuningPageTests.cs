using System.Globalization;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Capstan.Dashboard.Tests;

/// <summary>
/// Tuning trials as the Experiment reconciler (branch experiment) records them: runs tagged
/// mlflow.parentRunId under a parent run tagged capstan.experiment and capstan.experiment.objective.
/// </summary>
public sealed class TuningPageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task TuningPage_TrialsOfParentRun_MarksBestTrialAndDrawsPlotsAndParetoFront()
    {
        var experimentId = await fixture.CreateExperimentAsync("tuning-" + Guid.NewGuid().ToString("N")[..8]);
        var parentName = "search-" + Guid.NewGuid().ToString("N")[..6];
        var parentId = await fixture.CreateRunAsync(experimentId, parentName, 1_700_000_000_000, ("capstan.experiment", "default/search"), ("capstan.experiment.objective", "maximize accuracy, minimize cost"));
        var learningRates = new[] { 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0 };
        for (var i = 0; i < learningRates.Length; i++)
        {
            var lr = learningRates[i];
            var trialId = await fixture.CreateRunAsync(experimentId, $"trial-{i:00}", 1_700_000_001_000 + (i * 1000), ("mlflow.parentRunId", parentId));

            // Accuracy peaks at lr = 0.01 (trial-04); cost falls as lr grows, so several trials are Pareto-optimal.
            var accuracy = 0.95 - (Math.Abs(Math.Log10(lr) + 2) * 0.1);
            await fixture.LogAsync(
                trialId,
                [("accuracy", accuracy, 0), ("cost", 1.0 / (1 + (lr * 10)), 0)],
                [("lr", lr.ToString(CultureInfo.InvariantCulture)), ("layers", (i % 3 + 1).ToString(CultureInfo.InvariantCulture))]);
            await fixture.FinishAsync(trialId);
        }

        await using var dashboard = await fixture.OpenAsync("/tuning");
        var page = dashboard.Page;
        var study = page.Locator(".study-row").Filter(new() { HasText = parentName });
        await Expect(study).ToContainTextAsync("12");
        await study.GetByRole(AriaRole.Link, new() { Name = parentName }).ClickAsync();

        await Expect(page.Locator(".trial-row")).ToHaveCountAsync(12);
        await Expect(page.Locator("#best-trial")).ToContainTextAsync("trial-04");
        await Expect(page.Locator(".trial-row.best")).ToHaveCountAsync(1);
        await Expect(page.Locator(".trial-row").First).ToHaveClassAsync("trial-row best");
        await Expect(page.GetByLabel("Objective metric", new() { Exact = true })).ToHaveValueAsync("accuracy");
        await Expect(page.GetByLabel("Second objective", new() { Exact = true })).ToHaveValueAsync("cost");

        await Expect(page.Locator(".chart[data-key='parallel'][data-drawn]")).ToBeVisibleAsync();
        await Expect(page.Locator(".chart[data-key='objective'][data-drawn]")).ToBeVisibleAsync();
        await Expect(page.Locator(".chart[data-key='pareto'][data-drawn]")).ToBeVisibleAsync();
        Assert.True(await dashboard.InkedPixelsAsync(".chart[data-key='parallel'] canvas") > 2000, "the parallel-coordinates plot is blank");
        Assert.True(await dashboard.PixelsOfColourAsync(".chart[data-key='parallel'] canvas", 201, 42, 42) > 50, "the best trial's line is not drawn");

        // trial-04 (best accuracy) and trial-11 (lowest cost) are on the front; trial-00 is beaten by trial-04 on both.
        var pareto = page.Locator(".trial-row").Filter(new() { HasText = "●" });
        await Expect(pareto.Filter(new() { HasText = "trial-04" })).ToHaveCountAsync(1);
        await Expect(pareto.Filter(new() { HasText = "trial-11" })).ToHaveCountAsync(1);
        await Expect(pareto.Filter(new() { HasText = "trial-00" })).ToHaveCountAsync(0);
        await dashboard.ScreenshotAsync(fixture, "tuning");

        // Minimising the objective instead makes the worst-accuracy trial the best.
        await page.GetByLabel("Objective goal", new() { Exact = true }).SelectOptionAsync("minimize");
        await Expect(page.Locator("#best-trial")).ToContainTextAsync("trial-00");
        dashboard.AssertHealthy();
    }
}
