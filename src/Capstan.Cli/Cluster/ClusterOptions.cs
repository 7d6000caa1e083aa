using System.CommandLine;
using System.Reflection;
using System.Runtime.CompilerServices;
using Capstan.Cli.Hosting;
using Capstan.Client;
using Capstan.Core;
using Capstan.Core.Artifacts;
using Capstan.Core.Storage;
using Capstan.Runtime.Kubernetes.Cluster;

namespace Capstan.Cli.Cluster;

/// <summary>
/// <c>--context NAME</c> and <c>--kubeconfig PATH</c>, as kubectl spells them: a command given either works on the
/// cluster's Capstan custom resources (<see cref="KubernetesResourceStore"/>) instead of the embedded store or
/// <c>CAPSTAN_URL</c>'s server. Tracking data (runs, models) stays with the Capstan API: <c>CAPSTAN_URL</c>, when set.
/// </summary>
public static class ClusterOptions
{
    private static readonly ConditionalWeakTable<Command, Pair> s_options = [];

    public static void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        var context = new Option<string?>("--context") { Description = "Work on the cluster of this kubeconfig context (custom resources through the Kubernetes API)." };
        var kubeconfig = new Option<string?>("--kubeconfig") { Description = "The kubeconfig file (default: $KUBECONFIG, else ~/.kube/config); its current context unless --context names one." };
        command.Add(context);
        command.Add(kubeconfig);
        s_options.Add(command, new Pair(context, kubeconfig));
    }

    /// <summary>The cluster the command line names, or null when it names none.</summary>
    public static (string? Context, string? Kubeconfig)? Selected(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        if (!s_options.TryGetValue(parse.CommandResult.Command, out var pair))
        {
            return null;
        }

        var (context, kubeconfig) = (parse.GetValue(pair.Context), parse.GetValue(pair.Kubeconfig));
        return context is null && kubeconfig is null ? null : (context, kubeconfig);
    }

    /// <summary>The backend of the cluster the command line names, else <see cref="Backend.OpenAsync(CliContext, CancellationToken)"/>'s.</summary>
    public static Task<Backend> OpenBackendAsync(CliContext context, ParseResult parse, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (Selected(parse) is not { } cluster)
        {
            return Backend.OpenAsync(context, cancellationToken);
        }

        var configuration = KubeconfigConnection.Load(cluster.Kubeconfig, cluster.Context, context.GetEnvironmentVariable);
        var location = $"{configuration.Host} (context {configuration.CurrentContext ?? cluster.Context ?? "current"})";
        var resources = new KubernetesResourceStore(new k8s.Kubernetes(configuration), location);
        if (context.GetEnvironmentVariable(Backend.UrlVariable) is { Length: > 0 } url && Uri.TryCreate(url, UriKind.Absolute, out var baseUrl))
        {
            var client = new CapstanClient(baseUrl);
            return Task.FromResult(new Backend(client, client, resources, location, new Disposables(resources, client)));
        }

        var message = $"tracking data (runs, models, artifacts) is kept by the Capstan API, not the Kubernetes API at {location}; set {Backend.UrlVariable} to it";
        return Task.FromResult(new Backend(Unavailable.Create<IMetadataStore>(message), Unavailable.Create<IArtifactStore>(message), resources, location, new Disposables(resources)));
    }

    private sealed record Pair(Option<string?> Context, Option<string?> Kubeconfig);

    private sealed class Disposables(params IDisposable[] inner) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            foreach (var disposable in inner)
            {
                disposable.Dispose();
            }

            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>A store that is not there: every call fails with one message saying where the data lives.</summary>
public class Unavailable : DispatchProxy
{
    private string _message = "";

    public static T Create<T>(string message)
        where T : class
    {
        var proxy = DispatchProxy.Create<T, Unavailable>();
        ((Unavailable)(object)proxy)._message = message;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args) => throw CapstanException.Invalid(_message);
}
