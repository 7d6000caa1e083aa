using Capstan.Core.Resources;
using k8s;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Rendering;

/// <summary>
/// Capstan resources → the Kubernetes objects the operator creates for them, in creation order. The operator and
/// <c>capstan render</c> both call this, so what a user reviews is what runs. Kinds the operator runs through other
/// resources render to nothing of their own: an Experiment's trials become TrainJob custom resources.
/// Throws <see cref="ResourceValidationException"/> for a resource that is invalid or cannot run on Kubernetes.
/// </summary>
public static class KubernetesRenderer
{
    public static IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Render(Resource resource, RenderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(resource);
        options ??= RenderOptions.Default;
        return resource switch
        {
            TrainJob job => TrainJobRenderer.Render(job, options).All,
            InferenceService service => InferenceServiceRenderer.Render(service, options).All,
            _ => [],
        };
    }

    public static IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Render(IEnumerable<Resource> resources, RenderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(resources);
        return [.. resources.SelectMany(resource => Render(resource, options))];
    }
}
