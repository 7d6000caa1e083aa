using Capstan.Client;
using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.ControlPlane;
using Capstan.Core.Storage;
using Capstan.Store.Artifacts;
using Capstan.Store.Sqlite;

namespace Capstan.Cli.Hosting;

/// <summary>The stores a command works on, and what to dispose when it is done.</summary>
public sealed class Backend(IMetadataStore metadata, IArtifactStore artifacts, string location, IAsyncDisposable? owner) : IAsyncDisposable
{
    private readonly IResourceStore? _resources = metadata as IResourceStore;

    /// <summary>A backend whose control-plane objects live apart from the tracking store (a remote server).</summary>
    public Backend(IMetadataStore metadata, IArtifactStore artifacts, IResourceStore resources, string location, IAsyncDisposable? owner)
        : this(metadata, artifacts, location, owner)
    {
        _resources = resources;
    }

    /// <summary>Set to a server's URL to work against it instead of the embedded stores.</summary>
    public const string UrlVariable = "CAPSTAN_URL";

    public IMetadataStore Metadata { get; } = metadata;

    public IArtifactStore Artifacts { get; } = artifacts;

    /// <summary>The control plane's objects (TrainJobs, ...): the embedded SQLite store, or the server's resource API.</summary>
    public IResourceStore Resources => _resources
        ?? throw new CapstanException(ErrorCode.Internal, $"The backend at {Location} keeps no control-plane resources.");

    /// <summary>The server URL or the home folder, for messages.</summary>
    public string Location { get; } = location;

    public ValueTask DisposeAsync() => owner?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary><c>CAPSTAN_URL</c> when set, else the embedded stores of <see cref="ResolveHome"/>.</summary>
    public static Task<Backend> OpenAsync(CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var url = context.GetEnvironmentVariable(UrlVariable);
        if (string.IsNullOrWhiteSpace(url))
        {
            return OpenEmbeddedAsync(ResolveHome(context), cancellationToken);
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var baseUrl) || (baseUrl.Scheme != Uri.UriSchemeHttp && baseUrl.Scheme != Uri.UriSchemeHttps))
        {
            throw CapstanException.Invalid($"{UrlVariable} '{url}' is not an http(s) URL.");
        }

        var client = new CapstanClient(baseUrl);
        var resources = new ResourceClient(baseUrl);
        return Task.FromResult(new Backend(client, client, resources, baseUrl.AbsoluteUri, new DisposeOnce(client, resources)));
    }

    public static async Task<Backend> OpenEmbeddedAsync(CapstanHome home, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(home);
        home.EnsureCreated();
        var store = await SqliteMetadataStore.OpenAsync(home.DatabasePath, cancellationToken);
        return new Backend(store, new FolderArtifactStore(home.ArtifactsPath), home.Root, store);
    }

    /// <summary><c>$CAPSTAN_HOME</c> as the context sees it, else <c>~/.capstan</c>.</summary>
    public static CapstanHome ResolveHome(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var configured = context.GetEnvironmentVariable(CapstanHome.EnvironmentVariable);
        return string.IsNullOrWhiteSpace(configured)
            ? new CapstanHome(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".capstan"))
            : new CapstanHome(Path.GetFullPath(configured));
    }

    private sealed class DisposeOnce(params IDisposable[] inner) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            foreach (var disposable in inner)
            {
                disposable.Dispose();
            }

            return ValueTask.CompletedTask;
        }
    }
}
