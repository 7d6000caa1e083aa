namespace Capstan.Runtime.Kubernetes.Rendering;

/// <summary>
/// The labels and annotations on every object the operator creates. The <c>app.kubernetes.io/*</c> set is
/// Kubernetes' recommended one, for tools (dashboards, kubectl, Argo CD); the <c>capstan.dev/*</c> set is what the
/// controllers select and watch on, so a user's own labels never change what the operator owns.
/// </summary>
public static class CapstanLabels
{
    public const string Name = "app.kubernetes.io/name";
    public const string Instance = "app.kubernetes.io/instance";
    public const string Component = "app.kubernetes.io/component";
    public const string PartOf = "app.kubernetes.io/part-of";
    public const string ManagedBy = "app.kubernetes.io/managed-by";

    /// <summary>The value of <see cref="ManagedBy"/> on everything the operator creates.</summary>
    public const string Manager = "capstan-operator";

    /// <summary>The value of <see cref="PartOf"/> unless the resource's own labels set one.</summary>
    public const string Product = "capstan";

    /// <summary>The custom resource's kind, e.g. <c>TrainJob</c>.</summary>
    public const string Kind = "capstan.dev/kind";

    /// <summary>The name of the TrainJob an object belongs to; the TrainJob controller watches Jobs, Services and PodGroups with it.</summary>
    public const string TrainJob = "capstan.dev/trainjob";

    /// <summary>The name of the InferenceService an object belongs to.</summary>
    public const string InferenceService = "capstan.dev/inferenceservice";

    /// <summary>What part of the resource the object is: <see cref="Trainer"/>, <see cref="Predictor"/>.</summary>
    public const string Role = "capstan.dev/component";

    /// <summary>Of an InferenceService's Deployments and pods: <see cref="Stable"/> or <see cref="Canary"/>.</summary>
    public const string Track = "capstan.dev/track";

    public const string Trainer = "trainer";
    public const string Predictor = "predictor";
    public const string Stable = "stable";
    public const string Canary = "canary";

    /// <summary>The TrainJob's <c>metadata.generation</c> the objects were rendered from, so a controller can tell a stale Job.</summary>
    public const string Generation = "capstan.dev/generation";

    /// <summary>Kueue's label naming the LocalQueue a Job is submitted to.</summary>
    public const string KueueQueueName = "kueue.x-k8s.io/queue-name";

    /// <summary>The pod annotation Volcano's scheduler reads to find a pod's PodGroup.</summary>
    public const string VolcanoGroupName = "scheduling.k8s.io/group-name";

    /// <summary>The pod annotation an Indexed Job puts each pod's completion index in.</summary>
    public const string JobCompletionIndex = "batch.kubernetes.io/job-completion-index";
}
