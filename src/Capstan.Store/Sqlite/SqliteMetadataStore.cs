using System.Collections.Concurrent;
using Capstan.Core;
using Capstan.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Capstan.Store.Sqlite;

/// <summary>
/// The embedded metadata store: MLflow's tracking and registry schema in one SQLite file.
/// <para>
/// Durability: the database runs in WAL mode with <c>synchronous=NORMAL</c>. A committed
/// transaction survives the process crashing or being killed (<c>kill -9</c>), which is what
/// Capstan promises; the last transactions before an operating-system crash or power loss may be
/// rolled back (never corrupted). That trade buys commit latency in microseconds instead of an fsync each.
/// </para>
/// <para>
/// Concurrency: SQLite has one writer, so all writes go through one dedicated connection guarded by
/// a semaphore, reusing prepared statements for the ingest hot path. Reads use their own pooled
/// connections and, thanks to WAL, never wait on writes.
/// </para>
/// </summary>
public sealed partial class SqliteMetadataStore : IMetadataStore, IAsyncDisposable
{
    private const int BusyTimeoutMs = 5000;
    private const int WriterCacheKib = 64 * 1024;
    private const int ReaderCacheKib = 16 * 1024;

    private readonly string _readConnectionString;
    private readonly SqliteConnection _writer;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentBag<SqliteConnection> _idleReaders = [];
    private readonly WriterStatements _statements;
    private int _disposed;

    private SqliteMetadataStore(SqliteConnection writer, string readConnectionString)
    {
        _writer = writer;
        _readConnectionString = readConnectionString;
        _statements = new WriterStatements(writer);
    }

    /// <summary>Opens (creating if needed) the database at <paramref name="databasePath"/> and brings its schema up to date.</summary>
    public static Task<SqliteMetadataStore> OpenAsync(string databasePath, CancellationToken ct = default) =>
        OpenAsync(databasePath, SchemaMigrations.All, ct);

    internal static async Task<SqliteMetadataStore> OpenAsync(string databasePath, IReadOnlyList<SchemaMigration> migrations, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);
        var fullPath = Path.GetFullPath(databasePath);
        var folder = Path.GetDirectoryName(fullPath);
        if (!string.IsNullOrEmpty(folder))
        {
            Directory.CreateDirectory(folder);
        }

        // Pooling is off: this class keeps its own connections, and closing them on dispose
        // releases the file (tests and tools can delete it straight after).
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = fullPath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = BusyTimeoutMs / 1000,
        };
        var writer = new SqliteConnection(builder.ToString());
        try
        {
            await writer.OpenAsync(ct).ConfigureAwait(false);
            Execute(writer, "PRAGMA journal_mode=WAL");
            ConfigureConnection(writer, WriterCacheKib);
            SchemaMigrations.Apply(writer, migrations, ct);
        }
        catch
        {
            await writer.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        builder.Mode = SqliteOpenMode.ReadWrite;
        return new SqliteMetadataStore(writer, builder.ToString());
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        EndWatches();

        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            _statements.Dispose();
            await _writer.DisposeAsync().ConfigureAwait(false);
            while (_idleReaders.TryTake(out var reader))
            {
                await reader.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            _writeLock.Release();
            _writeLock.Dispose();
        }
    }

    /// <summary>
    /// Per-connection settings (pragmas other than journal_mode are not stored in the file).
    /// The page cache is raised from SQLite's 2 MB default: metric ingest inserts into indexes
    /// keyed by random run ids, which thrash a small cache once the file outgrows it.
    /// </summary>
    private static void ConfigureConnection(SqliteConnection connection, int cacheKib) =>
        Execute(connection, $"""
            PRAGMA cache_size=-{cacheKib};
            PRAGMA synchronous=NORMAL;
            PRAGMA busy_timeout={BusyTimeoutMs};
            PRAGMA foreign_keys=ON;
            PRAGMA case_sensitive_like=ON;
            """);

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>Runs <paramref name="work"/> in a write transaction on the single writer connection.</summary>
    private async Task<T> WriteAsync<T>(Func<SqliteTransaction, T> work, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            using var transaction = _writer.BeginTransaction();
            var result = work(transaction);
            transaction.Commit();
            return result;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private Task WriteAsync(Action<SqliteTransaction> work, CancellationToken cancellationToken) =>
        WriteAsync(transaction =>
        {
            work(transaction);
            return true;
        }, cancellationToken);

    /// <summary>Runs <paramref name="work"/> on a pooled read connection; failures come back in the task.</summary>
    private Task<T> ReadAsync<T>(Func<SqliteConnection, T> work, CancellationToken cancellationToken)
    {
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            var connection = RentReader();
            try
            {
                return Task.FromResult(work(connection));
            }
            finally
            {
                ReturnReader(connection);
            }
        }
        catch (Exception e)
        {
            return Task.FromException<T>(e);
        }
    }

    private SqliteConnection RentReader()
    {
        if (_idleReaders.TryTake(out var connection))
        {
            return connection;
        }

        connection = new SqliteConnection(_readConnectionString);
        connection.Open();
        ConfigureConnection(connection, ReaderCacheKib);
        return connection;
    }

    private void ReturnReader(SqliteConnection connection)
    {
        if (_disposed != 0 || _idleReaders.Count >= Environment.ProcessorCount * 2)
        {
            connection.Dispose();
        }
        else
        {
            _idleReaders.Add(connection);
        }
    }

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private static SqliteCommand Command(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }

    private SqliteCommand WriteCommand(SqliteTransaction transaction, string sql) => Command(_writer, sql, transaction);

    private static CapstanException InvalidState(string message) => new(ErrorCode.InvalidState, message);

    private static string LifecycleText(Core.Tracking.LifecycleStage stage) =>
        stage == Core.Tracking.LifecycleStage.Deleted ? "deleted" : "active";

    private static Core.Tracking.LifecycleStage ParseLifecycle(string text) =>
        text == "deleted" ? Core.Tracking.LifecycleStage.Deleted : Core.Tracking.LifecycleStage.Active;
}
