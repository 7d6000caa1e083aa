using System.Text.RegularExpressions;
using Capstan.Core;
using Capstan.Core.Tracking;

namespace Capstan.Store.Sqlite;

/// <summary>MLflow's limits and naming rules for what a client logs.</summary>
internal static partial class TrackingValidation
{
    public const int MaxKeyLength = 250;
    public const int MaxParamValueLength = 6000;
    public const int MaxTagValueLength = 8000;
    public const int MaxExperimentNameLength = 500;
    public const int MaxDatasetNameLength = 500;
    public const int MaxDatasetDigestLength = 36;

    public static void Key(string? key, string what)
    {
        if (string.IsNullOrEmpty(key))
        {
            throw CapstanException.Invalid($"Invalid {what} name: a key is required and must not be empty.");
        }

        if (key.Length > MaxKeyLength)
        {
            throw CapstanException.Invalid($"Invalid {what} name '{key[..40]}...': length {key.Length} exceeds the limit of {MaxKeyLength}.");
        }

        if (!KeyPattern().IsMatch(key) || key.Split('/').Any(part => part is "." or ".."))
        {
            throw CapstanException.Invalid(
                $"Invalid {what} name '{key}'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/), and may not be a relative path.");
        }
    }

    public static void ParamValue(string key, string? value)
    {
        if (value is null)
        {
            throw CapstanException.Invalid($"Param '{key}' has no value.");
        }

        if (value.Length > MaxParamValueLength)
        {
            throw CapstanException.Invalid($"Param value for key '{key}' has length {value.Length}, which exceeds the limit of {MaxParamValueLength}.");
        }
    }

    public static void TagValue(string key, string? value)
    {
        if (value is null)
        {
            throw CapstanException.Invalid($"Tag '{key}' has no value.");
        }

        if (value.Length > MaxTagValueLength)
        {
            throw CapstanException.Invalid($"Tag value for key '{key}' has length {value.Length}, which exceeds the limit of {MaxTagValueLength}.");
        }
    }

    public static void Tag(Tag tag)
    {
        ArgumentNullException.ThrowIfNull(tag);
        Key(tag.Key, "tag");
        TagValue(tag.Key, tag.Value);
    }

    public static void Tags(IReadOnlyList<Tag>? tags)
    {
        foreach (var tag in tags ?? [])
        {
            Tag(tag);
        }
    }

    public static void Batch(LogBatch batch)
    {
        var metrics = batch.Metrics?.Count ?? 0;
        var parameters = batch.Params?.Count ?? 0;
        var tags = batch.Tags?.Count ?? 0;
        if (metrics > LogBatch.MaxMetrics)
        {
            throw CapstanException.Invalid($"A batch logging request can contain at most {LogBatch.MaxMetrics} metrics. Got {metrics} metrics.");
        }

        if (parameters > LogBatch.MaxParams)
        {
            throw CapstanException.Invalid($"A batch logging request can contain at most {LogBatch.MaxParams} params. Got {parameters} params.");
        }

        if (tags > LogBatch.MaxTags)
        {
            throw CapstanException.Invalid($"A batch logging request can contain at most {LogBatch.MaxTags} tags. Got {tags} tags.");
        }

        if (metrics + parameters + tags > LogBatch.MaxItems)
        {
            throw CapstanException.Invalid(
                $"A batch logging request can contain at most {LogBatch.MaxItems} metrics, params and tags in total. Got {metrics + parameters + tags}.");
        }

        foreach (var param in batch.Params ?? [])
        {
            ArgumentNullException.ThrowIfNull(param);
            Key(param.Key, "param");
            ParamValue(param.Key, param.Value);
        }

        Tags(batch.Tags);
    }

    public static void ExperimentName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw CapstanException.Invalid("Invalid experiment name: a name is required and must not be empty.");
        }

        if (name.Length > MaxExperimentNameLength)
        {
            throw CapstanException.Invalid($"Invalid experiment name: length {name.Length} exceeds the limit of {MaxExperimentNameLength}.");
        }
    }

    public static void ModelName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw CapstanException.Invalid("Registered model name cannot be empty.");
        }

        if (name.Length > MaxKeyLength)
        {
            throw CapstanException.Invalid($"Registered model name '{name[..40]}...' exceeds the limit of {MaxKeyLength} characters.");
        }
    }

    /// <summary>MLflow reserves <c>latest</c> and <c>v&lt;digits&gt;</c>, which name versions.</summary>
    public static void AliasName(string? alias)
    {
        if (string.IsNullOrEmpty(alias))
        {
            throw CapstanException.Invalid("Alias name cannot be empty.");
        }

        if (alias.Length > MaxKeyLength)
        {
            throw CapstanException.Invalid($"Alias name '{alias[..40]}...' exceeds the limit of {MaxKeyLength} characters.");
        }

        if (alias.Equals("latest", StringComparison.OrdinalIgnoreCase))
        {
            throw CapstanException.Invalid("'latest' alias name (case insensitive) is reserved.");
        }

        if (VersionAliasPattern().IsMatch(alias))
        {
            throw CapstanException.Invalid($"Version alias name '{alias}' is reserved.");
        }

        if (!KeyPattern().IsMatch(alias))
        {
            throw CapstanException.Invalid(
                $"Invalid alias name '{alias}'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/).");
        }
    }

    public static void DatasetInput(DatasetInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var dataset = input.Dataset ?? throw CapstanException.Invalid("A dataset input needs a dataset.");
        if (string.IsNullOrEmpty(dataset.Name) || dataset.Name.Length > MaxDatasetNameLength)
        {
            throw CapstanException.Invalid($"Dataset name must be 1 to {MaxDatasetNameLength} characters long.");
        }

        if (string.IsNullOrEmpty(dataset.Digest) || dataset.Digest.Length > MaxDatasetDigestLength)
        {
            throw CapstanException.Invalid($"Dataset digest must be 1 to {MaxDatasetDigestLength} characters long.");
        }

        if (string.IsNullOrEmpty(dataset.SourceType) || dataset.Source is null)
        {
            throw CapstanException.Invalid($"Dataset '{dataset.Name}' needs a source type and a source.");
        }

        Tags(input.Tags);
    }

    [GeneratedRegex(@"^[\w\-\. /]+$")]
    private static partial Regex KeyPattern();

    [GeneratedRegex(@"^[vV]\d+$")]
    private static partial Regex VersionAliasPattern();
}
