using Capstan.Store.Sqlite;

namespace Capstan.Runtime.Kubernetes.Tests.Operator;

/// <summary>A real SQLite tracking store in a temporary folder, standing in for the Capstan API the operator logs runs to.</summary>
public sealed class TrackingStore : IAsyncDisposable
{
    private readonly string _folder;

    private TrackingStore(string folder, SqliteMetadataStore store) => (_folder, Store) = (folder, store);

    public SqliteMetadataStore Store { get; }

    public static async Task<TrackingStore> OpenAsync()
    {
        var folder = Directory.CreateTempSubdirectory("capstan-operator-tracking-").FullName;
        return new TrackingStore(folder, await SqliteMetadataStore.OpenAsync(Path.Combine(folder, "capstan.db")));
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }
}
