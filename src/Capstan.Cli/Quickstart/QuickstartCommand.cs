using System.CommandLine;
using System.Diagnostics;
using Capstan.Cli.Hosting;
using Capstan.Core;
using Capstan.Core.Tracking;
using Spectre.Console;

namespace Capstan.Cli.Quickstart;

/// <summary>
/// <c>capstan quickstart</c>: the whole laptop loop on the embedded defaults, in seconds. It starts an embedded control
/// plane over a Capstan home, trains a real classifier on the bundled Iris data as a TrainJob running
/// <c>capstan train tabular</c> (a child process logging its run through the MLflow-compatible API, exporting ONNX),
/// registers it as <c>iris-classifier@champion</c>, and prints where to look next.
/// </summary>
public static class QuickstartCommand
{
    public const string ExperimentName = "quickstart";
    public const string ModelName = "iris-classifier";
    public const string ChampionAlias = "champion";
    public const string DataFile = "iris.csv";
    public const string Label = "species";

    public static Command Create(CliContext context)
    {
        var command = new Command("quickstart", "Train, track and register a real model on the bundled Iris data, with an embedded control plane.");
        var homeOption = new Option<string?>("--home") { Description = "Capstan home to use (default: $CAPSTAN_HOME, else a fresh temporary folder)." };
        command.Add(homeOption);
        command.SetHandler(context, async (parse, ct) =>
        {
            var home = ResolveHome(context, parse.GetValue(homeOption), out var fresh).EnsureCreated();
            context.Error.MarkupLineInterpolated($"Using Capstan home [bold]{home.Root}[/]{(fresh ? " (a new temporary folder)" : string.Empty)}.");
            var clock = Stopwatch.StartNew();
            EmbeddedControlPlane plane;
            try
            {
                plane = await EmbeddedControlPlane.StartAsync(home, ct);
            }
            catch (InvalidOperationException ex)
            {
                CommandAction.Fail(context, ex.Message);
                return ExitCodes.Unavailable;
            }

            await using (plane)
            {
                var session = new QuickstartSession(context, plane, home, WriteData(home));
                var tuned = await QuickstartTuning.RunAsync(session, ct);
                if (tuned is null)
                {
                    return ExitCodes.UserError;
                }

                var trained = await QuickstartTraining.RunAsync(session, ct, tuned.TrainingArguments);
                if (trained is null)
                {
                    return ExitCodes.UserError;
                }

                if (await QuickstartServing.RunAsync(session, $"models:/{ModelName}@{ChampionAlias}", ct) is null)
                {
                    return ExitCodes.UserError;
                }

                WriteSummary(context, trained, home, clock.Elapsed);
                return ExitCodes.Ok;
            }
        });
        return command;
    }

    /// <summary>The bundled Iris CSV, written under the home so the job's process can read it.</summary>
    private static string WriteData(CapstanHome home)
    {
        var folder = Directory.CreateDirectory(Path.Combine(home.Root, "quickstart")).FullName;
        var path = Path.Combine(folder, DataFile);
        var csv = IrisData.ReadCsv();
        if (!File.Exists(path) || !File.ReadAllBytes(path).AsSpan().SequenceEqual(csv))
        {
            File.WriteAllBytes(path, csv);
        }

        return path;
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

    private static void WriteSummary(CliContext context, QuickstartTraining.Result result, CapstanHome home, TimeSpan elapsed)
    {
        var table = new Table().Title("[bold]Quickstart[/]").AddColumns("", "");
        table.HideHeaders();
        table.AddRow("Experiment", $"{Markup.Escape(result.Experiment.Name)} ({Markup.Escape(result.Experiment.ExperimentId)})");
        table.AddRow("TrainJob", $"{Markup.Escape(result.JobName)} ({result.Attempts} attempt(s))");
        table.AddRow("Run", Markup.Escape(result.Run.Info.RunId));
        table.AddRow("Test accuracy", $"[green]{Metric(result.Run, "accuracy"):P1}[/] (macro {Metric(result.Run, "macro_accuracy"):P1}, log-loss {Metric(result.Run, "log_loss"):F3})");
        table.AddRow("Model", $"{ModelName} v{result.Version.Version} @{ChampionAlias} (ONNX)");
        table.AddRow("Home", Markup.Escape(home.Root));
        table.AddRow("Time", $"{elapsed.TotalSeconds:F1} s");
        context.Out.Write(table);
        context.Out.WriteLine();
        context.Out.MarkupLine("Where to look next:");
        var env = context.GetEnvironmentVariable(CapstanHome.EnvironmentVariable) == home.Root ? string.Empty : $"CAPSTAN_HOME={home.Root} ";
        context.Out.MarkupLineInterpolated($"  {env}./capstan runs list --experiment {ExperimentName}");
        context.Out.MarkupLineInterpolated($"  {env}./capstan describe trainjob {result.JobName}");
        context.Out.MarkupLineInterpolated($"  {env}./capstan models get {ModelName}");
        context.Out.MarkupLineInterpolated($"  {env}./capstan serve models:/{ModelName}@{ChampionAlias}");
        context.Out.MarkupLineInterpolated($"  {env}./capstan server   then open http://127.0.0.1:5000");
    }

    /// <summary>The run's latest value of <paramref name="key"/>, or null before the first one arrives.</summary>
    public static Metric? Latest(Run run, string key)
    {
        ArgumentNullException.ThrowIfNull(run);
        foreach (var metric in run.Data.Metrics)
        {
            if (metric.Key == key)
            {
                return metric;
            }
        }

        return null;
    }

    private static double Metric(Run run, string key) => Latest(run, key)?.Value ?? double.NaN;
}

/// <summary>What each quickstart step works with: the console, the embedded control plane, the home and the data file.</summary>
public sealed record QuickstartSession(CliContext Context, EmbeddedControlPlane Plane, CapstanHome Home, string DataPath);
