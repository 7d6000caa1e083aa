using Capstan.Core.Resources;

namespace Capstan.Core.ControlPlane;

/// <summary>Typed shortcuts over <see cref="IResourceStore"/>: <c>await store.GetAsync&lt;TrainJob&gt;("default", "mnist")</c>.</summary>
public static class ResourceStoreExtensions
{
    public static async Task<T> GetAsync<T>(this IResourceStore store, string @namespace, string name, CancellationToken cancellationToken = default)
        where T : Resource, new()
    {
        ArgumentNullException.ThrowIfNull(store);
        return (T)await store.GetAsync(new T().Kind, @namespace, name, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The object, or null when it does not exist.</summary>
    public static async Task<Resource?> FindAsync(this IResourceStore store, string kind, string @namespace, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        try
        {
            return await store.GetAsync(kind, @namespace, name, cancellationToken).ConfigureAwait(false);
        }
        catch (CapstanException e) when (e.Code == ErrorCode.ResourceDoesNotExist)
        {
            return null;
        }
    }

    public static async Task<IReadOnlyList<T>> ListAsync<T>(this IResourceStore store, string? @namespace = null, IReadOnlyDictionary<string, string>? labelSelector = null, CancellationToken cancellationToken = default)
        where T : Resource, new()
    {
        ArgumentNullException.ThrowIfNull(store);
        var items = await store.ListAsync(new T().Kind, @namespace, labelSelector, cancellationToken).ConfigureAwait(false);
        return [.. items.Cast<T>()];
    }

    public static Task<IReadOnlyList<ResourceEvent>> ListEventsAsync(this IResourceStore store, Resource involved, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(involved);
        return store.ListEventsAsync(involved.Kind, involved.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace, involved.Metadata.Name ?? "", cancellationToken);
    }

    /// <summary>A deep copy, through the stored JSON form.</summary>
    public static T Clone<T>(this T resource)
        where T : Resource =>
        (T)ResourceSerializer.FromJson(ResourceSerializer.ToJson(resource));
}
