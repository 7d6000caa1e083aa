using Capstan.Core.Resources;

namespace Capstan.Core.Tests.Resources;

public sealed class ResourceValidationTests
{
    private const string Header = """
        apiVersion: capstan.dev/v1alpha1
        kind: TrainJob
        metadata:
          name: job
        spec:
          command: [python, train.py]

        """;

    private static ResourceError SingleError(string yaml) => Assert.Single(ResourceLoader.Read(yaml, "job.yaml").Errors);

    /// <summary>A job whose spec ends with <paramref name="specLines"/>, starting at line 7.</summary>
    private static ResourceError SpecError(string specLines) => SingleError(Header + specLines);

    [Fact]
    public void Read_BadQuantity_NamesFileLineColumnAndPath()
    {
        var error = SpecError("""
              resources:
                limits:
                  cpu: 2 cores
            """);

        Assert.Equal("job.yaml:9:12: spec.resources.limits.cpu: '2 cores' is not a valid quantity (examples: 500m, 2, 1.5Gi)", error.ToString());
    }

    [Theory]
    [InlineData("  replicas: two", 7, 13, "spec.replicas", "expected an integer, got 'two'")]
    [InlineData("  replicas: \"2\"", 7, 13, "spec.replicas", "expected an integer, got the string \"2\" (remove the quotes)")]
    [InlineData("  args: --verbose", 7, 9, "spec.args", "expected a list, got '--verbose'")]
    [InlineData("  args: [{a: b}]", 7, 10, "spec.args[0]", "expected a string, got a map")]
    [InlineData("  nodeSelector: [a]", 7, 17, "spec.nodeSelector", "expected a map, got a list")]
    [InlineData("  env: [{name: EPOCHS, value: 10}]", 7, 31, "spec.env[0].value", "expected a string, got the number 10 (quote it: \"10\")")]
    [InlineData("  tolerations: [{key: a, tolerationSeconds: soon}]", 7, 45, "spec.tolerations[0].tolerationSeconds", "expected an integer, got 'soon'")]
    [InlineData("  resources: {requests: {memory: -1Gi}}", 7, 34, "spec.resources.requests.memory", "'-1Gi' is negative: a quantity must be 0 or more")]
    [InlineData("  tolerations: {key: a}", 7, 16, "spec.tolerations", "expected a list, got a map")]
    [InlineData("  env: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k, optional: maybe}}}]", 7, 73, "spec.env[0].valueFrom.secretKeyRef.optional", "expected a boolean (true or false), got 'maybe'")]
    [InlineData("  nodeSelector: {gpu: yes}", 7, 23, "spec.nodeSelector.gpu", "expected a string, got the boolean yes (quote it: \"yes\")")]
    [InlineData("  nodeSelector: {? [a] : b}", 7, 20, "spec.nodeSelector", "expected a field name, got a list")]
    public void Read_WrongType_ReportsWhereAndWhatWasExpected(string line, int lineNumber, int column, string path, string message)
    {
        var error = SpecError(line);

        Assert.Equal(new ResourceError("job.yaml", lineNumber, column, path, message), error);
    }

    [Theory]
    [InlineData("  nodeSelecter: {}", 3, "spec.nodeSelecter", "unknown field 'nodeSelecter' (did you mean 'nodeSelector'?)")]
    [InlineData("  tolerations: [{key: a, opertor: Exists}]", 26, "spec.tolerations[0].opertor", "unknown field 'opertor' (did you mean 'operator'?)")]
    [InlineData("  affinity: {nodeAffinity: {requiredDuringScheduling: {}}}", 29, "spec.affinity.nodeAffinity.requiredDuringScheduling", "unknown field 'requiredDuringScheduling'")]
    [InlineData("  envFrom: [{secretRef: {name: s, namespace: x}}]", 35, "spec.envFrom[0].secretRef.namespace", "unknown field 'namespace'")]
    [InlineData("  gpus: 1", 3, "spec.gpus", "unknown field 'gpus'")]
    public void Read_UnknownField_PointsAtTheKeyAndSuggestsTheClosestField(string line, int column, string path, string message)
    {
        var error = SpecError(line);

        Assert.Equal(new ResourceError("job.yaml", 7, column, path, message), error);
    }

