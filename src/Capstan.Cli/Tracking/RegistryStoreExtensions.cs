using Capstan.Core;
using Capstan.Core.Registry;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;

namespace Capstan.Cli.Tracking;

/// <summary>The registry step commands that train (quickstart, train) take on a store; experiments: <see cref="Core.Storage.MetadataStoreExtensions"/>.</summary>
public static class RegistryStoreExtensions
{
    /// <summary>
    /// Adds a version to the registered model (creating the model the first time), points
    /// <paramref name="alias"/> at it when given, and returns the version as stored.
    /// </summary>
    public static async Task<ModelVersion> RegisterVersionAsync(this IMetadataStore store, NewModelVersion version, string? modelDescription, string? alias, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(version);
        try
        {
            await store.CreateRegisteredModelAsync(new NewRegisteredModel(version.Name, modelDescription), cancellationToken);
        }
        catch (CapstanException ex) when (ex.Code == ErrorCode.ResourceAlreadyExists)
        {
            // A new version of a model registered before.
        }

        var created = await store.CreateModelVersionAsync(version, cancellationToken);
        if (alias is not null)
        {
            await store.SetAliasAsync(version.Name, alias, created.Version, cancellationToken);
        }

        return await store.GetModelVersionAsync(version.Name, created.Version, cancellationToken);
    }
}
