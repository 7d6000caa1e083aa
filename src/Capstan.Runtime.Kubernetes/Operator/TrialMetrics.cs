using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using Capstan.Core.Tracking;
using Capstan.Runtime.Kubernetes.Rendering;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Engine = Capstan.Tuning;

namespace Capstan.Runtime.Kubernetes.Operator;

/// <summary>
/// A trial's metrics on a cluster, read the way Katib's default StdOut collector reads them: the <c>name=value</c> lines
/// the training code printed (<see cref="StdoutMetrics"/>, the same parser the local runtime uses), from the log of the
/// trial Job's rank-0 pod (found by the <c>capstan.dev/trainjob</c> label the renderer puts on the pod template, which
/// does not depend on the Kubernetes version labelling Job pods; an Indexed Job's rank is its completion index), through
/// the API server's <c>pods/log</c>. Read when the trial's TrainJob has ended, and the
/// observation kept in the Experiment's status, so it outlives the pod; read while it runs for early stopping.
/// </summary>
internal sealed class TrialMetrics(IKubernetes client)
{
    /// <summary>
    /// The metrics in <paramref name="names"/> that the trial's rank-0 pod printed so far (all of them once it has
    /// ended), in the order printed; null with the reason when no pod or log is left to read.
    /// </summary>
    public async Task<(IReadOnlyList<Metric>? Metrics, string? Problem)> ReadAsync(string @namespace, string trial, IEnumerable<string> names, CancellationToken cancellationToken)
    {
        var pods = await client.CoreV1.ListNamespacedPodAsync(@namespace, labelSelector: $"{CapstanLabels.TrainJob}={trial}", cancellationToken: cancellationToken).ConfigureAwait(false);
        var pod = pods.Items
            .Where(p => Rank(p) == 0)
            .OrderByDescending(p => p.Status?.Phase == "Succeeded")
            .ThenByDescending(p => p.Metadata.CreationTimestamp)
            .FirstOrDefault();
        if (pod is null)
        {
            return (null, $"no pod of Job {trial} is left to read its metrics from");
        }

        var wanted = names.ToHashSet(StringComparer.Ordinal);
        var parser = new StdoutMetrics();
        var found = new List<Metric>();
        try
        {
            var stream = await client.CoreV1.ReadNamespacedPodLogAsync(pod.Metadata.Name, @namespace, container: TrainJobRenderer.ContainerName, cancellationToken: cancellationToken).ConfigureAwait(false);
            using var reader = new StreamReader(stream);
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                found.AddRange(parser.Parse(line, 0).Where(m => wanted.Contains(m.Key)));
            }
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return (null, $"the log of pod {pod.Metadata.Name} is gone");
        }

        return (found, null);
    }

    /// <summary>Katib's observation: min, max and latest (by step) of each metric; null when none was printed.</summary>
    public static Observation? Observe(IReadOnlyList<Metric>? found)
    {
        var metrics = (found ?? [])
            .Where(m => !double.IsNaN(m.Value))
            .GroupBy(m => m.Key, StringComparer.Ordinal)
            .Select(g => new ObservedMetric { Name = g.Key, Min = g.Min(m => m.Value), Max = g.Max(m => m.Value), Latest = g.OrderBy(m => m.Step).Last().Value })
            .ToList();
        return metrics.Count == 0 ? null : new Observation { Metrics = metrics };
    }

    /// <summary>One metric's values by step, as an early-stopping rule reads them.</summary>
    public static IReadOnlyList<Engine.IntermediateValue> Series(IReadOnlyList<Metric>? found, string metric) =>
        [.. (found ?? []).Where(m => m.Key == metric).OrderBy(m => m.Step).Select(m => new Engine.IntermediateValue(m.Step, m.Value))];

    private static int Rank(V1Pod pod) =>
        pod.Metadata.Annotations?.TryGetValue(CapstanLabels.JobCompletionIndex, out var index) == true && int.TryParse(index, out var rank) ? rank : 0;
}
