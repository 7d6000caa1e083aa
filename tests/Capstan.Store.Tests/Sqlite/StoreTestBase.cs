using Capstan.Core;
using Capstan.Core.Tracking;
using Capstan.Store.Sqlite;

namespace Capstan.Store.Tests.Sqlite;

/// <summary>Each test gets a real SQLite file in its own temp folder, removed afterwards.</summary>
public abstract class StoreTestBase : IAsyncLifetime
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "capstan-store-tests", Guid.NewGuid().ToString("N"));

    protected string DatabasePath => Path.Combine(_folder, "nested", "capstan.db");

    protected SqliteMetadataStore Store { get; set; } = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public virtual async ValueTask InitializeAsync() => Store = await SqliteMetadataStore.OpenAsync(DatabasePath, Ct);

    public virtual async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        GC.SuppressFinalize(this);
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    /// <summary>Closes the store and opens the same file again, as a restarted process would.</summary>
    protected async Task ReopenAsync()
    {
        await Store.DisposeAsync();
        Store = await SqliteMetadataStore.OpenAsync(DatabasePath, Ct);
    }

    protected async Task<string> NewExperimentAsync(string? name = null) =>
        (await Store.CreateExperimentAsync(new NewExperiment(name ?? "exp-" + Guid.NewGuid().ToString("N")[..8]), Ct)).ExperimentId;

    protected async Task<Run> NewRunAsync(string experimentId, string? name = null, long? startTime = null) =>
        await Store.CreateRunAsync(new NewRun(experimentId, RunName: name, StartTime: startTime), Ct);

    protected static async Task<CapstanException> AssertCapstanErrorAsync(ErrorCode code, Func<Task> action)
    {
        var error = await Assert.ThrowsAsync<CapstanException>(action);
        Assert.Equal(code, error.Code);
        return error;
    }
}
