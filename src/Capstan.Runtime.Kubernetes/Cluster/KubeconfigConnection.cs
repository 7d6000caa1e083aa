using Capstan.Core;
using k8s;
using k8s.Exceptions;

namespace Capstan.Runtime.Kubernetes.Cluster;

/// <summary>Connects to a cluster as kubectl does: a kubeconfig file (<c>--kubeconfig</c>, else <c>$KUBECONFIG</c>, else <c>~/.kube/config</c>) and one of its contexts, or the pod's service account inside a cluster.</summary>
public static class KubeconfigConnection
{
    public const string KubeconfigVariable = "KUBECONFIG";

    /// <summary>The kubeconfig to read: the given path, the first of <c>$KUBECONFIG</c>, or <c>~/.kube/config</c>.</summary>
    public static string ResolvePath(string? kubeconfig, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (!string.IsNullOrWhiteSpace(kubeconfig))
        {
            return Path.GetFullPath(kubeconfig);
        }

        var fromEnvironment = environment(KubeconfigVariable)?.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return fromEnvironment ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".kube", "config");
    }

    /// <summary>The client configuration of <paramref name="context"/> (the current context when null), or a one-line error naming the file.</summary>
    public static KubernetesClientConfiguration Load(string? kubeconfig, string? context, Func<string, string?> environment)
    {
        var path = ResolvePath(kubeconfig, environment);
        if (!File.Exists(path))
        {
            throw CapstanException.Invalid($"no kubeconfig at {path}; pass --kubeconfig or set {KubeconfigVariable}");
        }

        try
        {
            return KubernetesClientConfiguration.BuildConfigFromConfigFile(path, currentContext: context);
        }
        catch (KubeConfigException e)
        {
            throw CapstanException.Invalid($"kubeconfig {path}{(context is null ? "" : $", context '{context}'")}: {e.Message}");
        }
    }

    /// <summary>Inside a pod: its service account; elsewhere the kubeconfig.</summary>
    public static KubernetesClientConfiguration LoadForOperator(string? kubeconfig, string? context, Func<string, string?> environment) =>
        kubeconfig is null && context is null && KubernetesClientConfiguration.IsInCluster()
            ? KubernetesClientConfiguration.InClusterConfig()
            : Load(kubeconfig, context, environment);
}
