using System.CommandLine;
using System.Diagnostics;
using Capstan.Cli.Hosting;
using Capstan.Cli.Tracking;
using Capstan.Client;
using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.Registry;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;
using Microsoft.ML;
using Spectre.Console;

namespace Capstan.Cli.Quickstart;

/// <summary>
/// <c>capstan quickstart</c>: trains a real classifier on the bundled Iris data, tracks it as a
/// run (params, learning curves, data set, model artifact) and registers it as
/// <c>iris-classifier@champion</c>, all in an embedded store, in seconds.
/// </summary>
public static class QuickstartCommand
{
    public const string ExperimentName = "quickstart";
    public const string ModelName = "iris-classifier";
    public const string ChampionAlias = "champion";
    public const int Iterations = 20;
    public const int Seed = 42;
    public const double TestFraction = 0.3;
    public const float L2 = 1e-4f;

    private const string SignatureInputs =
        """[{"type":"float","name":"sepal_length"},{"type":"float","name":"sepal_width"},{"type":"float","name":"petal_length"},{"type":"float","name":"petal_width"}]""";

    private const string SignatureOutputs = """[{"type":"string","name":"species"}]""";

    public static Command Create(CliContext context)
    {
        var command = new Command("quickstart", "Train a real model on the bundled Iris data, track it and register it, in an embedded store.");
        var homeOption = new Option<string?>("--home") { Description = "Capstan home to use (default: $CAPSTAN_HOME, else a fresh temporary folder)." };
        command.Add(homeOption);
        command.SetHandler(context, async (parse, ct) =>
        {
            var home = ResolveHome(context, parse.GetValue(homeOption), out var fresh);
            context.Error.MarkupLineInterpolated($"Using Capstan home [bold]{home.Root}[/]{(fresh ? " (a new temporary folder)" : string.Empty)}.");
            await using var backend = await Backend.OpenEmbeddedAsync(home, ct);
            var result = await RunAsync(context, backend.Metadata, backend.Artifacts, ct);
            WriteSummary(context, result, home);
            return ExitCodes.Ok;
        });
        return command;
    }

    public sealed record Result(Experiment Experiment, Run Run, IrisEvaluation Final, ModelVersion Version, TimeSpan Elapsed);

