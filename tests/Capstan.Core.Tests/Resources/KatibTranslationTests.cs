using Capstan.Core.Resources;

namespace Capstan.Core.Tests.Resources;

public sealed class KatibTranslationTests
{
    private static string Katib(string trialSpec, string extra = "") => $$"""
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata:
          name: mnist
          namespace: kubeflow
        spec:
          objective:
            type: maximize
            goal: 0.99
            objectiveMetricName: Validation-accuracy
            additionalMetricNames: [Train-accuracy]
          algorithm:
            algorithmName: random
          parallelTrialCount: 3
          maxTrialCount: 12
          maxFailedTrialCount: 3
          parameters:
            - name: lr
              parameterType: double
              feasibleSpace: {min: "0.01", max: "0.03"}
            - name: optimizer
              parameterType: categorical
              feasibleSpace: {list: [sgd, adam, ftrl]}
        {{extra}}
          trialTemplate:
            primaryContainerName: training-container
            trialParameters:
              - {name: learningRate, description: Learning rate, reference: lr}
              - {name: optimizer, reference: optimizer}
            trialSpec:
        {{trialSpec}}
        """;

    private const string Job = """
              apiVersion: batch/v1
              kind: Job
              spec:
                backoffLimit: 2
                template:
                  spec:
                    nodeSelector: {pool: gpu}
                    containers:
                      - name: training-container
                        image: docker.io/kubeflowkatib/mxnet-mnist:latest
                        command:
                          - python3
                          - /opt/mxnet-mnist/mnist.py
                          - --lr=${trialParameters.learningRate}
                          - --optimizer=${trialParameters.optimizer}
                        env: [{name: EPOCHS, value: "2"}]
                        resources:
                          limits: {cpu: "1", memory: 1Gi}
                        volumeMounts: [{name: data, mountPath: /data}]
                      - name: sidecar
                        image: busybox
                    restartPolicy: Never
        """;

    [Fact]
    public void Read_KatibJobExperiment_TranslatesSearchAndContainer()
    {
        var result = ResourceLoader.Read(Katib(Job), "katib.yaml");

        Assert.Empty(result.Errors);
        var experiment = Assert.IsType<TuningExperiment>(Assert.Single(result.Resources));
        Assert.Equal(("mnist", "kubeflow"), (experiment.Metadata.Name, experiment.Metadata.Namespace));
        Assert.Equal(ObjectiveType.Maximize, experiment.Spec.Objective!.Type);
        Assert.Equal(0.99, experiment.Spec.Objective.Goal);
        Assert.Equal((3, 12, 3), (experiment.Spec.ParallelTrialCount!.Value, experiment.Spec.MaxTrialCount!.Value, experiment.Spec.MaxFailedTrialCount!.Value));
        Assert.Equal(["sgd", "adam", "ftrl"], experiment.Spec.Parameters![1].FeasibleSpace!.List!);
        var trial = experiment.Spec.TrialTemplate!.TrialSpec!;
        Assert.Equal("docker.io/kubeflowkatib/mxnet-mnist:latest", trial.Image);
        Assert.Equal("--lr=${trialParameters.learningRate}", trial.Command![2]);
        Assert.Equal("EPOCHS", Assert.Single(trial.Env!).Name);
        Assert.Equal("1Gi", trial.Resources!.Limits!["memory"].ToString());
        Assert.Equal(2, trial.BackoffLimit);
        Assert.Equal(RestartPolicy.Never, trial.RestartPolicy);
        Assert.Equal("gpu", trial.NodeSelector!["pool"]);
    }

    [Fact]
    public void Read_KatibJobExperiment_ReportsWhatWasLeftBehindWithLines()
    {
        var result = ResourceLoader.Read(Katib(Job, extra: "  metricsCollectorSpec:\n    collector: {kind: TensorFlowEvent}"), "katib.yaml");

        Assert.Empty(result.Errors);
        Assert.StartsWith("katib.yaml:1:1: translated Katib Experiment 'mnist'", result.Notes[0].ToString(), StringComparison.Ordinal);
        var skipped = result.Notes.Where(n => !n.Translated).ToList();
        Assert.Contains(skipped, n => n.FieldPath == "spec.metricsCollectorSpec" && n.Message.Contains("TensorFlowEvent metrics collector is not supported", StringComparison.Ordinal));
        Assert.Contains(skipped, n => n.FieldPath == "spec.trialTemplate.trialSpec.spec.template.spec.containers[0].volumeMounts");
        Assert.Contains(skipped, n => n.FieldPath == "spec.trialTemplate.trialSpec.spec.template.spec.containers[1]" && n.Message.Contains("'sidecar'", StringComparison.Ordinal));
        Assert.Equal(result.Notes.Skip(1).OrderBy(n => n.Line).Select(n => n.Line), result.Notes.Skip(1).Select(n => n.Line));
    }

    [Fact]
    public void Read_KatibPyTorchJob_TakesTheReplicaCount()
    {
        const string pytorch = """
                  apiVersion: kubeflow.org/v1
                  kind: PyTorchJob
                  spec:
                    pytorchReplicaSpecs:
                      Master:
                        replicas: 1
                        restartPolicy: OnFailure
                        template:
                          spec:
                            containers:
                              - name: pytorch
                                image: docker.io/kubeflowkatib/pytorch-mnist-cpu:latest
                                command: [python3, /opt/mnist.py, "--lr=${trialParameters.learningRate}", "--opt=${trialParameters.optimizer}"]
                      Worker:
                        replicas: 2
                        restartPolicy: OnFailure
                        template:
                          spec:
                            containers:
                              - name: pytorch
                                image: docker.io/kubeflowkatib/pytorch-mnist-cpu:latest
            """;

        var result = ResourceLoader.Read(Katib(pytorch), "katib.yaml");

        Assert.Empty(result.Errors);
        var trial = ((TuningExperiment)Assert.Single(result.Resources)).Spec.TrialTemplate!.TrialSpec!;
        Assert.Equal(3, trial.Replicas);
        Assert.Equal(RestartPolicy.OnFailure, trial.RestartPolicy);
        Assert.Contains(result.Notes, n => n.Translated && n.Message.Contains("PyTorchJob with 3 replica(s)", StringComparison.Ordinal));
    }

    [Fact]
    public void Read_KatibTfJob_RejectedAtTheTrialSpec()
    {
        const string tfjob = """
                  apiVersion: kubeflow.org/v1
                  kind: TFJob
                  spec: {}
            """;

        var error = Assert.Single(ResourceLoader.Read(Katib(tfjob), "katib.yaml").Errors);

        Assert.Equal("spec.trialTemplate.trialSpec", error.FieldPath);
        Assert.Contains("'TFJob'", error.Message, StringComparison.Ordinal);
        Assert.Equal(31, error.Line);
    }

    [Fact]
    public void Read_KatibEnasExperiment_RejectsTheAlgorithm()
    {
        var yaml = Katib(Job).Replace("algorithmName: random", "algorithmName: enas", StringComparison.Ordinal);

        var result = ResourceLoader.Read(yaml, "katib.yaml");

        var error = Assert.Single(result.Errors);
        Assert.Equal("spec.algorithm.algorithmName", error.FieldPath);
        Assert.Contains("ENAS", error.Message, StringComparison.Ordinal);
        Assert.Contains(result.Notes, n => !n.Translated && n.Message.Contains("'enas' is not supported", StringComparison.Ordinal));
    }
}
