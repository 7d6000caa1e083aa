using System.Globalization;
using Capstan.Cli.Hosting;
using Capstan.Core.ControlPlane;
using Capstan.Core.Registry;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Core.Tracking;
using Capstan.Training.Tabular;
using k8s.Models;
using Spectre.Console;

namespace Capstan.Cli.Quickstart;

/// <summary>
/// The quickstart's training step: one TrainJob, run by the embedded control plane as a child process of
/// <c>capstan train tabular</c>, which logs its learning curve into the job's run and registers the ONNX model.
/// A progress bar follows the job's phase and the learning curve as the run receives it.
/// </summary>
public static class QuickstartTraining
{
    public const string JobName = "quickstart-iris";
    public const string Algorithm = "lightgbm";
    public const int Seed = 42;
    public const double TestFraction = 0.3;

    public sealed record Result(string JobName, int Attempts, Experiment Experiment, Run Run, ModelVersion Version);

    /// <summary>The TrainJob the quickstart runs, as a user would write it (see examples/trainjob-tabular.yaml).</summary>
    public static TrainJob Job(string dataPath, IReadOnlyList<string>? hyperparameters = null)
    {
        ArgumentNullException.ThrowIfNull(dataPath);
        var job = new TrainJob
        {
            Metadata = new ResourceMetadata { Name = JobName, Labels = new Dictionary<string, string> { ["app.kubernetes.io/part-of"] = "capstan-quickstart" } },
            Spec = new TrainJobSpec
            {
                Command = [.. Capstan.Server.Hosting.CapstanProgram.Command()],
                Args =
                [
                    "train", "tabular", "--data", dataPath, "--label", QuickstartCommand.Label,
                    "--algorithm", "${params.algorithm}", "--seed", "${params.seed}", "--test-fraction", "${params.test_fraction}",
                    "--register", $"{QuickstartCommand.ModelName}@{QuickstartCommand.ChampionAlias}",
                    .. hyperparameters ?? [],
                ],
                Params = new Dictionary<string, string>
                {
                    ["algorithm"] = Algorithm,
                    ["seed"] = Seed.ToString(CultureInfo.InvariantCulture),
                    ["test_fraction"] = TestFraction.ToString("R", CultureInfo.InvariantCulture),
                },
                Experiment = QuickstartCommand.ExperimentName,
                RestartPolicy = RestartPolicy.OnFailure,
                BackoffLimit = 1,
                ActiveDeadlineSeconds = 600,
                Resources = new V1ResourceRequirements { Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("1"), ["memory"] = new("1Gi") } },
            },
        };
        job.ApplyDefaults();
        return job;
    }

    /// <summary>Runs the job to its end; null (after saying why, with the job's last output) when it failed.</summary>
    public static async Task<Result?> RunAsync(QuickstartSession session, CancellationToken cancellationToken, IReadOnlyList<string>? hyperparameters = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        var (context, plane) = (session.Context, session.Plane);
        var job = Job(session.DataPath, hyperparameters);
        var ns = job.Metadata.Namespace!;

        // A quickstart run again on the same home trains again: the finished job of the last run makes way.
        if (await plane.Resources.FindAsync(TrainJob.KindName, ns, JobName, cancellationToken) is TrainJob { Status.Phase: TrainJobPhase.Succeeded or TrainJobPhase.Failed })
        {
            await plane.Resources.DeleteAsync(TrainJob.KindName, ns, JobName, cancellationToken);
        }

        await plane.Resources.ApplyAsync(job, cancellationToken);
        TrainJob final;
        try
        {
            final = await FollowAsync(session, ns, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl-C: the training process stops with the quickstart rather than running on unwatched.
            if (await plane.Resources.FindAsync(TrainJob.KindName, ns, JobName, CancellationToken.None) is TrainJob { Status.Attempts: > 0 } running)
            {
                await plane.Runtime.StopAsync(TrainJobWorkloads.WorkloadId(running, running.Status!.Attempts!.Value), CancellationToken.None);
            }

            throw;
        }

        var status = final.Status!;
        if (status.Phase != TrainJobPhase.Succeeded)
        {
            await foreach (var line in TrainJobLogs.ReadAsync(plane.Resources, plane.Runtime, ns, JobName, follow: false, cancellationToken: cancellationToken))
            {
                context.Error.WriteLine(line);
            }

            CommandAction.Fail(context, $"trainjob/{JobName} failed: {status.Message} (see ./capstan describe trainjob {JobName})");
            return null;
        }

        var run = await plane.Metadata.GetRunAsync(status.RunId!, cancellationToken);
        var experiment = await plane.Metadata.GetExperimentAsync(run.Info.ExperimentId, cancellationToken);
        var version = await plane.Metadata.GetModelVersionByAliasAsync(QuickstartCommand.ModelName, QuickstartCommand.ChampionAlias, cancellationToken);
        return new Result(JobName, status.Attempts ?? 1, experiment, run, version);
    }

    /// <summary>Shows the job's phase and learning curve on a progress bar until the job finishes.</summary>
    private static async Task<TrainJob> FollowAsync(QuickstartSession session, string ns, CancellationToken cancellationToken)
    {
        var plane = session.Plane;
        var options = new TabularTrainingOptions(QuickstartCommand.Label, TabularAlgorithm.LightGbm, TabularTask.Auto, Seed, TestFraction, null);
        var total = options.Checkpoints()[^1];
        TrainJob job = null!;
        await session.Context.Error.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                var bar = progress.AddTask($"trainjob/{JobName}: submitted", maxValue: total);
                while (true)
                {
                    job = await plane.Resources.GetAsync<TrainJob>(ns, JobName, cancellationToken);
                    var status = job.Status;
                    var phase = status?.Phase?.ToString() ?? "Pending";
                    if (status?.RunId is { } runId
                        && QuickstartCommand.Latest(await plane.Metadata.GetRunAsync(runId, cancellationToken), "accuracy") is { } accuracy)
                    {
                        bar.Value = Math.Min(total, accuracy.Step);
                        bar.Description = $"trainjob/{JobName}: {phase}, {accuracy.Step}/{total} {options.IterationUnit}, accuracy {accuracy.Value:P1}";
                    }
                    else
                    {
                        bar.Description = $"trainjob/{JobName}: {phase}";
                    }

                    if (status?.Phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed)
                    {
                        if (status.Phase == TrainJobPhase.Succeeded)
                        {
                            bar.Value = total;
                        }

                        return;
                    }

                    await Task.Delay(100, cancellationToken);
                }
            });
        return job;
    }
}
