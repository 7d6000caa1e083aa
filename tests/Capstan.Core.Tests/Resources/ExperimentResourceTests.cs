using Capstan.Core.Resources;

namespace Capstan.Core.Tests.Resources;

public sealed class ExperimentResourceTests
{
    private static string Experiment(string parameters, string template = "", string extra = "") => $$"""
        apiVersion: capstan.dev/v1alpha1
        kind: Experiment
        metadata:
          name: tune
        spec:
          objective:
            type: minimize
            objectiveMetricName: loss
          maxTrialCount: 4
        {{extra}}
          parameters:
        {{parameters}}
          trialTemplate:
        {{template}}
            trialSpec:
              command: [/bin/sh, -c]
              args: ['echo loss=${trialParameters.lr}']
        """;

    private const string LearningRate = """
            - name: lr
              parameterType: double
              feasibleSpace: {min: 0.01, max: 0.1}
        """;

    [Fact]
    public void Load_ValidExperiment_AppliesKatibDefaults()
    {
        var experiment = Assert.IsType<TuningExperiment>(Assert.Single(ResourceLoader.Load(Experiment(LearningRate), "tune.yaml")));

        var strategy = Assert.Single(experiment.Spec.Objective!.MetricStrategies!);
        Assert.Equal(("loss", MetricStrategyType.Min), (strategy.Name, strategy.Value));
        Assert.Equal("random", experiment.Spec.Algorithm!.AlgorithmName);
        Assert.Equal(3, experiment.Spec.ParallelTrialCount);
        Assert.Equal(ResumePolicy.LongRunning, experiment.Spec.ResumePolicy);
        var trialParameter = Assert.Single(experiment.Spec.TrialTemplate!.TrialParameters!);
        Assert.Equal(("lr", "lr"), (trialParameter.Name, trialParameter.Reference));
        Assert.Equal("tune", experiment.Spec.TrialTemplate.TrialSpec!.Experiment);
        Assert.Equal("0.01", experiment.Spec.Parameters![0].FeasibleSpace!.Min);
    }

    [Fact]
    public void Load_KatibStyleQuotedBounds_ReadAsTheSameNumbers()
    {
        var quoted = LearningRate.Replace("{min: 0.01, max: 0.1}", "{min: \"0.01\", max: \"0.1\"}", StringComparison.Ordinal);

        var experiment = (TuningExperiment)Assert.Single(ResourceLoader.Load(Experiment(quoted), "tune.yaml"));

        Assert.Equal(("0.01", "0.1"), (experiment.Spec.Parameters![0].FeasibleSpace!.Min, experiment.Spec.Parameters[0].FeasibleSpace!.Max));
    }

    [Theory]
    [InlineData("{min: 0.5, max: 0.1}", "spec.parameters[0].feasibleSpace.min", "min 0.5 is greater than max 0.1")]
    [InlineData("{min: 0, max: 0.1, distribution: logUniform}", "spec.parameters[0].feasibleSpace.distribution", "log scale needs a positive range")]
    [InlineData("{min: abc, max: 0.1}", "spec.parameters[0].feasibleSpace.min", "'abc' is not a number")]
    [InlineData("{min: 0.1, max: 0.2, distribution: cubic}", "spec.parameters[0].feasibleSpace.distribution", "'cubic' is not a valid distribution")]
    public void Load_InvalidRange_RejectedWithFieldPath(string space, string path, string message)
    {
        var yaml = Experiment(LearningRate.Replace("{min: 0.01, max: 0.1}", space, StringComparison.Ordinal));

        var errors = ResourceLoader.Read(yaml, "tune.yaml").Errors;

        var error = Assert.Single(errors);
        Assert.Equal(path, error.FieldPath);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Equal("tune.yaml", error.File);
        Assert.Equal(14, error.Line);
    }

