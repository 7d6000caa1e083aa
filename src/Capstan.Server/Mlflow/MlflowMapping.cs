using System.Globalization;
using Capstan.Core;
using Capstan.Core.Registry;
using Capstan.Core.Tracking;

namespace Capstan.Server.Mlflow;

/// <summary>Translates between Capstan's records and MLflow's wire messages.</summary>
internal static class MlflowMapping
{
    public static string ToWire(LifecycleStage stage) => stage == LifecycleStage.Deleted ? "deleted" : "active";

    public static string ToWire(RunStatus status) => status switch
    {
        RunStatus.Running => "RUNNING",
        RunStatus.Scheduled => "SCHEDULED",
        RunStatus.Finished => "FINISHED",
        RunStatus.Failed => "FAILED",
        _ => "KILLED",
    };

    public static RunStatus ParseRunStatus(string value) => value switch
    {
        "RUNNING" => RunStatus.Running,
        "SCHEDULED" => RunStatus.Scheduled,
        "FINISHED" => RunStatus.Finished,
        "FAILED" => RunStatus.Failed,
        "KILLED" => RunStatus.Killed,
        _ => throw CapstanException.Invalid(
            $"Invalid value '{value}' for parameter 'status': expected one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED."),
    };

    public static ViewType ParseViewType(string? value, string field) => value switch
    {
        null or "" or "ACTIVE_ONLY" or "1" => ViewType.ActiveOnly,
        "DELETED_ONLY" or "2" => ViewType.DeletedOnly,
        "ALL" or "3" => ViewType.All,
        _ => throw CapstanException.Invalid(
            $"Invalid value '{value}' for parameter '{field}': expected one of ACTIVE_ONLY, DELETED_ONLY, ALL."),
    };

    public static string ToWire(ModelVersionStatus status) => status switch
    {
        ModelVersionStatus.PendingRegistration => "PENDING_REGISTRATION",
        ModelVersionStatus.FailedRegistration => "FAILED_REGISTRATION",
        _ => "READY",
    };

    public static List<KeyValueWire>? ToWire(IReadOnlyList<Tag>? tags)
    {
        if (tags is null || tags.Count == 0)
        {
            return null;
        }

        var list = new List<KeyValueWire>(tags.Count);
        foreach (var tag in tags)
        {
            list.Add(new KeyValueWire { Key = tag.Key, Value = tag.Value });
        }

        return list;
    }

    public static List<KeyValueWire>? ToWire(IReadOnlyList<Param>? parameters)
    {
        if (parameters is null || parameters.Count == 0)
        {
            return null;
        }

        var list = new List<KeyValueWire>(parameters.Count);
        foreach (var param in parameters)
        {
            list.Add(new KeyValueWire { Key = param.Key, Value = param.Value });
        }

        return list;
    }

    public static List<MetricWire>? ToWire(IReadOnlyList<Metric>? metrics)
    {
        if (metrics is null || metrics.Count == 0)
        {
            return null;
        }

        var list = new List<MetricWire>(metrics.Count);
        foreach (var metric in metrics)
        {
            list.Add(new MetricWire { Key = metric.Key, Value = metric.Value, Timestamp = metric.Timestamp, Step = metric.Step });
        }

        return list;
    }

    public static ExperimentWire ToWire(Experiment experiment) => new()
    {
        ExperimentId = experiment.ExperimentId,
        Name = experiment.Name,
        ArtifactLocation = experiment.ArtifactLocation,
        LifecycleStage = ToWire(experiment.LifecycleStage),
        LastUpdateTime = experiment.LastUpdateTime,
        CreationTime = experiment.CreationTime,
        Tags = ToWire(experiment.Tags),
    };

    public static RunInfoWire ToWire(RunInfo info) => new()
    {
        RunId = info.RunId,
        RunUuid = info.RunId,
        RunName = info.RunName,
        ExperimentId = info.ExperimentId,
        UserId = info.UserId,
        Status = ToWire(info.Status),
        StartTime = info.StartTime,
        EndTime = info.EndTime,
        ArtifactUri = info.ArtifactUri,
        LifecycleStage = ToWire(info.LifecycleStage),
    };