    /// <summary>Trains, tracks and registers; the steps a user's own training code would take.</summary>
    public static async Task<Result> RunAsync(CliContext context, IMetadataStore store, IArtifactStore artifacts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(artifacts);
        var clock = Stopwatch.StartNew();
        var csv = IrisData.ReadCsv();
        var flowers = IrisData.Parse(csv);
        var experiment = await GetOrCreateExperimentAsync(store, cancellationToken);
        var run = await store.CreateRunAsync(
            new NewRun(experiment.ExperimentId, RunName: $"sdca-iris-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}", UserId: Environment.UserName,
                Tags: [new Tag("mlflow.source.name", "capstan quickstart"), new Tag("mlflow.source.type", "LOCAL")]),
            cancellationToken);
        var runId = run.Info.RunId;
        try
        {
            await store.LogInputsAsync(runId, [new DatasetInput(
                new Dataset(
                    "iris",
                    IrisData.Digest(csv),
                    "code",
                    "capstan:quickstart/iris.csv",
                    Schema: """{"mlflow_colspec":[{"type":"float","name":"sepal_length"},{"type":"float","name":"sepal_width"},{"type":"float","name":"petal_length"},{"type":"float","name":"petal_width"},{"type":"string","name":"species"}]}""",
                    Profile: $$"""{"num_rows":{{flowers.Count}},"sha256":"{{IrisData.Sha256(csv)}}"}"""),
                [new Tag("mlflow.data.context", "training")])], cancellationToken);

            var trainer = new IrisTrainer(flowers, Seed, TestFraction, L2);
            ITransformer? model = null;
            IrisEvaluation? final = null;
            await using (var logger = new RunLogger(store, runId))
            {
                logger.LogParam("trainer", IrisTrainer.TrainerName);
                logger.LogParam("l2", L2.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
                logger.LogParam("seed", Seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
                logger.LogParam("test_fraction", TestFraction.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
                logger.LogParam("max_iterations", Iterations.ToString(System.Globalization.CultureInfo.InvariantCulture));
                logger.LogParam("normalization", "min-max");

                await context.Error.Progress()
                    .AutoClear(false)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .StartAsync(async progress =>
                    {
                        var task = progress.AddTask($"Training {IrisTrainer.TrainerName}", maxValue: Iterations);
                        for (var iterations = 1; iterations <= Iterations; iterations++)
                        {
                            cancellationToken.ThrowIfCancellationRequested();
                            (model, final) = trainer.Train(iterations);
                            logger.LogMetric("accuracy", final.Accuracy, iterations);
                            logger.LogMetric("macro_accuracy", final.MacroAccuracy, iterations);
                            logger.LogMetric("log_loss", final.LogLoss, iterations);
                            task.Description = $"Training {IrisTrainer.TrainerName}: {iterations} passes, accuracy {final.Accuracy:P1}";
                            task.Increment(1);
                            await Task.Yield();
                        }
                    });
            }

            await UploadModelAsync(artifacts, trainer, model!, run.Info.ArtifactUri, cancellationToken);
            await store.UpdateRunAsync(runId, new RunUpdate(RunStatus.Finished, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), cancellationToken);

            var version = await RegisterAsync(store, run, cancellationToken);
            return new Result(experiment, await store.GetRunAsync(runId, cancellationToken), final!, version, clock.Elapsed);
        }
        catch
        {
            await store.UpdateRunAsync(runId, new RunUpdate(RunStatus.Failed, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), CancellationToken.None);
            throw;
        }
    }

    private static CapstanHome ResolveHome(CliContext context, string? option, out bool fresh)
    {
        fresh = false;
        if (!string.IsNullOrWhiteSpace(option))
        {
            return new CapstanHome(Path.GetFullPath(option));
        }

        if (context.GetEnvironmentVariable(CapstanHome.EnvironmentVariable) is { Length: > 0 } configured)
        {
            return new CapstanHome(Path.GetFullPath(configured));
        }

        fresh = true;
        return new CapstanHome(Directory.CreateTempSubdirectory("capstan-quickstart-").FullName);
    }

    private static Task<Experiment> GetOrCreateExperimentAsync(IMetadataStore store, CancellationToken cancellationToken) =>
        store.GetOrCreateExperimentAsync(ExperimentName, [new Tag("mlflow.note.content", "Created by capstan quickstart.")], cancellationToken);

    private static async Task UploadModelAsync(IArtifactStore artifacts, IrisTrainer trainer, ITransformer model, string artifactUri, CancellationToken cancellationToken)
    {
        var staging = Path.Combine(Path.GetTempPath(), $"capstan-model-{Guid.NewGuid():N}.zip");
        try
        {
            await using (var file = File.Create(staging))
            {
                trainer.Save(model, file);
            }

            await using var upload = File.OpenRead(staging);
            await artifacts.PutAsync(ArtifactUri.ToStorePath(artifactUri) + "/model/model.zip", upload, cancellationToken);
        }
        finally
        {
            File.Delete(staging);
        }
    }

    private static Task<ModelVersion> RegisterAsync(IMetadataStore store, Run run, CancellationToken cancellationToken) =>
        store.RegisterVersionAsync(
            new NewModelVersion(
                ModelName,
                run.Info.ArtifactUri + "/model",
                RunId: run.Info.RunId,
                Description: "Trained by capstan quickstart.",
                Tags: [new Tag("framework", "ml.net")],
                Signature: new ModelSignature(SignatureInputs, SignatureOutputs),
                UserId: run.Info.UserId),
            "Iris species from sepal and petal measurements (ML.NET SDCA maximum entropy).",
            ChampionAlias,
            cancellationToken);

    private static void WriteSummary(CliContext context, Result result, CapstanHome home)
    {
        var table = new Table().Title("[bold]Quickstart[/]").AddColumns("", "");
        table.HideHeaders();
        table.AddRow("Experiment", $"{Markup.Escape(result.Experiment.Name)} ({Markup.Escape(result.Experiment.ExperimentId)})");
        table.AddRow("Run", Markup.Escape(result.Run.Info.RunId));
        table.AddRow("Test accuracy", $"[green]{result.Final.Accuracy:P1}[/] (macro {result.Final.MacroAccuracy:P1}, log-loss {result.Final.LogLoss:F3})");
        table.AddRow("Model", $"{ModelName} v{result.Version.Version} @{ChampionAlias}");
        table.AddRow("Home", Markup.Escape(home.Root));
        table.AddRow("Time", $"{result.Elapsed.TotalSeconds:F1} s");
        context.Out.Write(table);
        context.Out.WriteLine();
        context.Out.MarkupLine("Where to look next:");
        var env = context.GetEnvironmentVariable(CapstanHome.EnvironmentVariable) == home.Root ? string.Empty : $"CAPSTAN_HOME={home.Root} ";
        context.Out.MarkupLineInterpolated($"  {env}./capstan runs list --experiment {ExperimentName}");
        context.Out.MarkupLineInterpolated($"  {env}./capstan models get {ModelName}");
        context.Out.MarkupLineInterpolated($"  {env}./capstan server   then open http://127.0.0.1:5000");
    }
}
