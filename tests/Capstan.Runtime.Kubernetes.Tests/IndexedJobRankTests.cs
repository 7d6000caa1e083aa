using System.Globalization;
using System.Text.RegularExpressions;
using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Rendering;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Tests;

/// <summary>
/// The pods of a rendered Indexed Job, made as the Job controller makes them (the completion index in the
/// <c>batch.kubernetes.io/job-completion-index</c> annotation, hostname <c>JOB-INDEX</c>, the template's subdomain) and
/// their environment resolved as the kubelet resolves it (values, and downward-API field references).
/// </summary>
public sealed partial class IndexedJobRankTests
{
    private static TrainJobObjects Render(int replicas, int nprocPerNode) => TrainJobRenderer.Render(
        Assert.IsType<TrainJob>(Assert.Single(ResourceLoader.Load($"""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata: {"{"}name: ddp, namespace: ml{"}"}
            spec:
              image: pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
              command: [torchrun, train.py]
              replicas: {replicas}
              nprocPerNode: {nprocPerNode}
            """, "ddp.yaml"))),
        RenderOptions.Default with { MasterPort = 29500 });

    /// <summary>Pod <paramref name="index"/> of the Job, as the Job controller creates it from the template.</summary>
    private static V1Pod PodOf(V1Job job, int index)
    {
        var template = job.Spec.Template;
        var annotations = new Dictionary<string, string>(template.Metadata.Annotations ?? new Dictionary<string, string>())
        {
            [CapstanLabels.JobCompletionIndex] = index.ToString(CultureInfo.InvariantCulture),
        };
        return new V1Pod
        {
            Metadata = new V1ObjectMeta
            {
                Name = $"{job.Metadata.Name}-{index}-x7k2p",
                NamespaceProperty = job.Metadata.NamespaceProperty,
                Labels = template.Metadata.Labels,
                Annotations = annotations,
            },
            Spec = template.Spec with { Hostname = $"{job.Metadata.Name}-{index}" },
        };
    }

    /// <summary>The container's variables as the kubelet sets them; a reference it could not resolve fails the test.</summary>
    private static Dictionary<string, string> EnvironmentOf(V1Pod pod)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var variable in pod.Spec.Containers.Single().Env)
        {
            environment[variable.Name] = variable.ValueFrom?.FieldRef is { } field ? Field(pod, field.FieldPath) : variable.Value;
        }

        return environment;
    }

    private static string Field(V1Pod pod, string path)
    {
        if (AnnotationPath().Match(path) is { Success: true } annotation)
        {
            return pod.Metadata.Annotations[annotation.Groups[1].Value];
        }

        return path switch
        {
            "metadata.name" => pod.Metadata.Name,
            "metadata.namespace" => pod.Metadata.NamespaceProperty,
            _ => throw new InvalidOperationException($"the test resolves no field '{path}'"),
        };
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(4, 8)]
    public void IndexedJob_CompletionIndexI_GivesRankIAndRankZerosAddress(int replicas, int nprocPerNode)
    {
        var objects = Render(replicas, nprocPerNode);

        var service = Assert.IsType<V1Service>(objects.Service);
        for (var i = 0; i < replicas; i++)
        {
            var pod = PodOf(objects.Job, i);
            var env = EnvironmentOf(pod);

            Assert.Equal(i.ToString(CultureInfo.InvariantCulture), env["RANK"]);
            Assert.Equal(i.ToString(CultureInfo.InvariantCulture), env["PET_NODE_RANK"]);
            Assert.Equal((replicas * nprocPerNode).ToString(CultureInfo.InvariantCulture), env["WORLD_SIZE"]);
            Assert.Equal(replicas.ToString(CultureInfo.InvariantCulture), env["PET_NNODES"]);
            Assert.Equal(nprocPerNode.ToString(CultureInfo.InvariantCulture), env["PET_NPROC_PER_NODE"]);
            Assert.Equal(("29500", "29500"), (env["MASTER_PORT"], env["PET_MASTER_PORT"]));
            Assert.Equal(env["MASTER_ADDR"], env["PET_MASTER_ADDR"]);

            // MASTER_ADDR is rank 0's DNS name under the headless Service, which selects this pod.
            var rankZero = PodOf(objects.Job, 0);
            Assert.Equal($"{rankZero.Spec.Hostname}.{rankZero.Spec.Subdomain}", env["MASTER_ADDR"]);
            Assert.Equal(service.Metadata.Name, pod.Spec.Subdomain);
            Assert.True(service.Spec.Selector.All(s => pod.Metadata.Labels[s.Key] == s.Value));
        }
    }

    [Fact]
    public void SingleReplica_SeveralProcesses_RendezvousOnLocalhostWithoutAService()
    {
        var objects = Render(1, 4);

        var env = EnvironmentOf(PodOf(objects.Job, 0));

        Assert.Null(objects.Service);
        Assert.Equal(("localhost", "0", "4"), (env["MASTER_ADDR"], env["RANK"], env["WORLD_SIZE"]));
    }

    [GeneratedRegex(@"^metadata\.annotations\['([^']+)'\]$")]
    private static partial Regex AnnotationPath();
}
