using Capstan.Core;
using Capstan.Core.Registry;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;

namespace Capstan.Cli.Tracking;

/// <summary>The get-or-create steps commands that train (quickstart, train) take on a store.</summary>
public static class MetadataStoreExtensions
{
    public static async Task<Experiment> GetOrCreateExperimentAsync(this IMetadataStore store, string name, IReadOnlyList<Tag>? tags, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        try
        {
            return await store.GetExperimentByNameAsync(name, cancellationToken);
        }
        catch (CapstanException ex) when (ex.Code == ErrorCode.ResourceDoesNotExist)
        {
            return await store.CreateExperimentAsync(new NewExperiment(name, Tags: tags), cancellationToken);
        }
    }

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
