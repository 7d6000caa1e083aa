using Capstan.Client;
using Capstan.Core;
using Capstan.Core.Tracking;
using Capstan.Store.Sqlite;

namespace Capstan.Cli.Tests;

/// <summary>RunLogger against the embedded SQLite store.</summary>
public sealed class RunLoggerTests
{
    [Fact]
    public async Task RunLogger_OverBatchLimits_EverythingWrittenInValidBatches()
    {
        var ct = TestContext.Current.CancellationToken;
        using var home = new TempHome();
        await using var store = await SqliteMetadataStore.OpenAsync(Path.Combine(home.Root, "capstan.db"), ct);
        var experiment = await store.CreateExperimentAsync(new NewExperiment("limits"), ct);
        var run = await store.CreateRunAsync(new NewRun(experiment.ExperimentId), ct);

        await using (var logger = new RunLogger(store, run.Info.RunId))
        {
            for (var i = 0; i < 250; i++)
            {
                logger.LogParam($"p{i}", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                logger.SetTag($"t{i}", "first");
                logger.SetTag($"t{i}", "last");
            }

            for (var step = 0; step < 2500; step++)
            {
                logger.LogMetric("loss", step, step);
            }

            await logger.FlushAsync(ct);
            Assert.Equal(0, logger.PendingCount);
        }

        var stored = await store.GetRunAsync(run.Info.RunId, ct);
        Assert.Equal(250, stored.Data.Params.Count);
        Assert.All(stored.Data.Tags.Where(t => t.Key.StartsWith('t')), t => Assert.Equal("last", t.Value));
        Assert.Equal(2500, (await store.GetMetricHistoryAsync(run.Info.RunId, "loss", cancellationToken: ct)).Items.Count);
    }

    [Fact]
    public async Task RunLogger_UnknownRun_ErrorSurfacesOnDispose()
    {
        var ct = TestContext.Current.CancellationToken;
        using var home = new TempHome();
        await using var store = await SqliteMetadataStore.OpenAsync(Path.Combine(home.Root, "capstan.db"), ct);
        var logger = new RunLogger(store, "0123456789abcdef0123456789abcdef");

        logger.LogMetric("loss", 1.0, 0);
        var error = await Assert.ThrowsAsync<CapstanException>(async () => await logger.DisposeAsync());

        Assert.Equal(ErrorCode.ResourceDoesNotExist, error.Code);
        Assert.Throws<ObjectDisposedException>(() => logger.LogMetric("loss", 2.0, 1));
    }
}
