using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.Storage;
namespace Capstan.Cli.Hosting;
public sealed class Backend(IMetadataStore metadata, IArtifactStore artifacts, string location, IAsyncDisposable? owner) : IAsyncDisposable
{
    public const string UrlVariable = "CAPSTAN_URL";
    public IMetadataStore Metadata { get; } = metadata;
    public IArtifactStore Artifacts { get; } = artifacts;
    public string Location { get; } = location;
    public ValueTask DisposeAsync() => owner?.DisposeAsync() ?? ValueTask.CompletedTask;
    public static Task<Backend> OpenAsync(CliContext context, CancellationToken cancellationToken) => throw new NotSupportedException();
    public static Task<Backend> OpenEmbeddedAsync(CapstanHome home, CancellationToken cancellationToken) => throw new NotSupportedException();
    public static CapstanHome ResolveHome(CliContext context) => throw new NotSupportedException();
}
