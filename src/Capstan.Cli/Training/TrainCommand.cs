using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Capstan.Cli.Hosting;
using Capstan.Cli.Tracking;
using Capstan.Client;
using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.Registry;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;
using Capstan.Training.Tabular;
using Spectre.Console;

namespace Capstan.Cli.Training;

/// <summary>
/// <c>capstan train tabular</c>: trains ML.NET on a CSV, logs the run (params, learning curve,
/// final test metrics, the data set), exports the model to ONNX with its signature, uploads it
/// under the run's <c>model/</c> artifacts and optionally registers it. Inside a TrainJob
/// (<c>CAPSTAN_RUN_ID</c> set) it logs into the job's run instead of creating one.
/// </summary>
public static class TrainCommand
{
    public const string RunIdVariable = "CAPSTAN_RUN_ID";
    public const string DefaultExperiment = "Default";
    public const string ModelArtifactPath = "model";

    public static Command Create(CliContext context)
    {
        var train = new Command("train", "Train a model with a built-in trainer, tracked as a run.");
        train.Add(CreateTabular(context));
        return train;
    }

    private static Command CreateTabular(CliContext context)
    {
        var data = new Option<FileInfo>("--data") { Description = "CSV file with a header row.", Required = true };
        var label = new Option<string>("--label") { Description = "The column to predict.", Required = true };
        var algorithm = new Option<string>("--algorithm") { Description = "lightgbm, fasttree or sdca.", DefaultValueFactory = _ => "lightgbm" };
        algorithm.AcceptOnlyFromAmong("lightgbm", "fasttree", "sdca");
        var task = new Option<string>("--task") { Description = "auto (from the label's values), binary, multiclass or regression.", DefaultValueFactory = _ => "auto" };
        task.AcceptOnlyFromAmong("auto", "binary", "multiclass", "regression");
        var experiment = new Option<string?>("--experiment") { Description = $"Experiment to log into (default: {DefaultExperiment}); ignored when {RunIdVariable} is set." };
        var register = new Option<string?>("--register") { Description = "Register the model as MODEL or MODEL@ALIAS." };
        var output = new Option<DirectoryInfo?>("--output") { Description = "Also keep model.onnx and signature.json in this folder." };
        var seed = new Option<int>("--seed") { Description = "Seed of the split and the trainer.", DefaultValueFactory = _ => 42 };
        var testFraction = new Option<double>("--test-fraction") { Description = "Share of rows held out for the test metrics.", DefaultValueFactory = _ => 0.2 };
        var iterations = new Option<int?>("--iterations") { Description = $"Trees (lightgbm, fasttree; default {TabularTrainingOptions.DefaultTrees}) or passes (sdca; default {TabularTrainingOptions.DefaultPasses})." };

        var leaves = new Option<int?>("--leaves") { Description = $"Leaves per tree (lightgbm, fasttree; default {TabularTrainingOptions.Leaves})." };
        var learningRate = new Option<double?>("--learning-rate") { Description = $"Boosting learning rate (lightgbm, fasttree; default {TabularTrainingOptions.LearningRate.ToString(CultureInfo.InvariantCulture)})." };
        var minLeaf = new Option<int?>("--min-examples-per-leaf") { Description = $"Fewest rows in a leaf (lightgbm, fasttree; default {TabularTrainingOptions.MinimumExamplesPerLeaf})." };
        var l2 = new Option<float?>("--l2") { Description = $"L2 regularization (sdca; default {TabularTrainingOptions.L2.ToString(CultureInfo.InvariantCulture)})." };

        var command = new Command("tabular", "Train a classifier or regressor on a CSV with ML.NET and export it to ONNX.")
        {
            data, label, algorithm, task, experiment, register, output, seed, testFraction, iterations, leaves, learningRate, minLeaf, l2,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            var request = new TabularRequest(
                parse.GetValue(data)!.FullName,
                new TabularTrainingOptions(
                    parse.GetValue(label)!,
                    Enum.Parse<TabularAlgorithm>(parse.GetValue(algorithm)!, ignoreCase: true),
                    Enum.Parse<TabularTask>(parse.GetValue(task)!, ignoreCase: true),
                    parse.GetValue(seed),
                    parse.GetValue(testFraction),
                    parse.GetValue(iterations))
                {
                    NumberOfLeaves = parse.GetValue(leaves),
                    BoostingLearningRate = parse.GetValue(learningRate),
                    MinimumExampleCountPerLeaf = parse.GetValue(minLeaf),
                    L2Regularization = parse.GetValue(l2),
                },
                parse.GetValue(experiment),
                ModelReference.Parse(parse.GetValue(register)),
                parse.GetValue(output)?.FullName);
            return await RunAsync(context, request, ct);
        });
        return command;
    }

    public sealed record TabularRequest(string DataPath, TabularTrainingOptions Options, string? Experiment, ModelReference? Register, string? OutputDirectory);

    public static async Task<int> RunAsync(CliContext context, TabularRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var clock = Stopwatch.StartNew();

        // Bad input fails here, before anything is written to the tracking store.
        CsvTable table;
        TabularTrainer trainer;
        try
        {
            table = CsvTable.Read(request.DataPath);
            trainer = new TabularTrainer(table, request.Options);
        }
        catch (TrainingDataException ex)
        {
            CommandAction.Fail(context, ex.Message);
            return ExitCodes.UserError;
        }

        using (trainer)
        {
            await using var backend = await Backend.OpenAsync(context, cancellationToken);
            var store = backend.Metadata;
            var (run, ownsRun) = await OpenRunAsync(context, store, request, cancellationToken);
            var runId = run.Info.RunId;
            try
            {
                await store.LogInputsAsync(runId, [DescribeDataset(request.DataPath, table, trainer.Schema)], cancellationToken);
                TabularModel model;
                await using (var logger = new RunLogger(store, runId))
                {
                    LogParams(logger, request, trainer);
                    model = await TrainWithProgressAsync(context, trainer, logger, cancellationToken);
                    logger.LogMetric("training_seconds", clock.Elapsed.TotalSeconds);
                }

                var signature = await ExportAndUploadAsync(backend.Artifacts, model, run.Info.ArtifactUri, request.OutputDirectory, cancellationToken);
                ModelVersion? version = null;
                if (request.Register is { } reference)
                {
                    version = await RegisterAsync(store, run, reference, signature, request, cancellationToken);
                }

                if (ownsRun)
                {
                    await store.UpdateRunAsync(runId, new RunUpdate(RunStatus.Finished, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), cancellationToken);
                }

                foreach (var (name, value) in model.Metrics)
                {
                    context.RawOut.WriteLine($"{name}={value.ToString("R", CultureInfo.InvariantCulture)}");
                }

                context.RawOut.Flush();
                WriteSummary(context, run, trainer, model, signature, version, request, clock.Elapsed);
                return ExitCodes.Ok;
            }
            catch (TrainingDataException ex)
            {
                await FailRunAsync(store, runId, ownsRun);
                CommandAction.Fail(context, ex.Message);
                return ExitCodes.UserError;
            }
            catch
            {
                await FailRunAsync(store, runId, ownsRun);
                throw;
            }
        }
    }

    private static async Task<(Run Run, bool Owns)> OpenRunAsync(CliContext context, IMetadataStore store, TabularRequest request, CancellationToken cancellationToken)
    {
        if (context.GetEnvironmentVariable(RunIdVariable) is { Length: > 0 } jobRunId)
        {
            return (await store.GetRunAsync(jobRunId, cancellationToken), false);
        }

        var experiment = await store.GetOrCreateExperimentAsync(request.Experiment ?? DefaultExperiment, null, cancellationToken);

        var algorithm = request.Options.Algorithm.ToString().ToLowerInvariant();
        var run = await store.CreateRunAsync(
            new NewRun(
                experiment.ExperimentId,
                RunName: $"{algorithm}-{Path.GetFileNameWithoutExtension(request.DataPath)}-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}",
                UserId: Environment.UserName,
                Tags: [new Tag("mlflow.source.name", "capstan train tabular"), new Tag("mlflow.source.type", "LOCAL")]),
            cancellationToken);
        return (run, true);
    }

    private static async Task FailRunAsync(IMetadataStore store, string runId, bool ownsRun)
    {
        if (ownsRun)
        {
            await store.UpdateRunAsync(runId, new RunUpdate(RunStatus.Failed, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), CancellationToken.None);
        }
    }

    /// <summary>The CSV as an MLflow dataset input: digest = the first 32 hex digits of its SHA-256 (MLflow's cap), the full hash in the profile.</summary>
    private static DatasetInput DescribeDataset(string path, CsvTable table, TabularSchema schema)
    {
        string sha256;
        using (var file = File.OpenRead(path))
        {
            sha256 = Convert.ToHexStringLower(SHA256.HashData(file));
        }

        var columns = table.Header.Select(h =>
        {
            var feature = schema.Features.FirstOrDefault(f => f.Name == h);
            var type = feature is null
                ? (schema.Task == TabularTask.Regression ? "float" : "string")
                : (feature.Kind == ColumnKind.Numeric ? "float" : "string");
            return new Dictionary<string, string> { ["type"] = type, ["name"] = h };
        }).ToList();
        var schemaJson = JsonSerializer.Serialize(new Dictionary<string, object> { ["mlflow_colspec"] = columns });
        var profile = JsonSerializer.Serialize(new Dictionary<string, object> { ["num_rows"] = table.Rows.Count, ["sha256"] = sha256 });
        return new DatasetInput(
            new Dataset(Path.GetFileNameWithoutExtension(path), sha256[..32], "local", new Uri(path).AbsoluteUri, schemaJson, profile),
            [new Tag("mlflow.data.context", "training")]);
    }

    private static void LogParams(RunLogger logger, TabularRequest request, TabularTrainer trainer)
    {
        var options = request.Options;
        logger.LogParam("algorithm", options.Algorithm.ToString().ToLowerInvariant());
        logger.LogParam("task", trainer.Schema.Task.ToString().ToLowerInvariant());
        logger.LogParam("label", trainer.Schema.Label);
        logger.LogParam("seed", options.Seed.ToString(CultureInfo.InvariantCulture));
        logger.LogParam("test_fraction", options.TestFraction.ToString("R", CultureInfo.InvariantCulture));
        logger.LogParam("rows", (trainer.TrainRows + trainer.TestRows).ToString(CultureInfo.InvariantCulture));
        logger.LogParam("train_rows", trainer.TrainRows.ToString(CultureInfo.InvariantCulture));
        logger.LogParam("test_rows", trainer.TestRows.ToString(CultureInfo.InvariantCulture));
        logger.LogParam("features", trainer.Schema.Features.Count.ToString(CultureInfo.InvariantCulture));
        logger.LogParam("categorical_features", string.Join(",", trainer.Schema.Features.Where(f => f.Kind == ColumnKind.Categorical).Select(f => f.Name)));
        if (trainer.DroppedRows > 0)
        {
            logger.LogParam("rows_without_label", trainer.DroppedRows.ToString(CultureInfo.InvariantCulture));
        }

        foreach (var (key, value) in options.Hyperparameters)
        {
            logger.LogParam(key, value);
        }
    }

    private static async Task<TabularModel> TrainWithProgressAsync(CliContext context, TabularTrainer trainer, RunLogger logger, CancellationToken cancellationToken)
    {
        var options = trainer.Options;
        var checkpoints = options.Checkpoints();
        var headline = trainer.Schema.Task == TabularTask.Regression ? "rmse" : "accuracy";
        TabularModel? model = null;
        await context.Error.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                var algorithm = options.Algorithm.ToString().ToLowerInvariant();
                var bar = progress.AddTask($"Training {algorithm}", maxValue: checkpoints[^1]);
                model = await Task.Run(
                    () => trainer.Train(
                        checkpoint =>
                        {
                            foreach (var (name, value) in checkpoint.Metrics)
                            {
                                logger.LogMetric(name, value, checkpoint.Step);
                            }

                            bar.Description = $"Training {algorithm}: {checkpoint.Step} {options.IterationUnit}, {headline} {checkpoint.Metrics[headline]:G4}";
                            bar.Value = checkpoint.Step;
                        },
                        cancellationToken),
                    cancellationToken);
            });
        return model!;
    }

    private static async Task<OnnxSignature> ExportAndUploadAsync(IArtifactStore artifacts, TabularModel model, string artifactUri, string? outputDirectory, CancellationToken cancellationToken)
    {
        var directory = outputDirectory ?? Directory.CreateTempSubdirectory("capstan-model-").FullName;
        try
        {
            var signature = model.ExportOnnx(directory);
            var root = ArtifactUri.ToStorePath(artifactUri) + "/" + ModelArtifactPath;
            foreach (var name in new[] { TabularModel.OnnxFileName, TabularModel.SignatureFileName })
            {
                await using var file = File.OpenRead(Path.Combine(directory, name));
                await artifacts.PutAsync($"{root}/{name}", file, cancellationToken);
            }

            return signature;
        }
        finally
        {
            if (outputDirectory is null)
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    private static Task<ModelVersion> RegisterAsync(IMetadataStore store, Run run, ModelReference reference, OnnxSignature signature, TabularRequest request, CancellationToken cancellationToken) =>
        store.RegisterVersionAsync(
            new NewModelVersion(
                reference.Name,
                run.Info.ArtifactUri + "/" + ModelArtifactPath,
                RunId: run.Info.RunId,
                Description: $"{request.Options.Algorithm.ToString().ToLowerInvariant()} {signature.Task} model of '{signature.Label}', trained by capstan train tabular.",
                Tags: [new Tag("framework", "onnx"), new Tag("task", signature.Task)],
                Signature: new ModelSignature(signature.MlflowInputs(), signature.MlflowOutputs()),
                UserId: run.Info.UserId),
            modelDescription: null,
            reference.Alias,
            cancellationToken);

    private static void WriteSummary(CliContext context, Run run, TabularTrainer trainer, TabularModel model, OnnxSignature signature, ModelVersion? version, TabularRequest request, TimeSpan elapsed)
    {
        var table = new Table().Title("[bold]Training[/]").AddColumns("", "");
        table.HideHeaders();
        table.AddRow("Run", Markup.Escape(run.Info.RunId));
        table.AddRow("Task", $"{signature.Task} on '{Markup.Escape(signature.Label)}' ({Markup.Escape(request.Options.Algorithm.ToString().ToLowerInvariant())})");
        table.AddRow("Rows", $"{trainer.TrainRows} train, {trainer.TestRows} test, {trainer.Schema.Features.Count} features");
        foreach (var (name, value) in model.Metrics)
        {
            table.AddRow(Markup.Escape(name), Formatting.Number(value));
        }

        table.AddRow("Model", Markup.Escape(run.Info.ArtifactUri + "/" + ModelArtifactPath + "/" + TabularModel.OnnxFileName));
        if (version is not null)
        {
            var alias = request.Register?.Alias is { } a ? $" @{a}" : string.Empty;
            table.AddRow("Registered", Markup.Escape($"{version.Name} v{version.Version}{alias}"));
        }

        if (request.OutputDirectory is { } output)
        {
            table.AddRow("Output", Markup.Escape(output));
        }

        table.AddRow("Time", $"{elapsed.TotalSeconds:F1} s");
        context.Error.Write(table);
    }
}

/// <summary>A registered model name with an optional alias: <c>NAME</c> or <c>NAME@ALIAS</c>.</summary>
public sealed record ModelReference(string Name, string? Alias)
{
    public static ModelReference? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var at = text.LastIndexOf('@');
        if (at < 0)
        {
            return new ModelReference(text, null);
        }

        if (at == 0 || at == text.Length - 1)
        {
            throw CapstanException.Invalid($"--register '{text}' is not MODEL or MODEL@ALIAS.");
        }

        return new ModelReference(text[..at], text[(at + 1)..]);
    }
}
