using Capstan.Core;
using Capstan.Core.Resources;
using Capstan.Core.Runtime;
using k8s.Models;

namespace Capstan.Runtime.Local.Tests;

public sealed class TrainJobWorkloadsTests
{
    [Fact]
    public void ToWorkload_DefaultedJob_ExpandsParamsAndLayersTheEnvironment()
    {
        var job = Job();
        job.Spec.Args = ["--lr", "${params.lr}"];
        job.Spec.Params = new Dictionary<string, string> { ["lr"] = "0.1", ["batch-size"] = "32" };
        job.Spec.Env = [new V1EnvVar { Name = "lr", Value = "from-env" }, new V1EnvVar { Name = "MLFLOW_RUN_ID", Value = "user" }];
        job.Spec.Replicas = 2;
        job.Spec.Priority = 7;
        job.Spec.ActiveDeadlineSeconds = 60;
        job.ApplyDefaults();

        var workload = TrainJobWorkloads.ToWorkload(job, 2, new Dictionary<string, string> { ["MLFLOW_RUN_ID"] = "r1" });

        Assert.Equal("team.train.2", workload.WorkloadId);
        Assert.Equal(["python", "train.py"], workload.Command);
        Assert.Equal(["--lr", "0.1"], workload.Args);
        Assert.Equal("from-env", workload.Environment["lr"]);
        Assert.Equal("0.1", workload.Environment["CAPSTAN_PARAM_LR"]);
        Assert.Equal("32", workload.Environment["CAPSTAN_PARAM_BATCH_SIZE"]);
        Assert.Equal("r1", workload.Environment["MLFLOW_RUN_ID"]);
        Assert.Equal("train", workload.Environment["OTEL_SERVICE_NAME"]);
        job.Spec.Env = [new V1EnvVar { Name = "OTEL_SERVICE_NAME", Value = "trainer" }];
        Assert.Equal("trainer", TrainJobWorkloads.ToWorkload(job, 2, new Dictionary<string, string>()).Environment["OTEL_SERVICE_NAME"]);
        Assert.Equal((2, 1, 7, 60L), (workload.Replicas, workload.NprocPerNode, workload.Priority, workload.ActiveDeadlineSeconds!.Value));
    }

    [Fact]
    public void ToWorkload_ImageOnlyOrSecretEnv_RefusedWithReason()
    {
        var imageOnly = Job();
        imageOnly.Spec.Command = null;
        imageOnly.Spec.Image = "trainer:1";
        var secret = Job();
        secret.Spec.Env = [new V1EnvVar { Name = "TOKEN", ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Key = "token", Name = "s" } } }];

        var imageError = Assert.Throws<CapstanException>(() => TrainJobWorkloads.ToWorkload(imageOnly, 1, new Dictionary<string, string>()));
        var secretError = Assert.Throws<CapstanException>(() => TrainJobWorkloads.ToWorkload(secret, 1, new Dictionary<string, string>()));

        Assert.Contains("image", imageError.Message, StringComparison.Ordinal);
        Assert.Contains("TOKEN", secretError.Message, StringComparison.Ordinal);
    }

    private static TrainJob Job() => new()
    {
        Metadata = new ResourceMetadata { Name = "train", Namespace = "team" },
        Spec = new TrainJobSpec { Command = ["python", "train.py"] },
    };
}
