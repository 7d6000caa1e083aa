using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace Capstan.Cli.ControlPlane;

/// <summary>
/// The InferenceService part of <c>capstan run -f</c>: waits until each service is ready, prints where it serves, and keeps
/// serving until Ctrl-C, when the services it started are deleted and their servers stopped.
/// </summary>
internal static class InferenceServiceRun
{
    /// <summary>How long a service may take to become ready before <c>run</c> gives up on it.</summary>
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromMinutes(2);

    public static bool Applies(IReadOnlyList<Resource> loaded) => loaded.OfType<InferenceService>().Any();

    public static async Task<int> ServeAsync(CliContext context, IServiceProvider services, IReadOnlyList<Resource> loaded, CancellationToken cancellationToken)
    {
        var resources = services.GetRequiredService<IResourceStore>();
        foreach (var wanted in loaded.OfType<InferenceService>())
        {
            var service = await WaitReadyAsync(context, resources, wanted, cancellationToken);
            if (service?.Status?.Phase != InferenceServicePhase.Ready)
            {
                CommandAction.Fail(context, $"inferenceservice/{wanted.Metadata.Name} is not ready: {service?.Status?.Message}");
                await StopAsync(context, services, loaded);
                return ExitCodes.UserError;
            }

            var status = service.Status;
            context.Out.MarkupLineInterpolated($"inferenceservice/{service.Metadata.Name} [green]ready[/]: [bold link]{status.Url}/v2/models/{status.ModelName}/infer[/] (gRPC {status.GrpcAddress})");
        }

        context.Error.WriteLine("Serving until Ctrl-C.");
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl-C: the normal end of serving.
        }

        await StopAsync(context, services, loaded);
        return ExitCodes.Ok;
    }

    /// <summary>Deletes the services of the file and stops their servers (the controller may be stopping already).</summary>
    public static async Task StopAsync(CliContext context, IServiceProvider services, IReadOnlyList<Resource> loaded)
    {
        var resources = services.GetRequiredService<IResourceStore>();
        var reconciler = services.GetRequiredService<InferenceServiceReconciler>();
        foreach (var wanted in loaded.OfType<InferenceService>())
        {
            if (await resources.FindAsync(wanted.Kind, wanted.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace, wanted.Metadata.Name!, CancellationToken.None) is InferenceService service)
            {
                await resources.DeleteAsync(service.Kind, service.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace, service.Metadata.Name!, CancellationToken.None);
                await reconciler.StopDeletedAsync(service, CancellationToken.None);
                context.Error.WriteLine($"inferenceservice/{service.Metadata.Name} stopped");
            }
        }
    }

    private static async Task<InferenceService?> WaitReadyAsync(CliContext context, IResourceStore resources, InferenceService wanted, CancellationToken cancellationToken)
    {
        var ns = wanted.Metadata.Namespace ?? ResourceMetadata.DefaultNamespace;
        var name = wanted.Metadata.Name!;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ReadyTimeout);
        string? last = null;
        InferenceService? service = null;
        try
        {
            while (true)
            {
                service = await resources.GetAsync<InferenceService>(ns, name, timeout.Token);
                var status = service.Status;
                var line = status?.Phase is { } phase ? $"inferenceservice/{name}: {phase} {status.Message}" : null;
                if (line is not null && line != last)
                {
                    context.Error.WriteLine(line);
                    last = line;
                }

                if (status?.Phase == InferenceServicePhase.Ready
                    || status?.Conditions?.FirstOrDefault(c => c.Type == InferenceServiceReconciler.ConditionReady)?.Reason is InferenceServiceReconciler.ReasonNoServer or InferenceServiceReconciler.ReasonInvalidSpec)
                {
                    return service;
                }

                await Task.Delay(100, timeout.Token);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return service;
        }
    }
}
