using Capstan.Core.Tracking;
using Capstan.Store.Sqlite;
using Microsoft.Data.Sqlite;

namespace Capstan.Store.Tests.Sqlite;

public sealed class MigrationAndDurabilityTests : StoreTestBase
{
    private List<(long Version, long AppliedAt)> AppliedMigrations()
    {
        using var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT version, applied_at FROM schema_migrations ORDER BY version";
        using var reader = command.ExecuteReader();
        var rows = new List<(long, long)>();
        while (reader.Read())
        {
            rows.Add((reader.GetInt64(0), reader.GetInt64(1)));
        }

        return rows;
    }

    [Fact]
    public async Task Reopen_ExistingDatabase_KeepsDataAndDoesNotRerunMigrations()
    {
        var experiment = await NewExperimentAsync("kept");
        var run = await NewRunAsync(experiment);
        await Store.LogBatchAsync(run.Info.RunId, new LogBatch([new Metric("loss", 0.5, 10, 1)], [new Param("lr", "0.1")]), Ct);
        var before = AppliedMigrations();

        await ReopenAsync();

        Assert.Equal(before, AppliedMigrations());
        Assert.Equal(SchemaMigrations.All.Select(m => (long)m.Version), before.Select(m => m.Version));
        var reloaded = await Store.GetRunAsync(run.Info.RunId, Ct);
        Assert.Equal(new Metric("loss", 0.5, 10, 1), Assert.Single(reloaded.Data.Metrics));
        Assert.Equal([new Param("lr", "0.1")], reloaded.Data.Params);
        Assert.Equal("kept", (await Store.GetExperimentAsync(experiment, Ct)).Name);
    }

    [Fact]
    public async Task Open_DatabaseMissingNewerMigration_AppliesOnlyTheMissingOne()
    {
        await Store.DisposeAsync();
        File.Delete(DatabasePath);
        await using (await SqliteMetadataStore.OpenAsync(DatabasePath, SchemaMigrations.All.Take(1).ToList(), Ct))
        {
        }

        Assert.Equal([1L], AppliedMigrations().Select(m => m.Version));
        var extra = new SchemaMigration(99, "test column", "ALTER TABLE runs ADD COLUMN test_note TEXT");
        await using (await SqliteMetadataStore.OpenAsync(DatabasePath, [.. SchemaMigrations.All, extra], Ct))
        {
        }

        Assert.Equal([.. SchemaMigrations.All.Select(m => (long)m.Version), 99L], AppliedMigrations().Select(m => m.Version));
        Store = await SqliteMetadataStore.OpenAsync(DatabasePath, Ct);
        Assert.Equal("Default", (await Store.GetExperimentAsync("0", Ct)).Name);
    }

    [Fact]
    public async Task Dispose_ThenReopen_CommittedWritesArePresent()
    {
        var run = await NewRunAsync("0");
        for (var i = 0; i < 50; i++)
        {
            await Store.LogBatchAsync(run.Info.RunId, new LogBatch([new Metric("m", i, i, i)]), Ct);
        }

        await Store.CreateRegisteredModelAsync(new Core.Registry.NewRegisteredModel("iris"), Ct);

        await ReopenAsync();

        var history = await Store.GetMetricHistoryAsync(run.Info.RunId, "m", cancellationToken: Ct);
        Assert.Equal(50, history.Items.Count);
        Assert.Equal("iris", (await Store.GetRegisteredModelAsync("iris", Ct)).Name);
    }

    [Fact]
    public async Task CommittedWrites_WithoutClosingTheStore_VisibleToASecondOpen()
    {
        // What a process killed with kill -9 leaves behind: a store that was never disposed.
        var run = await NewRunAsync("0");
        await Store.LogBatchAsync(run.Info.RunId, new LogBatch([new Metric("m", 1, 1, 1)], [new Param("p", "v")]), Ct);

        await using var second = await SqliteMetadataStore.OpenAsync(DatabasePath, Ct);
        var seen = await second.GetRunAsync(run.Info.RunId, Ct);

        Assert.Equal(new Metric("m", 1, 1, 1), Assert.Single(seen.Data.Metrics));
        Assert.Equal([new Param("p", "v")], seen.Data.Params);
    }

    [Fact]
    public async Task Like_IsCaseSensitive_WithBundledSqlite()
    {
        var run = await NewRunAsync("0", "Train-Final");

        var lower = await Store.SearchRunsAsync(new RunSearch(["0"], "run_name LIKE 'train%'"), Ct);
        var exact = await Store.SearchRunsAsync(new RunSearch(["0"], "run_name LIKE 'Train%'"), Ct);

        Assert.Empty(lower.Items);
        Assert.Equal(run.Info.RunId, Assert.Single(exact.Items).Info.RunId);
    }
}

public sealed class ConcurrencyTests : StoreTestBase
{
    [Fact]
    public async Task Reads_WhileAnotherWriterHoldsTheLock_DoNotWait()
    {
        var run = await NewRunAsync("0", "visible");
        await using var outside = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        await outside.OpenAsync(Ct);
        await using (var mode = outside.CreateCommand())
        {
            mode.CommandText = "PRAGMA journal_mode";
            Assert.Equal("wal", (string?)await mode.ExecuteScalarAsync(Ct));
        }

        await using var transaction = (SqliteTransaction)await outside.BeginTransactionAsync(Ct);
        await using (var insert = outside.CreateCommand())
        {
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (0, 'pending', 'x')";
            await insert.ExecuteNonQueryAsync(Ct);
        }

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var fetched = await Store.GetRunAsync(run.Info.RunId, Ct);
        var experiment = await Store.GetExperimentAsync("0", Ct);

        Assert.True(watch.ElapsedMilliseconds < 1000, $"read waited {watch.ElapsedMilliseconds} ms");
        Assert.Equal("visible", fetched.Info.RunName);
        Assert.DoesNotContain(experiment.Tags, t => t.Key == "pending");
        await transaction.RollbackAsync(Ct);
    }

    [Fact]
    public async Task GetMetricHistory_UnknownRun_NotFound() =>
        await AssertCapstanErrorAsync(Core.ErrorCode.ResourceDoesNotExist,
            () => Store.GetMetricHistoryAsync("feedface", "loss", cancellationToken: Ct));

    [Fact]
    public async Task UpdateRun_UnknownRun_NotFound() =>
        await AssertCapstanErrorAsync(Core.ErrorCode.ResourceDoesNotExist,
            () => Store.UpdateRunAsync("feedface", new RunUpdate(RunStatus.Finished), Ct));
}
