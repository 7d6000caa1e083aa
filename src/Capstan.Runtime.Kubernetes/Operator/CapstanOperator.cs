using Capstan.Runtime.Kubernetes.Cluster;
using k8s;
using k8s.Autorest;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>
/// <c>capstan operator</c>: the controllers, run by the one replica that holds the <c>coordination.k8s.io/v1</c> Lease
/// (the KubernetesClient's <see cref="LeaderElector"/> over a <see cref="LeaseLock"/>). A standby takes the Lease when
/// the leader stops renewing it; a leader that loses it stops its controllers and stands for election again. Every
/// controller starts with a list, so a new leader (or a restarted operator) picks up every resource where the cluster
/// says it is. On a clean stop the leader stops its controllers, then releases the Lease (as client-go's
/// <c>ReleaseOnCancel</c> does, which this client's elector lacks), so a standby takes over at its next retry instead
/// of waiting out the lease duration.
/// </summary>
public sealed class CapstanOperator(IKubernetes client, OperatorOptions options, ILoggerFactory loggers) : BackgroundService
{
    private readonly ILogger _logger = loggers.CreateLogger<CapstanOperator>();
    private volatile bool _leading;

    /// <summary>Whether this replica runs the controllers now.</summary>
    public bool IsLeader
    {
        get => _leading;
        private set
        {
            _leading = value;
            options.Metrics?.SetLeading(value);
        }
    }

    public string Identity => options.Identity;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.LeaderElection)
        {
            IsLeader = true;
            await RunControllersAsync(stoppingToken).ConfigureAwait(false);
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            await LeadOnceAsync(stoppingToken).ConfigureAwait(false);
        }
    }

    /// <summary>Waits to be elected, runs the controllers while leading, and returns when the lease is lost or the operator stops.</summary>
    private async Task LeadOnceAsync(CancellationToken stoppingToken)
    {
        var @lock = new LeaseLock(client, options.LeaseNamespace, options.LeaseName, options.Identity);
        var config = new LeaderElectionConfig(@lock)
        {
            LeaseDuration = options.LeaseDuration,
            RenewDeadline = options.RenewDeadline,
            RetryPeriod = options.RetryPeriod,
        };
        using var elector = new LeaderElector(config);
        using var leading = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        Task? controllers = null;
        elector.OnStartedLeading += () =>
        {
            Log.StartedLeading(_logger, options.Identity, @lock.Describe());
            IsLeader = true;
            controllers = RunControllersAsync(leading.Token);
        };
        elector.OnStoppedLeading += () =>
        {
            IsLeader = false;
            Log.StoppedLeading(_logger, options.Identity);
            leading.Cancel();
        };
        elector.OnNewLeader += leader => Log.NewLeader(_logger, leader);
        elector.OnError += e => Log.ElectionError(_logger, e.Message);
        try
        {
            await elector.RunUntilLeadershipLostAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
        finally
        {
            IsLeader = false;
            await leading.CancelAsync().ConfigureAwait(false);
            if (controllers is not null)
            {
                await controllers.ConfigureAwait(false);
                if (stoppingToken.IsCancellationRequested)
                {
                    await ReleaseAsync(@lock).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// Gives the Lease up, once the controllers have stopped: an empty holderIdentity and a one-second duration, the
    /// transitions kept, written only while the Lease still names this replica (a replica that lost it leaves it alone).
    /// The KubernetesClient's elector takes a Lease with an empty holder at once; an absent one it would try to create.
    /// </summary>
    private async Task ReleaseAsync(LeaseLock @lock)
    {
        using var timeout = new CancellationTokenSource(options.RenewDeadline);
        try
        {
            var record = await @lock.GetAsync(timeout.Token).ConfigureAwait(false);
            if (record?.HolderIdentity != options.Identity)
            {
                return;
            }

            var now = DateTime.UtcNow;
            var released = new LeaderElectionRecord
            {
                HolderIdentity = "",
                LeaseDurationSeconds = 1,
                AcquireTime = now,
                RenewTime = now,
                LeaderTransitions = record.LeaderTransitions,
            };
            if (await @lock.UpdateAsync(released, timeout.Token).ConfigureAwait(false))
            {
                Log.ReleasedLease(_logger, options.Identity, @lock.Describe());
            }
        }
        catch (Exception e) when (e is HttpOperationException or HttpRequestException or OperationCanceledException)
        {
            // Not released: a standby takes the Lease once it expires, as after a crash.
            Log.LeaseNotReleased(_logger, options.Identity, e);
        }
    }

    private Task RunControllersAsync(CancellationToken cancellationToken)
    {
        var events = new ClusterEvents(client, "capstan-operator", options.Identity);
        var trainJobs = new TrainJobController(client, options, events, loggers.CreateLogger<TrainJobController>());
        var inferenceServices = new InferenceServiceController(client, options, events, loggers.CreateLogger<InferenceServiceController>());
        var experiments = new ExperimentController(client, options, events, loggers.CreateLogger<ExperimentController>());
        return Task.WhenAll(trainJobs.RunAsync(cancellationToken), inferenceServices.RunAsync(cancellationToken), experiments.RunAsync(cancellationToken));
    }
}