    [Theory]
    [InlineData("  replicas: -1", 13, "spec.replicas", "must be at least 1, got -1")]
    [InlineData("  nprocPerNode: 0", 17, "spec.nprocPerNode", "must be at least 1, got 0")]
    [InlineData("  backoffLimit: -1", 17, "spec.backoffLimit", "must be at least 0, got -1")]
    [InlineData("  activeDeadlineSeconds: 0", 26, "spec.activeDeadlineSeconds", "must be at least 1, got 0")]
    [InlineData("  restartPolicy: Always", 18, "spec.restartPolicy", "'Always' is not a valid restartPolicy (allowed: Never, OnFailure, ExitCode)")]
    [InlineData("  resources: {requests: {cpu: 2}, limits: {cpu: 1}}", 31, "spec.resources.requests.cpu", "request 2 is more than the limit 1: a request must not exceed its limit")]
    [InlineData("  args: [\"--lr=${params.lr}\"]", 10, "spec.args[0]", "${params.lr} names no parameter 'lr' (the job has no params)")]
    [InlineData("  args: [x, \"--lr=${params.lrate}\"]\n  params: {lr: 0.1}", 13, "spec.args[1]", "${params.lrate} names no parameter 'lrate' (known: lr)")]
    [InlineData("  tolerations: [{key: a, operator: Is}]", 36, "spec.tolerations[0].operator", "'Is' is not a valid operator (allowed: Equal, Exists)")]
    public void Read_ImpossibleValue_ReportsTheRuleAtTheValue(string line, int column, string path, string message)
    {
        var error = SpecError(line);

        Assert.Equal(new ResourceError("job.yaml", 7, column, path, message), error);
    }

    [Theory]
    [InlineData("kind: TrainJob\nmetadata: {name: a}\nspec: {command: [x]}", 1, 1, "apiVersion", "missing required field 'apiVersion' (use capstan.dev/v1alpha1)")]
    [InlineData("apiVersion: kubeflow.org/v1\nkind: TrainJob\nmetadata: {name: a}\nspec: {command: [x]}", 1, 13, "apiVersion", "unknown apiVersion 'kubeflow.org/v1' (expected capstan.dev/v1alpha1)")]
    [InlineData("apiVersion: capstan.dev/v1alpha1\nmetadata: {name: a}", 1, 1, "kind", "missing required field 'kind' (one of: TrainJob, Experiment, Pipeline, InferenceService, Monitor)")]
    [InlineData("apiVersion: capstan.dev/v1alpha1\nkind: TrainJobs\nmetadata: {name: a}", 2, 7, "kind", "unknown kind 'TrainJobs' (did you mean 'TrainJob'?)")]
    [InlineData("apiVersion: capstan.dev/v1alpha1\nkind: Monitor\nmetadata: {name: a}", 2, 7, "kind", "kind 'Monitor' is not supported yet")]
    [InlineData("apiVersion: capstan.dev/v1alpha1\nkind: TrainJob\nmetadata:\n  labels: {a: b}\nspec: {command: [x]}", 3, 1, "metadata.name", "missing required field 'name'")]
    [InlineData("apiVersion: capstan.dev/v1alpha1\nkind: TrainJob\nspec: {command: [x]}", 1, 1, "metadata.name", "missing required field 'name'")]
    [InlineData("apiVersion: capstan.dev/v1alpha1\nkind: TrainJob\nmetadata: {name: My_Job}\nspec: {command: [x]}", 3, 18, "metadata.name", "'My_Job' is not a valid name: use lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. 'my-job-1')")]
    [InlineData("apiVersion: capstan.dev/v1alpha1\nkind: TrainJob\nmetadata: {name: a}\nspec: {workingDir: /tmp}", 4, 7, "spec", "either 'image' or 'command' is required")]
    [InlineData("- apiVersion: capstan.dev/v1alpha1", 1, 1, "", "expected a resource: a map with apiVersion, kind, metadata and spec")]
    public void Read_BadEnvelope_ReportsTheMissingOrWrongField(string yaml, int line, int column, string path, string message)
    {
        var error = SingleError(yaml);

        Assert.Equal(new ResourceError("job.yaml", line, column, path, message), error);
    }

