using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Rendering;
using k8s.Models;

namespace Capstan.Runtime.Kubernetes.Tests;

public sealed class TrainJobRendererTests
{
    private static TrainJob Load(string yaml) => Assert.IsType<TrainJob>(Assert.Single(ResourceLoader.Load(yaml, "test.yaml")));

    private static TrainJob Example(string file) =>
        Assert.IsType<TrainJob>(Assert.Single(ResourceLoader.LoadFile(Path.Combine(Repository.Examples, file))));

    private static string? Env(V1Container container, string name) => container.Env.SingleOrDefault(e => e.Name == name)?.Value;

    [Fact]
    public void DistributedExample_Render_IsAnIndexedJobWithAHeadlessService()
    {
        var objects = TrainJobRenderer.Render(Example("trainjob-distributed.yaml"), RenderOptions.Default);

        var spec = objects.Job.Spec;
        Assert.Equal("Indexed", spec.CompletionMode);
        Assert.Equal((2, 2), (spec.Completions, spec.Parallelism));
        Assert.Equal("distributed-hello", spec.Template.Spec.Subdomain);
        var service = Assert.IsType<V1Service>(objects.Service);
        Assert.Equal("None", service.Spec.ClusterIP);
        Assert.Equal("distributed-hello", service.Metadata.Name);
        Assert.True(service.Spec.Selector.All(s => spec.Template.Metadata.Labels[s.Key] == s.Value));
        Assert.Equal([service, (object)objects.Job], objects.All);
    }

    [Fact]
    public void DistributedExample_Render_PodsGetThePyTorchJobEnvironment()
    {
        var objects = TrainJobRenderer.Render(Example("trainjob-distributed.yaml"), RenderOptions.Default);

        var container = Assert.Single(objects.Job.Spec.Template.Spec.Containers);
        Assert.Equal("distributed-hello-0.distributed-hello", Env(container, "MASTER_ADDR"));
        Assert.Equal("distributed-hello-0.distributed-hello", Env(container, "PET_MASTER_ADDR"));
        Assert.Equal("23456", Env(container, "MASTER_PORT"));
        Assert.Equal("2", Env(container, "WORLD_SIZE"));
        Assert.Equal("2", Env(container, "PET_NNODES"));
        Assert.Equal("1", Env(container, "PET_NPROC_PER_NODE"));
        foreach (var rank in new[] { "RANK", "PET_NODE_RANK" })
        {
            var variable = container.Env.Single(e => e.Name == rank);
            Assert.Equal("metadata.annotations['batch.kubernetes.io/job-completion-index']", variable.ValueFrom.FieldRef.FieldPath);
        }

        Assert.Equal("3", Env(container, "CAPSTAN_PARAM_EPOCHS"));
        Assert.Equal(RenderOptions.DefaultApiUrl, Env(container, "CAPSTAN_URL"));
        Assert.Equal(RenderOptions.DefaultApiUrl, Env(container, "MLFLOW_TRACKING_URI"));
        Assert.Equal(objects.Job.Metadata.Name, Env(container, "OTEL_SERVICE_NAME"));
        Assert.Equal(container.Env.Count, container.Env.Select(e => e.Name).Distinct().Count());
    }

    [Fact]
    public void TabularExample_Render_SubstitutesParamsAndUsesTheCapstanImage()
    {
        var objects = TrainJobRenderer.Render(Example("trainjob-tabular.yaml"), RenderOptions.Default);

        var container = Assert.Single(objects.Job.Spec.Template.Spec.Containers);
        Assert.Equal(RenderOptions.DefaultTrainerImage, container.Image);
        Assert.Contains("lightgbm", container.Args);
        Assert.DoesNotContain(container.Args, a => a.Contains("${", StringComparison.Ordinal));
        Assert.Null(container.WorkingDir);
        Assert.Equal("lightgbm", Env(container, "CAPSTAN_PARAM_ALGORITHM"));
        Assert.Equal("iris", Env(container, "MLFLOW_EXPERIMENT_NAME"));
        Assert.Null(objects.Service);
        Assert.Equal("NonIndexed", objects.Job.Spec.CompletionMode);
        Assert.Equal(0, objects.Job.Spec.BackoffLimit);
    }

