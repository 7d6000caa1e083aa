using System.CommandLine;
using System.Net;
using Capstan.Client;
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
    /// <summary>
    /// The renderer's settings: a command-line option when given, else deploy/kubernetes' ConfigMap variables
    /// (<c>CAPSTAN_GANG_SCHEDULER</c>, <c>CAPSTAN_KUEUE_QUEUE</c>, <c>CAPSTAN_VOLCANO_QUEUE</c>, <c>CAPSTAN_API_URL</c>,
    /// <c>CAPSTAN_TRAINER_IMAGE</c>, <c>CAPSTAN_SERVING_IMAGE</c>, <c>CAPSTAN_GATEWAY_API</c>, <c>CAPSTAN_GATEWAY_NAME</c>), else the defaults.
    /// </summary>
    internal static RenderOptions RenderSettings(CliContext context, ParseResult parse, Option<GangScheduler?> gang, Option<string?> kueueQueue, Option<string?> apiUrl, Option<string?> trainerImage)
    {
        string? Setting(string name) => context.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;
        var scheduler = parse.GetValue(gang)
            ?? (Setting("CAPSTAN_GANG_SCHEDULER") is { } text
                ? Enum.TryParse<GangScheduler>(text, ignoreCase: true, out var parsed) ? parsed : throw Core.CapstanException.Invalid($"CAPSTAN_GANG_SCHEDULER '{text}': expected none, kueue or volcano")
                : GangScheduler.None);
        var defaults = RenderOptions.Default;
        return defaults with
        {
            GangScheduler = scheduler,
            KueueQueue = parse.GetValue(kueueQueue) ?? Setting("CAPSTAN_KUEUE_QUEUE") ?? defaults.KueueQueue,
            VolcanoQueue = Setting("CAPSTAN_VOLCANO_QUEUE") ?? defaults.VolcanoQueue,
            ApiUrl = parse.GetValue(apiUrl) ?? Setting("CAPSTAN_API_URL") ?? defaults.ApiUrl,
            TrainerImage = parse.GetValue(trainerImage) ?? Setting("CAPSTAN_TRAINER_IMAGE") ?? defaults.TrainerImage,
            ServingImage = Setting("CAPSTAN_SERVING_IMAGE") ?? defaults.ServingImage,
            GatewayApi = string.Equals(Setting("CAPSTAN_GATEWAY_API"), "true", StringComparison.OrdinalIgnoreCase),
            GatewayName = Setting("CAPSTAN_GATEWAY_NAME") ?? defaults.GatewayName,
        };
    }

    public static Command Create(CliContext context)
    {
        var kubeconfig = new Option<string?>("--kubeconfig") { Description = "The kubeconfig file (default: in-cluster service account, else $KUBECONFIG or ~/.kube/config)." };
        var kubeContext = new Option<string?>("--context") { Description = "The kubeconfig context to use." };
        var watchNamespace = new Option<string?>("--watch-namespace") { Description = "Reconcile only this namespace (default: every namespace)." };
        var identity = new Option<string?>("--identity") { Description = "This replica's name in the leader Lease (default: $POD_NAME, else host name and a random suffix)." };
        var leaderElect = new Option<bool>("--leader-elect") { Description = "Elect one active replica through a Lease.", DefaultValueFactory = _ => true };
        var leaseNamespace = new Option<string?>("--lease-namespace") { Description = "The namespace of the leader Lease (default: $POD_NAMESPACE, else capstan-system)." };
        var gang = new Option<GangScheduler?>("--gang-scheduler") { Description = "How distributed jobs are admitted all-or-nothing: None, Kueue or Volcano (default: $CAPSTAN_GANG_SCHEDULER, else None)." };
        var kueueQueue = new Option<string?>("--kueue-queue") { Description = "The Kueue LocalQueue TrainJobs are submitted to (default: $CAPSTAN_KUEUE_QUEUE, else default)." };
        var apiUrl = new Option<string?>("--api-url") { Description = $"The in-cluster Capstan API the pods report to (default: $CAPSTAN_API_URL, else {RenderOptions.DefaultApiUrl})." };
        var trainerImage = new Option<string?>("--trainer-image") { Description = "The image of a TrainJob that names none (default: $CAPSTAN_TRAINER_IMAGE, else the Capstan image)." };
        var workers = new Option<int>("--workers") { Description = "Reconciles at once per controller.", DefaultValueFactory = _ => 2 };
        var tracking = new Option<bool>("--tracking")
        {
            Description = "Give each TrainJob a tracking run in the Capstan API (--api-url) before its Job starts, as locally; --tracking false runs Jobs without one.",
            DefaultValueFactory = _ => true,
        };
        var metricsAddress = new Option<string>("--metrics-address")
        {
            Description = "Where /metrics, /healthz and /readyz listen (IP:PORT; in a pod, 0.0.0.0:8080 so the kubelet's probes reach it; empty turns them off).",
            DefaultValueFactory = _ => "127.0.0.1:8080",
        };
        var command = new Command("operator", "Run the Kubernetes operator: TrainJobs become Jobs, with status, events and leader election.")
        {
            kubeconfig, kubeContext, watchNamespace, identity, leaderElect, leaseNamespace, gang, kueueQueue, apiUrl, trainerImage, workers, tracking, metricsAddress,
        };
        command.SetHandler(context, async (parse, ct) =>
        {
            IPEndPoint? probes = null;
            if (parse.GetValue(metricsAddress) is { Length: > 0 } address && !IPEndPoint.TryParse(address, out probes))
            {
                CommandAction.Fail(context, $"--metrics-address '{address}' is not IP:PORT (such as 0.0.0.0:8080).");
                return ExitCodes.Usage;
            }

            var configuration = KubeconfigConnection.LoadForOperator(parse.GetValue(kubeconfig), parse.GetValue(kubeContext), context.GetEnvironmentVariable);
            var metrics = new OperatorMetrics();
            var render = RenderSettings(context, parse, gang, kueueQueue, apiUrl, trainerImage);
            using var api = parse.GetValue(tracking) ? new CapstanClient(new Uri(render.ApiUrl)) : null;
            var options = new OperatorOptions
            {
                Namespace = parse.GetValue(watchNamespace),
                Identity = parse.GetValue(identity) ?? context.GetEnvironmentVariable("POD_NAME") ?? new OperatorOptions().Identity,
                LeaderElection = parse.GetValue(leaderElect),
                LeaseNamespace = parse.GetValue(leaseNamespace) ?? context.GetEnvironmentVariable("POD_NAMESPACE") ?? "capstan-system",
                Workers = Math.Max(1, parse.GetValue(workers)),
                Render = render,
                Tracking = api,
                Metrics = metrics,
            };
            using var loggers = LoggerFactory.Create(logging => logging
                .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
                .SetMinimumLevel(LogLevel.Information));
            using var client = new k8s.Kubernetes(configuration);
            using var running = new CapstanOperator(client, options, loggers);
            await using var endpoint = probes is null ? null : metrics.BuildEndpoint(probes, () => running.ExecuteTask is { IsCompleted: false });
            if (endpoint is not null)
            {
                await endpoint.StartAsync(ct);
            }

            context.Error.MarkupLineInterpolated($"capstan operator [bold]{options.Identity}[/] on {configuration.Host}{(endpoint is null ? "" : $", /metrics on {string.Join(", ", endpoint.Urls)}")}; Ctrl-C to stop.");
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
            if (endpoint is not null)
            {
                await endpoint.StopAsync(grace.Token);
            }

            context.Error.MarkupLine("Stopped.");
            return ExitCodes.Ok;
        });
        return command;
    }
}