    [Theory]
    [InlineData("metadata:\n  name: job\n spec: {}\n", 3, 2, "While parsing a block mapping, did not find expected key.")]
    [InlineData("metadata:\n  name: job: x\n", 2, 12, "While scanning a plain scalar value, found invalid mapping.")]
    [InlineData("metadata:\n  name: job\n  name: other\n", 3, 3, "Duplicate key name")]
    [InlineData("metadata:\n  name: [job\nspec: {}\n", 3, 1, "invalid YAML: is a '[' or '{' left unclosed?")]
    public void Read_YamlSyntaxError_ReportsItsLineAndColumn(string yaml, int line, int column, string message)
    {
        var error = SingleError(yaml);

        Assert.Equal(new ResourceError("job.yaml", line, column, "", message), error);
    }

    [Fact]
    public void Read_SeveralErrorsInSeveralDocuments_ReportsAllInFileOrder()
    {
        var yaml = Header + """
              replicas: 0
              restartPolicy: Sometimes
              resources: {limits: {memory: lots}}
            ---
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata: {name: Bad.Name}
            spec: {command: [x], colour: blue}
            """;

        var result = ResourceLoader.Read(yaml, "job.yaml");

        Assert.Empty(result.Resources);
        Assert.Equal(
            [
                "job.yaml:7:13: spec.replicas: must be at least 1, got 0",
                "job.yaml:8:18: spec.restartPolicy: 'Sometimes' is not a valid restartPolicy (allowed: Never, OnFailure, ExitCode)",
                "job.yaml:9:32: spec.resources.limits.memory: 'lots' is not a valid quantity (examples: 500m, 2, 1.5Gi)",
                "job.yaml:13:18: metadata.name: 'Bad.Name' is not a valid name: use lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. 'my-job-1')",
                "job.yaml:14:22: spec.colour: unknown field 'colour'",
            ],
            result.Errors.Select(e => e.ToString()));
    }

    [Fact]
    public void Load_InvalidFile_ThrowsWithEveryErrorOnItsOwnLine()
    {
        var yaml = Header + "  replicas: 0\n  priority: high\n";

        var exception = Assert.Throws<ResourceValidationException>(() => ResourceLoader.Load(yaml, "job.yaml"));

        Assert.Equal(
            "job.yaml:7:13: spec.replicas: must be at least 1, got 0\njob.yaml:8:13: spec.priority: expected an integer, got 'high'",
            exception.Message);
        Assert.Equal(2, exception.Errors.Count);
    }

    [Fact]
    public void Read_SameJobTwice_ReportsTheDuplicate()
    {
        var error = SingleError(Header + "---\n" + Header);

        Assert.Equal("job.yaml:11:9: metadata.name: TrainJob 'job' is defined twice (first at line 1)", error.ToString());
    }

    [Fact]
    public void Validate_ResourceBuiltInCode_ReportsWithoutPosition()
    {
        var job = new TrainJob { Metadata = { Name = "x" }, Spec = { Command = ["run"], Replicas = 0 } };

        var error = Assert.Single(ResourceValidation.Validate(job, "api"));

        Assert.Equal("api: spec.replicas: must be at least 1, got 0", error.ToString());
    }

    [Fact]
    public void Load_AnchorsAndAliases_AreResolvedBeforeBinding()
    {
        var yaml = Header + "  args: [--lr, &lr \"0.1\", --final-lr, *lr]\n";

        var job = (TrainJob)Assert.Single(ResourceLoader.Load(yaml, "job.yaml"));

        Assert.Equal(["--lr", "0.1", "--final-lr", "0.1"], job.Spec.Args!);
    }
}
