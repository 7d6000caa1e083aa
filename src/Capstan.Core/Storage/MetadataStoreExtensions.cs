using Capstan.Core.Tracking;

namespace Capstan.Core.Storage;

/// <summary>Get-or-create steps every writer of the tracking store takes: commands, reconcilers and the operator.</summary>
public static class MetadataStoreExtensions
{
    /// <summary>The tracking experiment named <paramref name="name"/>, created when missing (a concurrent creator's wins).</summary>
    public static async Task<Experiment> GetOrCreateExperimentAsync(this IMetadataStore metadata, string name, IReadOnlyList<Tag>? tags = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        try
        {
            return await metadata.GetExperimentByNameAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (CapstanException e) when (e.Code == ErrorCode.ResourceDoesNotExist)
        {
            try
            {
                return await metadata.CreateExperimentAsync(new NewExperiment(name, Tags: tags), cancellationToken).ConfigureAwait(false);
            }
            catch (CapstanException again) when (again.Code == ErrorCode.ResourceAlreadyExists)
            {
                return await metadata.GetExperimentByNameAsync(name, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