    public static RunWire ToWire(Run run)
    {
        List<DatasetInputWire>? inputs = null;
        if (run.Inputs is { Count: > 0 })
        {
            inputs = new List<DatasetInputWire>(run.Inputs.Count);
            foreach (var input in run.Inputs)
            {
                inputs.Add(ToWire(input));
            }
        }

        return new RunWire
        {
            Info = ToWire(run.Info),
            Data = new RunDataWire
            {
                Metrics = ToWire(run.Data.Metrics),
                Params = ToWire(run.Data.Params),
                Tags = ToWire(run.Data.Tags),
            },
            Inputs = new RunInputsWire { DatasetInputs = inputs },
        };
    }

    public static DatasetInputWire ToWire(DatasetInput input) => new()
    {
        Tags = ToWire(input.Tags),
        Dataset = new DatasetWire
        {
            Name = input.Dataset.Name,
            Digest = input.Dataset.Digest,
            SourceType = input.Dataset.SourceType,
            Source = input.Dataset.Source,
            Schema = input.Dataset.Schema,
            Profile = input.Dataset.Profile,
        },
    };

    public static ModelVersionWire ToWire(ModelVersion version) => new()
    {
        Name = version.Name,
        Version = version.Version.ToString(CultureInfo.InvariantCulture),
        CreationTimestamp = version.CreationTimestamp,
        LastUpdatedTimestamp = version.LastUpdatedTimestamp,
        UserId = version.UserId,
        CurrentStage = version.CurrentStage,
        Description = version.Description,
        Source = version.Source,
        RunId = version.RunId,
        Status = ToWire(version.Status),
        StatusMessage = version.StatusMessage,
        Tags = ToWire(version.Tags),
        RunLink = version.RunLink,
        Aliases = version.Aliases is { Count: > 0 } ? [.. version.Aliases] : null,
    };

    public static List<ModelVersionWire>? ToWire(IReadOnlyList<ModelVersion>? versions)
    {
        if (versions is null || versions.Count == 0)
        {
            return null;
        }

        var list = new List<ModelVersionWire>(versions.Count);
        foreach (var version in versions)
        {
            list.Add(ToWire(version));
        }

        return list;
    }

    public static RegisteredModelWire ToWire(RegisteredModel model)
    {
        List<AliasWire>? aliases = null;
        if (model.Aliases is { Count: > 0 })
        {
            aliases = new List<AliasWire>(model.Aliases.Count);
            foreach (var alias in model.Aliases)
            {
                aliases.Add(new AliasWire { Alias = alias.Alias, Version = alias.Version.ToString(CultureInfo.InvariantCulture) });
            }
        }

        return new RegisteredModelWire
        {
            Name = model.Name,
            CreationTimestamp = model.CreationTimestamp,
            LastUpdatedTimestamp = model.LastUpdatedTimestamp,
            Description = model.Description,
            LatestVersions = ToWire(model.LatestVersions),
            Tags = ToWire(model.Tags),
            Aliases = aliases,
        };
    }

    public static List<Tag>? ToTags(List<KeyValueWire>? wire, string field)
    {
        if (wire is null || wire.Count == 0)
        {
            return null;
        }

        var tags = new List<Tag>(wire.Count);
        for (var i = 0; i < wire.Count; i++)
        {
            var item = wire[i];
            tags.Add(new Tag(
                MlflowRequests.Required(item?.Key, $"{field}[{i}].key"),
                item!.Value ?? string.Empty));
        }

        return tags;
    }

    public static DatasetInput ToDatasetInput(DatasetInputWire? wire, int index)
    {
        var dataset = wire?.Dataset ?? throw CapstanException.Invalid($"Missing value for required parameter 'datasets[{index}].dataset'.");
        return new DatasetInput(
            new Dataset(
                MlflowRequests.Required(dataset.Name, $"datasets[{index}].dataset.name"),
                MlflowRequests.Required(dataset.Digest, $"datasets[{index}].dataset.digest"),
                MlflowRequests.Required(dataset.SourceType, $"datasets[{index}].dataset.source_type"),
                MlflowRequests.Required(dataset.Source, $"datasets[{index}].dataset.source"),
                dataset.Schema,
                dataset.Profile),
            ToTags(wire.Tags, $"datasets[{index}].tags") ?? []);
    }
}
