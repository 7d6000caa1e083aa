using System.Globalization;
using Capstan.Cli.ControlPlane;
using Capstan.Cli.Hosting;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Spectre.Console;

namespace Capstan.Cli.Quickstart;

/// <summary>
/// The quickstart's tuning step, before it trains and registers the model: a short Experiment (6 trials, 2 at a time,
/// TPE) of <c>capstan train tabular</c> on the bundled Iris data over the learning rate, the leaves per tree and the
/// trees, minimising the held-out log loss. Its trials are nested runs in the quickstart's tracking experiment; the
/// best trial's values become the training step's flags.
/// </summary>
public static class QuickstartTuning
{
    public const string ExperimentName = "quickstart-tuning";
    public const int Trials = 6;
    public const int Parallel = 2;

    public sealed record Result(TuningExperiment Experiment, TrialResult Best, IReadOnlyList<string> TrainingArguments);

    /// <summary>The experiment, as a user would write it (see examples/experiment-tabular.yaml).</summary>
    public static TuningExperiment Experiment(string dataPath)
    {
        ArgumentNullException.ThrowIfNull(dataPath);
        var yaml = $$$"""
            apiVersion: capstan.dev/v1alpha1
            kind: Experiment
            metadata:
              name: {{{ExperimentName}}}
              labels: {app.kubernetes.io/part-of: capstan-quickstart}
            spec:
              objective:
                type: minimize
                objectiveMetricName: log_loss
                additionalMetricNames: [accuracy]
                metricStrategies: [{name: log_loss, value: latest}, {name: accuracy, value: latest}]
              algorithm:
                algorithmName: tpe
                algorithmSettings: [{name: n_startup_trials, value: 3}]
              parallelTrialCount: {{{Parallel}}}
              maxTrialCount: {{{Trials}}}
              maxFailedTrialCount: 2
              parameters:
                - {name: learning_rate, parameterType: double, feasibleSpace: {min: 0.02, max: 0.5, distribution: logUniform}}
                - {name: leaves, parameterType: int, feasibleSpace: {min: 2, max: 31}}
                - {name: trees, parameterType: int, feasibleSpace: {min: 20, max: 100, step: 10}}
              trialTemplate:
                trialSpec:
                  command: [capstan]
                  experiment: {{{QuickstartCommand.ExperimentName}}}
                  resources: {requests: {cpu: "1", memory: 1Gi}}
            """;
        var experiment = (TuningExperiment)ResourceLoader.Load(yaml, "quickstart").Single();
        var trialSpec = experiment.Spec.TrialTemplate!.TrialSpec!;
        trialSpec.Command = [.. Capstan.Server.Hosting.CapstanProgram.Command()];
        trialSpec.Args =
        [
            "train", "tabular", "--data", dataPath, "--label", QuickstartCommand.Label, "--algorithm", QuickstartTraining.Algorithm,
            "--seed", QuickstartTraining.Seed.ToString(CultureInfo.InvariantCulture),
            "--test-fraction", QuickstartTraining.TestFraction.ToString("R", CultureInfo.InvariantCulture),
            .. Flags("${trialParameters.learning_rate}", "${trialParameters.leaves}", "${trialParameters.trees}"),
        ];
        return experiment;
    }

    /// <summary>Runs the experiment to its end, showing its progress; null (after saying why) when it failed.</summary>
    public static async Task<Result?> RunAsync(QuickstartSession session, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        var (context, plane) = (session.Context, session.Plane);
        var experiment = Experiment(session.DataPath);
        var ns = experiment.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;

        // Run again on the same home, the quickstart tunes again: the last experiment (and its trials) make way.
        if (await plane.Resources.FindAsync(TuningExperiment.KindName, ns, ExperimentName, cancellationToken) is TuningExperiment)
        {
            await plane.Resources.DeleteAsync(TuningExperiment.KindName, ns, ExperimentName, cancellationToken);
        }

        context.Error.MarkupLineInterpolated($"Tuning: [bold]{Trials}[/] trials, {Parallel} at a time, TPE over learning rate, leaves and trees (experiment/{ExperimentName}).");
        var applied = (TuningExperiment)(await plane.Resources.ApplyAsync(experiment, cancellationToken)).Object;
        bool succeeded;
        try
        {
            succeeded = await RunExperiments.WaitAsync(WithTableOnError(context), plane.Resources, applied, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await RunExperiments.StopTrialsAsync(context, plane.Resources, plane.Runtime, applied);
            throw;
        }

        var final = await plane.Resources.GetAsync<TuningExperiment>(ns, ExperimentName, cancellationToken);
        if (!succeeded || final.Status?.CurrentOptimalTrial is not { } best)
        {
            CommandAction.Fail(context, $"tuning did not find a model (see ./capstan describe experiment {ExperimentName})");
            return null;
        }

        string Value(string name) => best.ParameterAssignments!.First(a => a.Name == name).Value!;
        return new Result(final, best, Flags(Value("learning_rate"), Value("leaves"), Value("trees")));
    }

    private static string[] Flags(string learningRate, string leaves, string trees) =>
        ["--learning-rate", learningRate, "--leaves", leaves, "--iterations", trees];

    /// <summary>The trial table goes to stderr with the progress, keeping stdout for the quickstart's summary.</summary>
    private static CliContext WithTableOnError(CliContext context) => new(context.Error, context.Error, context.GetEnvironmentVariable);
}
