using Capstan.Core;
using Capstan.Core.Registry;
using Capstan.Serving.Hosting;
using Capstan.Serving.Models;
using Capstan.Serving.Registry;
using Capstan.Store.Artifacts;
using Capstan.Store.Sqlite;
using Capstan.Testing;

namespace Capstan.Serving.Tests;

public sealed class ModelResolverTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "capstan-resolver-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Resolve_RegistryVersionAndAlias_FetchesModelOnnxIntoTheCache()
    {
        await using var store = await SqliteMetadataStore.OpenAsync(Path.Combine(_root, "capstan.db"));
        var artifacts = new FolderArtifactStore(Path.Combine(_root, "artifacts"));
        await using (var onnx = new MemoryStream(OnnxModelBuilder.Mlp(8, 16, 2)))
        {
            await artifacts.PutAsync("1/run1/artifacts/model/model.onnx", onnx);
        }

        await store.CreateRegisteredModelAsync(new NewRegisteredModel("iris"));
        await store.CreateModelVersionAsync(new NewModelVersion("iris", "mlflow-artifacts:/1/run1/artifacts/model"));
        await store.SetAliasAsync("iris", "champion", 1);
        var resolver = new ModelResolver(store, artifacts, Path.Combine(_root, "cache"));

        var byVersion = await resolver.ResolveAsync("models:/iris/1");
        var byAlias = await resolver.ResolveAsync("models:/iris@champion");

        Assert.Equal(("iris", "1"), (byVersion.Name, byVersion.Version));
        Assert.Equal(byVersion.OnnxPath, byAlias.OnnxPath);
        Assert.StartsWith(Path.Combine(_root, "cache"), byVersion.OnnxPath, StringComparison.Ordinal);
        using var repository = ServingServer.CreateRepository();
        var metadata = repository.Load(byVersion.Name, byVersion.Version, ModelSource.FromFile(byVersion.OnnxPath), new ModelOptions());
        Assert.Equal([-1L, 8], metadata.Inputs[0].Shape);
        var missing = await Assert.ThrowsAsync<CapstanException>(() => resolver.ResolveAsync("models:/iris"));
        Assert.Contains("NAME/VERSION", missing.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
