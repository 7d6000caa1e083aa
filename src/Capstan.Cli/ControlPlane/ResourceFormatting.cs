using System.Globalization;
using Capstan.Core.Resources;

namespace Capstan.Cli.ControlPlane;

/// <summary>How resources read in tables: kubectl's ages, phases and kind-specific columns.</summary>
internal static class ResourceFormatting
{
    /// <summary>kubectl's short age: <c>45s</c>, <c>3m</c>, <c>5h</c>, <c>2d</c>.</summary>
    public static string Age(DateTimeOffset? since, DateTimeOffset now)
    {
        if (since is not { } start)
        {
            return "<unknown>";
        }

        var age = now - start;
        return age.TotalSeconds < 0 ? "0s"
            : age.TotalMinutes < 2 ? Invariant($"{(int)age.TotalSeconds}s")
            : age.TotalHours < 2 ? Invariant($"{(int)age.TotalMinutes}m")
            : age.TotalDays < 2 ? Invariant($"{(int)age.TotalHours}h")
            : Invariant($"{(int)age.TotalDays}d");
    }

    /// <summary>The phase of kinds that have one, else the reason of the Ready condition, else "-".</summary>
    public static string Phase(Resource resource) => resource switch
    {
        TrainJob { Status.Phase: { } phase } => phase.ToString(),
        InferenceService { Status.Phase: { } servicePhase } => servicePhase.ToString(),
        TuningExperiment { Status.Phase: { } experimentPhase } => experimentPhase.ToString(),
        _ when resource.CommonStatus?.Conditions?.FirstOrDefault(c => c.Type == "Ready") is { } ready => ready.Reason ?? ready.Status.ToString(),
        _ => "-",
    };

    /// <summary>The columns after NAME and before AGE that say most about a kind.</summary>
    public static IReadOnlyList<string> ExtraColumns(string kind) => kind switch
    {
        TrainJob.KindName => ["REPLICAS", "ATTEMPTS", "EXPERIMENT"],
        InferenceService.KindName => ["URL", "TRAFFIC"],
        TuningExperiment.KindName => ["TRIALS", "ALGORITHM", "BEST"],
        _ => [],
    };

    public static IReadOnlyList<string> ExtraValues(Resource resource) => resource switch
    {
        TrainJob job =>
        [
            Invariant($"{job.Spec.Replicas ?? 1}"),
            Invariant($"{job.Status?.Attempts ?? 0}/{(job.Spec.BackoffLimit ?? 0) + 1}"),
            job.Spec.Experiment ?? "-",
        ],
        InferenceService service =>
        [
            service.Status?.Url ?? "-",
            service.Status?.Traffic is { Count: > 0 } traffic ? string.Join(", ", traffic.Select(t => Invariant($"v{t.Version} {t.Percent}%"))) : "-",
        ],
        TuningExperiment experiment =>
        [
            Invariant($"{experiment.Status?.Trials ?? 0}/{(experiment.Spec.MaxTrialCount is { } max ? max.ToString(CultureInfo.InvariantCulture) : "-")}"),
            experiment.Spec.Algorithm?.AlgorithmName ?? "random",
            experiment.Status?.CurrentOptimalTrial is { } best
                ? $"{ExperimentView.Objectives(experiment.Spec)[0].Metric}={ExperimentView.Number(ExperimentView.Value(experiment, best, ExperimentView.Objectives(experiment.Spec)[0].Metric))}"
                : "-",
        ],
        _ => [],
    };

    public static string Time(DateTimeOffset? time) =>
        time?.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "-";

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
