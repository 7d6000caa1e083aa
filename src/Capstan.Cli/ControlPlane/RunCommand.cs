using System.CommandLine;
using Capstan.Cli.Hosting;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace Capstan.Cli.ControlPlane;

/// <summary>
/// <c>capstan run -f FILE</c>: validates the file as <c>apply</c> does, starts an embedded control plane (the server's,
/// on a free loopback port so jobs can log through the MLflow API) over the Capstan home, applies the file, streams each
/// TrainJob's output and phase changes, and waits: exit 0 when every job succeeded, 1 when one failed.
/// </summary>
public static class RunCommand
{
    public static Command Create(CliContext context)
    {
        var file = new Option<string>("--filename", "-f") { Description = "The YAML file to run.", Required = true };
        var command = new Command("run", "Run the TrainJobs and Experiments in a YAML file here and wait for them, streaming their output and progress; serve its InferenceServices until Ctrl-C.") { file };
        command.SetHandler(context, async (parse, ct) =>
        {
            var path = parse.GetRequiredValue(file);
            var loaded = ApplyCommand.Load(context, path);
            if (loaded is null)
            {
                return ExitCodes.UserError;
            }

            var home = Backend.ResolveHome(context).EnsureCreated();
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
                try
                {
                    return await RunAsync(context, plane.Services, loaded, ct);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    await StopJobsAsync(context, plane.Services, loaded);
                    await InferenceServiceRun.StopAsync(context, plane.Services, loaded);
                    throw;
                }
            }
        });
        return command;
    }

    private static async Task<int> RunAsync(CliContext context, IServiceProvider services, IReadOnlyList<Resource> loaded, CancellationToken cancellationToken)
    {
        var resources = services.GetRequiredService<IResourceStore>();
        var runtime = services.GetRequiredService<IWorkloadRuntime>();
        var jobs = new List<TrainJob>();
        var experiments = new List<TuningExperiment>();
        foreach (var resource in loaded)
        {
            // Running a file again runs its jobs again: a finished job of the same name is replaced, not reported.
            if (resource is TrainJob
                && await resources.FindAsync(resource.Kind, resource.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace, resource.Metadata.Name!, cancellationToken) is TrainJob { Status.Phase: TrainJobPhase.Succeeded or TrainJobPhase.Failed } finished)
            {
                await resources.DeleteAsync(finished.Kind, finished.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace, finished.Metadata.Name!, cancellationToken);
                context.Error.WriteLine($"trainjob/{finished.Metadata.Name} finished earlier ({finished.Status?.Phase}); running it again");
            }

            if (resource is TuningExperiment
                && await resources.FindAsync(resource.Kind, resource.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace, resource.Metadata.Name!, cancellationToken) is TuningExperiment { Status.Phase: ExperimentPhase.Succeeded or ExperimentPhase.Failed } done)
            {
                // Its trials go with it (the control plane deletes them); the new experiment's trials are its own.
                await resources.DeleteAsync(done.Kind, done.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace, done.Metadata.Name!, cancellationToken);
                context.Error.WriteLine($"experiment/{done.Metadata.Name} finished earlier ({done.Status?.Phase}); running it again");
            }

            var result = await resources.ApplyAsync(resource, cancellationToken);
            context.Error.WriteLine($"{resource.Kind.ToLowerInvariant()}/{resource.Metadata.Name} {result.Outcome.ToString().ToLowerInvariant()}");
            if (result.Object is TrainJob job)
            {
                jobs.Add(job);
            }
            else if (result.Object is TuningExperiment experiment)
            {
                experiments.Add(experiment);
            }
        }

        var failed = 0;
        foreach (var job in jobs)
        {
            var ns = job.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;
            var name = job.Metadata.Name!;
            using var watching = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var phases = ShowPhasesAsync(context, resources, ns, name, watching.Token);
            var output = context.RawOut;
            await foreach (var line in TrainJobLogs.ReadAsync(resources, runtime, ns, name, follow: true, cancellationToken: cancellationToken))
            {
                await output.WriteLineAsync(line);
                await output.FlushAsync(cancellationToken);
            }

            await watching.CancelAsync();
            await phases;
            var final = await resources.GetAsync<TrainJob>(ns, name, cancellationToken);
            var status = final.Status;
            if (status?.Phase == TrainJobPhase.Succeeded)
            {
                context.Error.MarkupLineInterpolated($"[green]trainjob/{name} succeeded[/] after {status.Attempts} attempt(s); run {status.RunId}");
            }
            else
            {
                failed++;
                var reason = status?.Conditions?.FirstOrDefault(c => c.Type == TrainJobReconciler.ConditionFailed)?.Reason ?? "Failed";
                CommandAction.Fail(context, $"trainjob/{name} failed ({reason}): {status?.Message}");
            }
        }

        foreach (var experiment in experiments)
        {
            if (!await RunExperiments.WaitAsync(context, resources, experiment, cancellationToken))
            {
                failed++;
            }
        }

        if (failed == 0 && InferenceServiceRun.Applies(loaded))
        {
            return await InferenceServiceRun.ServeAsync(context, services, loaded, cancellationToken);
        }

        return failed == 0 ? ExitCodes.Ok : ExitCodes.UserError;
    }

    /// <summary>Ctrl-C: the jobs this command started stop with it rather than run on unwatched.</summary>
    private static async Task StopJobsAsync(CliContext context, IServiceProvider services, IReadOnlyList<Resource> loaded)
    {
        var resources = services.GetRequiredService<IResourceStore>();
        var runtime = services.GetRequiredService<IWorkloadRuntime>();
        foreach (var experiment in loaded.OfType<TuningExperiment>())
        {
            await RunExperiments.StopTrialsAsync(context, resources, runtime, experiment);
        }

        foreach (var resource in loaded.OfType<TrainJob>())
        {
            if (await resources.FindAsync(resource.Kind, resource.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace, resource.Metadata.Name!, CancellationToken.None) is TrainJob { Status.Attempts: > 0 } job
                && job.Status?.Phase is not (TrainJobPhase.Succeeded or TrainJobPhase.Failed))
            {
                await runtime.StopAsync(TrainJobWorkloads.WorkloadId(job, job.Status!.Attempts!.Value), CancellationToken.None);
                context.Error.WriteLine($"trainjob/{job.Metadata.Name} stopped");
            }
        }
    }

    /// <summary>Prints each phase change (with the reason when queued or retrying) until cancelled.</summary>
    private static async Task ShowPhasesAsync(CliContext context, IResourceStore resources, string ns, string name, CancellationToken cancellationToken)
    {
        string? last = null;
        try
        {
            while (true)
            {
                var job = await resources.GetAsync<TrainJob>(ns, name, cancellationToken);
                var status = job.Status;
                var line = status?.Phase is { } phase ? $"trainjob/{name}: {phase} (attempt {status.Attempts ?? 0}) {status.Message}" : null;
                if (line is not null && line != last)
                {
                    context.Error.WriteLine(line);
                    last = line;
                }

                if (status?.Phase is TrainJobPhase.Succeeded or TrainJobPhase.Failed)
                {
                    return;
                }

                await Task.Delay(100, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The job's output has ended.
        }
    }
}
