using System.CommandLine;
using Capstan.Runtime.Kubernetes.Cluster;
using Capstan.Runtime.Kubernetes.Operator;
using Capstan.Runtime.Kubernetes.Rendering;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Capstan.Cli.Cluster;

/// <summary>
/// <c>capstan operator</c>: the controllers that run Capstan custom resources on the cluster, until Ctrl-C or SIGTERM.
/// Inside a pod it uses the pod's service account; elsewhere the kubeconfig. Replicas elect one leader through a Lease.
/// </summary>
public static class OperatorCommand
{
    public static Command Create(CliContext context)
    {
        var kubeconfig = new Option<string?>("--kubeconfig") { Description = "The kubeconfig file (default: in-cluster service account, else $KUBECONFIG or ~/.kube/config)." };
        var kubeContext = new Option<string?>("--context") { Description = "The kubeconfig context to use." };
        var watchNamespace = new Option<string?>("--watch-namespace") { Description = "Reconcile only this namespace (default: every namespace)." };
        var identity = new Option<string?>("--identity") { Description = "This replica's name in the leader Lease (default: $POD_NAME, else host name and a random suffix)." };
        var leaderElect = new Option<bool>("--leader-elect") { Description = "Elect one active replica through a Lease.", DefaultValueFactory = _ => true };
        var leaseNamespace = new Option<string?>("--lease-namespace") { Description = "The namespace of the leader Lease (default: $POD_NAMESPACE, else capstan-system)." };
        var gang = new Option<GangScheduler>("--gang-scheduler") { Description = "How distributed jobs are admitted all-or-nothing: None, Kueue or Volcano.", DefaultValueFactory = _ => GangScheduler.None };
        var kueueQueue = new Option<string>("--kueue-queue") { Description = "The Kueue LocalQueue TrainJobs are submitted to.", DefaultValueFactory = _ => "default" };
        var apiUrl = new Option<string>("--api-url") { Description = "The in-cluster Capstan API the pods report to.", DefaultValueFactory = _ => RenderOptions.DefaultApiUrl };
        var trainerImage = new Option<string>("--trainer-image") { Description = "The image of a TrainJob that names none.", DefaultValueFactory = _ => RenderOptions.DefaultTrainerImage };
        var workers = new Option<int>("--workers") { Description = "Reconciles at once per controller.", DefaultValueFactory = _ => 2 };
        var command = new Command("operator", "Run the Kubernetes operator: TrainJobs become Jobs, with status, events and leader election.")
        {
            kubeconfig, kubeContext, watchNamespace, identity, leaderElect, leaseNamespace, gang, kueueQueue, apiUrl, trainerImage, workers,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            var configuration = KubeconfigConnection.LoadForOperator(parse.GetValue(kubeconfig), parse.GetValue(kubeContext), context.GetEnvironmentVariable);
            var options = new OperatorOptions
            {
                Namespace = parse.GetValue(watchNamespace),
                Identity = parse.GetValue(identity) ?? context.GetEnvironmentVariable("POD_NAME") ?? new OperatorOptions().Identity,
                LeaderElection = parse.GetValue(leaderElect),
                LeaseNamespace = parse.GetValue(leaseNamespace) ?? context.GetEnvironmentVariable("POD_NAMESPACE") ?? "capstan-system",
                Workers = Math.Max(1, parse.GetValue(workers)),
                Render = new RenderOptions
                {
                    GangScheduler = parse.GetValue(gang),
                    KueueQueue = parse.GetRequiredValue(kueueQueue),
                    ApiUrl = parse.GetRequiredValue(apiUrl),
                    TrainerImage = parse.GetRequiredValue(trainerImage),
                },
            };
            using var loggers = LoggerFactory.Create(logging => logging
                .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
                .SetMinimumLevel(LogLevel.Information));
            using var client = new k8s.Kubernetes(configuration);
            using var running = new CapstanOperator(client, options, loggers);
            context.Error.MarkupLineInterpolated($"capstan operator [bold]{options.Identity}[/] on {configuration.Host}; Ctrl-C to stop.");
            await running.StartAsync(ct);
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Ctrl-C or SIGTERM: stop the controllers cleanly.
            }

            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await running.StopAsync(grace.Token);
            context.Error.MarkupLine("Stopped.");
            return ExitCodes.Ok;
        });
        return command;
    }
}