    [Fact]
    public void Load_EmptyCategoricalList_RejectedWithFieldPath()
    {
        var yaml = Experiment(LearningRate + "\n" + """
                - name: optimizer
                  parameterType: categorical
                  feasibleSpace: {list: []}
            """);

        var error = Assert.Single(ResourceLoader.Read(yaml, "tune.yaml").Errors);

        Assert.Equal("spec.parameters[1].feasibleSpace.list", error.FieldPath);
        Assert.Contains("non-empty list", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_UnknownAlgorithm_RejectedWithSuggestion()
    {
        var yaml = Experiment(LearningRate, extra: "  algorithm: {algorithmName: randon}");

        var error = Assert.Single(ResourceLoader.Read(yaml, "tune.yaml").Errors);

        Assert.Equal("tune.yaml:10:30: spec.algorithm.algorithmName: 'randon': did you mean 'random'? (supported: " + string.Join(", ", Tuning.SearchAlgorithms.Names) + ")", error.ToString());
    }

    [Fact]
    public void Load_KatibNasAlgorithm_SaysItIsNotSupported()
    {
        var yaml = Experiment(LearningRate, extra: "  algorithm: {algorithmName: darts}");

        var error = Assert.Single(ResourceLoader.Read(yaml, "tune.yaml").Errors);

        Assert.Contains("neural architecture search (DARTS) is not supported", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_PlaceholderNamingNoTrialParameter_RejectedAtTheArg()
    {
        var yaml = Experiment(LearningRate, template: """
                trialParameters:
                  - {name: learningRate, reference: lr}
            """);

        var error = Assert.Single(ResourceLoader.Read(yaml, "tune.yaml").Errors);

        Assert.Equal("spec.trialTemplate.trialSpec.args[0]", error.FieldPath);
        Assert.Contains("${trialParameters.lr} names no parameter 'lr'", error.Message, StringComparison.Ordinal);
        Assert.Equal(20, error.Line);
    }

    [Fact]
    public void Load_TrialParameterReferencingNoParameter_RejectedWithSuggestion()
    {
        var yaml = Experiment(LearningRate, template: """
                trialParameters:
                  - {name: lr, reference: lrr}
            """);

        var error = Assert.Single(ResourceLoader.Read(yaml, "tune.yaml").Errors);

        Assert.Equal("spec.trialTemplate.trialParameters[0].reference", error.FieldPath);
        Assert.Contains("did you mean 'lr'?", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MedianStopWithBadSetting_RejectedAtTheSetting()
    {
        var yaml = Experiment(LearningRate, extra: """
              earlyStopping:
                algorithmName: medianstop
                algorithmSettings:
                  - {name: start_step, value: soon}
            """);

        var error = Assert.Single(ResourceLoader.Read(yaml, "tune.yaml").Errors);

        Assert.Equal("spec.earlyStopping.algorithmSettings[0]", error.FieldPath);
        Assert.Contains("'soon' is not an integer", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ParallelAboveMax_Rejected()
    {
        var yaml = Experiment(LearningRate, extra: "  parallelTrialCount: 5");

        var error = Assert.Single(ResourceLoader.Read(yaml, "tune.yaml").Errors);

        Assert.Equal("spec.parallelTrialCount", error.FieldPath);
    }

    [Fact]
    public void Load_MultiObjective_PrimaryIsTheFirstWithItsOwnStrategies()
    {
        var yaml = Experiment(LearningRate).Replace("""
                type: minimize
                objectiveMetricName: loss
            """, """
                objectives:
                  - {metricName: loss, type: minimize}
                  - {metricName: throughput, type: maximize}
            """, StringComparison.Ordinal);

        var experiment = (TuningExperiment)Assert.Single(ResourceLoader.Load(yaml, "tune.yaml"));

        Assert.Equal("loss", experiment.Spec.Objective!.ObjectiveMetricName);
        Assert.Equal(ObjectiveType.Minimize, experiment.Spec.Objective.Type);
        Assert.Equal(
            [("loss", MetricStrategyType.Min), ("throughput", MetricStrategyType.Max)],
            experiment.Spec.Objective.MetricStrategies!.Select(s => (s.Name!, s.Value!.Value)));
        Assert.Equal(2, TuningSearch.Objectives(experiment.Spec).Count);
    }

    [Fact]
    public void Serialize_Experiment_RoundTripsThroughJson()
    {
        var experiment = ResourceLoader.Load(Experiment(LearningRate), "tune.yaml").Single();

        var again = Assert.IsType<TuningExperiment>(ResourceSerializer.FromJson(ResourceSerializer.ToJson(experiment)));

        Assert.Equal(ResourceSerializer.ToJson(experiment), ResourceSerializer.ToJson(again));
        Assert.Contains("\"type\":\"minimize\"", ResourceSerializer.ToJson(experiment), StringComparison.Ordinal);
    }

    [Fact]
    public void Expand_TrialSpec_FillsEveryTextField()
    {
        var spec = new TrainJobSpec
        {
            Command = ["train", "--lr=${trialParameters.lr}"],
            Env = [new k8s.Models.V1EnvVar { Name = "TRIAL", Value = "${trialSpec.Name}" }],
            Params = new Dictionary<string, string> { ["rate"] = "${trialParameters.lr}" },
        };

        var expanded = TrialTemplates.Expand(spec, new Dictionary<string, string> { ["lr"] = "0.05" }, new Dictionary<string, string> { ["Name"] = "tune-trial-3" });

        Assert.Equal(["train", "--lr=0.05"], expanded.Command!);
        Assert.Equal("tune-trial-3", expanded.Env![0].Value);
        Assert.Equal("0.05", expanded.Params!["rate"]);
        Assert.Equal("--lr=${trialParameters.lr}", spec.Command[1]);
    }
}