    [Fact]
    public void Render_RunKnown_PodsGetTheRunIds()
    {
        var options = RenderOptions.Default with { RunId = "r1", ExperimentId = "7" };

        var container = TrainJobRenderer.Render(Example("trainjob-tabular.yaml"), options).Job.Spec.Template.Spec.Containers[0];

        Assert.Equal(("r1", "r1", "7"), (Env(container, "CAPSTAN_RUN_ID"), Env(container, "MLFLOW_RUN_ID"), Env(container, "MLFLOW_EXPERIMENT_ID")));
        Assert.Null(Env(container, "MLFLOW_EXPERIMENT_NAME"));
    }

    [Fact]
    public void Render_StoredResource_OwnedByTheCustomResource()
    {
        var job = Example("trainjob-distributed.yaml");
        job.Metadata.Uid = "0b8f1c9e-2f6a-4d3e-9d8e-1a2b3c4d5e6f";

        var objects = TrainJobRenderer.Render(job, RenderOptions.Default);

        foreach (var owned in objects.All)
        {
            var owner = Assert.Single(owned.Metadata.OwnerReferences);
            Assert.Equal(("capstan.dev/v1alpha1", "TrainJob", "distributed-hello", job.Metadata.Uid), (owner.ApiVersion, owner.Kind, owner.Name, owner.Uid));
            Assert.True(owner.Controller);
            Assert.Equal("distributed-hello", owned.Metadata.Labels[CapstanLabels.TrainJob]);
            Assert.Equal("capstan-operator", owned.Metadata.Labels[CapstanLabels.ManagedBy]);
            Assert.Equal("capstan-examples", owned.Metadata.Labels[CapstanLabels.PartOf]);
        }
    }

    [Fact]
    public void Render_FromAFile_HasNoOwnerReferences()
    {
        var objects = TrainJobRenderer.Render(Example("trainjob-distributed.yaml"), RenderOptions.Default);

        Assert.All(objects.All, o => Assert.Null(o.Metadata.OwnerReferences));
    }

    [Fact]
    public void Render_ExitCodePolicy_FailsOnPermanentCodesAndRetriesSignals()
    {
        var job = Load("""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata: {name: exit}
            spec:
              image: python:3.12
              command: [python, train.py]
              restartPolicy: ExitCode
              backoffLimit: 4
            """);

        var spec = TrainJobRenderer.Render(job, RenderOptions.Default).Job.Spec;

        Assert.Equal(4, spec.BackoffLimit);
        Assert.Equal("Never", spec.Template.Spec.RestartPolicy);
        var rule = Assert.Single(spec.PodFailurePolicy.Rules);
        Assert.Equal("FailJob", rule.Action);
        Assert.Equal("NotIn", rule.OnExitCodes.OperatorProperty);
        Assert.Equal([0, 130, 137, 143], rule.OnExitCodes.Values);
        Assert.Equal(TrainJobRenderer.ContainerName, rule.OnExitCodes.ContainerName);
    }

    [Fact]
    public void Render_IndexedOnFailure_RetriesEachRankAndFailsTheGangOnTheFirstLostRank()
    {
        var spec = TrainJobRenderer.Render(Example("trainjob-distributed.yaml"), RenderOptions.Default).Job.Spec;

        Assert.Null(spec.BackoffLimit);
        Assert.Equal(1, spec.BackoffLimitPerIndex);
        Assert.Equal(0, spec.MaxFailedIndexes);
        Assert.Equal(300, spec.ActiveDeadlineSeconds);
        Assert.Equal("Failed", spec.PodReplacementPolicy);
    }

    [Fact]
    public void Render_Kueue_JobIsSuspendedWithTheQueueLabel()
    {
        var options = RenderOptions.Default with { GangScheduler = GangScheduler.Kueue, KueueQueue = "team-a" };

        var objects = TrainJobRenderer.Render(Example("trainjob-distributed.yaml"), options);

        Assert.True(objects.Job.Spec.Suspend);
        Assert.Equal("team-a", objects.Job.Metadata.Labels["kueue.x-k8s.io/queue-name"]);
        Assert.Null(objects.PodGroup);
    }

    [Fact]
    public void Render_Volcano_PodGroupGatesTheWholeGang()
    {
        var options = RenderOptions.Default with { GangScheduler = GangScheduler.Volcano, VolcanoQueue = "research" };

        var objects = TrainJobRenderer.Render(Example("trainjob-distributed.yaml"), options);

        var group = Assert.IsType<Models.V1Beta1PodGroup>(objects.PodGroup);
        Assert.Equal(2, group.Spec.MinMember);
        Assert.Equal("research", group.Spec.Queue);
        Assert.Equal("200m", group.Spec.MinResources!["cpu"].ToString());
        Assert.Equal("128Mi", group.Spec.MinResources["memory"].ToString());
        var pod = objects.Job.Spec.Template;
        Assert.Equal("volcano", pod.Spec.SchedulerName);
        Assert.Equal(group.Metadata.Name, pod.Metadata.Annotations["scheduling.k8s.io/group-name"]);
        Assert.Null(objects.Job.Spec.Suspend);
        Assert.Same(group, objects.All[0]);
    }

    [Fact]
    public void Render_GpuRequestedOnly_IsLimitedToTheSame()
    {
        var job = Load("""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata: {name: gpu}
            spec:
              image: pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
              command: [torchrun, train.py]
              resources:
                requests: {cpu: "4", memory: 16Gi, nvidia.com/gpu: 2}
            """);

        var resources = TrainJobRenderer.Render(job, RenderOptions.Default).Job.Spec.Template.Spec.Containers[0].Resources;

        Assert.Equal("2", resources.Limits["nvidia.com/gpu"].ToString());
        Assert.False(resources.Limits.ContainsKey("cpu"));
        Assert.Equal("16Gi", resources.Requests["memory"].ToString());
    }

    [Fact]
    public void Render_RelativeWorkingDir_FailsNamingTheField()
    {
        var job = Load("""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata: {name: wd}
            spec:
              command: [python, train.py]
              workingDir: src
            """);

        var error = Assert.Single(Assert.Throws<ResourceValidationException>(() => TrainJobRenderer.Render(job, RenderOptions.Default)).Errors);

        Assert.Equal("spec.workingDir", error.FieldPath);
        Assert.Contains("absolute", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Render_EnvOverridesAParam_TheJobsValueWinsOnce()
    {
        var job = Load("""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata: {name: env}
            spec:
              command: [python, train.py]
              params: {lr: "0.1"}
              env:
                - {name: lr, value: "0.5"}
                - name: TOKEN
                  valueFrom: {secretKeyRef: {name: hub, key: token}}
              envFrom:
                - secretRef: {name: s3-credentials}
            """);

        var container = TrainJobRenderer.Render(job, RenderOptions.Default).Job.Spec.Template.Spec.Containers[0];

        Assert.Equal("0.5", Assert.Single(container.Env, e => e.Name == "lr").Value);
        Assert.Equal("0.1", Env(container, "CAPSTAN_PARAM_LR"));
        Assert.Equal("hub", container.Env.Single(e => e.Name == "TOKEN").ValueFrom.SecretKeyRef.Name);
        Assert.Equal("s3-credentials", Assert.Single(container.EnvFrom).SecretRef.Name);
    }

    [Fact]
    public void Render_DoesNotChangeTheResource()
    {
        var job = Load("""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata: {name: same}
            spec:
              command: [python, train.py]
            """);
        var before = ResourceSerializer.ToJson(job);

        TrainJobRenderer.Render(job, RenderOptions.Default with { Namespace = "ml" });

        Assert.Equal(before, ResourceSerializer.ToJson(job));
    }
}
