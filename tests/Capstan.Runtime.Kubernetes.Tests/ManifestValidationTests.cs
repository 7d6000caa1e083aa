using System.Diagnostics;
using System.Text.Json.Nodes;
using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Crds;
using Capstan.Runtime.Kubernetes.Rendering;
using Capstan.Runtime.Kubernetes.Tests.Validation;

namespace Capstan.Runtime.Kubernetes.Tests;

/// <summary>
/// Everything Capstan hands a cluster is checked against the Kubernetes API schemas twice: strict deserialisation into
/// the KubernetesClient models (unknown fields, wrong types) and the kubernetes-models validators on Node (types, enums,
/// required fields). The rendered objects of every example and fixture under every cluster option, the install
/// kustomization as kubectl builds it, and the generated CRDs; the example custom resources against the CRDs' schemas.
/// </summary>
public sealed class ManifestValidationTests
{
    private static readonly Dictionary<string, RenderOptions> s_options = new(StringComparer.Ordinal)
    {
        ["plain"] = RenderOptions.Default,
        ["kueue"] = RenderOptions.Default with { GangScheduler = GangScheduler.Kueue, KueueQueue = "team-a" },
        ["volcano"] = RenderOptions.Default with { GangScheduler = GangScheduler.Volcano },
        ["gateway"] = RenderOptions.Default with { GatewayApi = true, GatewayNamespace = "gateways", RunId = "0123abcd", ExperimentId = "3" },
    };

    /// <summary>The Capstan resource files of examples/ and Fixtures/ (not, say, a Katib experiment kept for import).</summary>
    public static IEnumerable<string> ResourceFiles() =>
        Directory.EnumerateFiles(Repository.Examples, "*.yaml").Concat(Directory.EnumerateFiles(Repository.Fixtures, "*.yaml"))
            .Where(f => KubernetesYamlReader.ReadAll(File.ReadAllText(f)).All(d => d["apiVersion"]?.GetValue<string>() == Resource.V1Alpha1))
            .Order(StringComparer.Ordinal);

    public static TheoryData<string, string> RenderCases()
    {
        var cases = new TheoryData<string, string>();
        // Files of kinds that render to nothing of their own (an Experiment: its trials become TrainJobs) have no case.
        foreach (var file in ResourceFiles().Where(f => ResourceLoader.LoadFile(f).Any(r => r is TrainJob or InferenceService)))
        {
            foreach (var option in s_options.Keys)
            {
                cases.Add(Path.GetRelativePath(Repository.Root, file), option);
            }
        }

        return cases;
    }

    private static List<JsonObject> Rendered(string file, RenderOptions options)
    {
        var resources = ResourceLoader.LoadFile(Path.Combine(Repository.Root, file));
        foreach (var (resource, i) in resources.Select((r, i) => (r, i)))
        {
            // As the operator renders a stored resource: with its uid, so the owner references are there too.
            resource.Metadata.Uid = $"00000000-0000-4000-8000-{i:D12}";
            resource.Metadata.Generation = 1;
        }

        return [.. KubernetesRenderer.Render(resources, options).Select(KubernetesManifests.ToJsonNode)];
    }

    /// <summary>Every render case validated by one Node process (a process per case would take a minute on 2 cores).</summary>
    private static readonly Lazy<Dictionary<(string File, string Option), (List<JsonObject> Objects, List<KubernetesModelsValidator.Result> Results)>> s_renderResults = new(() =>
    {
        var cases = RenderCases().Select(row => row.Data).ToList();
        var rendered = cases.ToDictionary(c => c, c => Rendered(c.Item1, s_options[c.Item2]));
        var all = rendered.Values.SelectMany(o => o).ToList();
        var results = KubernetesModelsValidator.Validate(all);
        var byCase = new Dictionary<(string, string), (List<JsonObject>, List<KubernetesModelsValidator.Result>)>();
        var offset = 0;
        foreach (var c in cases)
        {
            var objects = rendered[c];
            byCase[c] = (objects, results.Skip(offset).Take(objects.Count).ToList());
            offset += objects.Count;
        }

        return byCase;
    });

    private static void AssertValid(IReadOnlyList<JsonObject> objects, bool allModelled) =>
        AssertValid(objects, KubernetesModelsValidator.Validate(objects), allModelled);

    private static void AssertValid(IReadOnlyList<JsonObject> objects, IReadOnlyList<KubernetesModelsValidator.Result> results, bool allModelled)
    {
        Assert.NotEmpty(objects);
        var strict = objects.SelectMany(StrictModels.Check).ToList();
        Assert.True(strict.Count == 0, string.Join("\n", strict));
        Assert.Equal(objects.Select(o => o["kind"]!.GetValue<string>()), results.Select(r => r.Kind));
        var invalid = results.Where(r => r.Errors.Count > 0).Select(r => $"{r.Kind}/{r.Name}: {string.Join("; ", r.Errors)}").ToList();
        Assert.True(invalid.Count == 0, string.Join("\n", invalid));
        // Volcano's PodGroup has no kubernetes-models package; everything else must have been checked, not passed over.
        var notValidated = results.Where(r => !r.Validated && !(allModelled is false && r.Kind == Models.V1Beta1PodGroup.KubeKind)).Select(r => $"{r.ApiVersion} {r.Kind}").ToList();
        Assert.True(notValidated.Count == 0, "not validated: " + string.Join(", ", notValidated));
    }

    [Theory]
    [MemberData(nameof(RenderCases))]
    public void RenderedObjects_AgainstTheKubernetesSchemas_AreValid(string file, string option)
    {
        KubernetesModelsValidator.RequireInstalled();

        var (objects, results) = s_renderResults.Value[(file, option)];

        AssertValid(objects, results, allModelled: false);
    }

    [Fact]
    public void Kustomization_BuiltByKubectl_IsValid()
    {
        var kubectl = Tools.Find("kubectl");
        Tools.Require(kubectl is null ? "kubectl is not on PATH (Debian: apt-get install kubernetes-client)" : null);
        var start = new ProcessStartInfo(kubectl!, ["kustomize", Repository.Deploy]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var yaml = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"kubectl kustomize failed: {stderr}");

        var objects = KubernetesYamlReader.ReadAll(yaml);

        AssertValid(objects, allModelled: true);
        var kinds = objects.Select(o => o["kind"]!.GetValue<string>()).ToHashSet();
        Assert.Superset(new HashSet<string> { "Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service" }, kinds);
        Assert.Equal(CustomResourceDefinitions.All().Count, objects.Count(o => o["kind"]!.GetValue<string>() == "CustomResourceDefinition"));
    }

    [Fact]
    public void Kustomization_Pods_RunAsNonRootWithoutPrivilegeEscalationAndWithRequests()
    {
        var deployments = Directory.EnumerateFiles(Repository.Deploy, "*.yaml")
            .SelectMany(f => KubernetesYamlReader.ReadAll(File.ReadAllText(f)))
            .Where(o => o["kind"]!.GetValue<string>() == "Deployment")
            .ToList();

        Assert.Equal(2, deployments.Count);
        foreach (var deployment in deployments)
        {
            var pod = deployment["spec"]!["template"]!["spec"]!;
            Assert.True(pod["securityContext"]!["runAsNonRoot"]!.GetValue<bool>());
            foreach (var container in pod["containers"]!.AsArray())
            {
                Assert.False(container!["securityContext"]!["allowPrivilegeEscalation"]!.GetValue<bool>());
                Assert.True(container["securityContext"]!["readOnlyRootFilesystem"]!.GetValue<bool>());
                Assert.NotNull(container["resources"]!["requests"]!["cpu"]);
                Assert.NotNull(container["resources"]!["requests"]!["memory"]);
            }
        }

        var operatorDeployment = deployments.Single(d => d["metadata"]!["name"]!.GetValue<string>() == "capstan-operator");
        Assert.Equal(2, operatorDeployment["spec"]!["replicas"]!.GetValue<long>());
    }

    [Fact]
    public void GeneratedCrds_AgainstTheKubernetesSchemas_AreValid()
    {
        var objects = CustomResourceDefinitions.All().Select(KubernetesManifests.ToJsonNode).ToList();

        AssertValid(objects, allModelled: true);
    }

    public static TheoryData<string> CustomResourceFiles() => [.. ResourceFiles().Select(f => Path.GetRelativePath(Repository.Root, f))];

    [Theory]
    [MemberData(nameof(CustomResourceFiles))]
    public void CustomResources_AgainstTheGeneratedCrdSchemas_AreValid(string file)
    {
        var documents = KubernetesYamlReader.ReadAll(File.ReadAllText(Path.Combine(Repository.Root, file)));

        Assert.NotEmpty(documents);
        foreach (var document in documents)
        {
            var errors = StructuralSchemaValidator.Validate(document, SchemaOf(document["kind"]!.GetValue<string>()));
            Assert.True(errors.Count == 0, $"{file}: {string.Join("\n", errors)}");
        }
    }

    [Fact]
    public void CrdSchema_BadTrainJob_ReportsEachProblemAtItsPath()
    {
        var document = KubernetesYamlReader.ReadAll("""
            apiVersion: capstan.dev/v1alpha1
            kind: TrainJob
            metadata: {name: bad}
            spec:
              command: [python]
              replicas: two
              restartPolicy: Sometimes
              params: {lr: 0.01}
              resources: {limits: {cpu: lots}}
              env: [{value: x}]
              tolerations: [{key: a, tolerationSeconds: 1.5}]
              gpus: 2
            """)[0];

        var errors = StructuralSchemaValidator.Validate(document, SchemaOf("TrainJob"));

        Assert.Contains(errors, e => e.StartsWith(".spec.replicas: must be an integer", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith(".spec.restartPolicy: 'Sometimes' is not one of Never, OnFailure, ExitCode", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith(".spec.params.lr: must be a string", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith(".spec.resources.limits.cpu: 'lots' does not match", StringComparison.Ordinal));
        Assert.Contains(errors, e => e == ".spec.env[0]: missing required field 'name'");
        Assert.Contains(errors, e => e.StartsWith(".spec.tolerations[0].tolerationSeconds: must be an integer", StringComparison.Ordinal));
        Assert.Contains(errors, e => e == ".spec.gpus: unknown field 'gpus'");
        Assert.True(errors.Count == 7, string.Join("\n", errors));
    }

    [Fact]
    public void StrictModels_UnknownFieldOrWrongType_Fail()
    {
        var job = Rendered(Path.Combine("examples", "trainjob-distributed.yaml"), RenderOptions.Default).Single(o => o["kind"]!.GetValue<string>() == "Job");
        var unknown = job.DeepClone().AsObject();
        unknown["spec"]!["template"]!["spec"]!["containers"]![0]!["gpus"] = 1;
        var wrongType = job.DeepClone().AsObject();
        wrongType["spec"]!["parallelism"] = "two";

        Assert.Empty(StrictModels.Check(job));
        Assert.Contains("gpus", Assert.Single(StrictModels.Check(unknown)), StringComparison.Ordinal);
        Assert.Contains("parallelism", Assert.Single(StrictModels.Check(wrongType)), StringComparison.Ordinal);
    }

    [Fact]
    public void KubernetesModels_BadEnumOrMissingRequiredField_Fail()
    {
        var job = Rendered(Path.Combine("examples", "trainjob-distributed.yaml"), RenderOptions.Default).Single(o => o["kind"]!.GetValue<string>() == "Job");
        job["spec"]!["template"]!["spec"]!["restartPolicy"] = "Sometimes";
        job["spec"]!["template"]!["spec"]!["containers"]![0]!.AsObject().Remove("name");

        var result = Assert.Single(KubernetesModelsValidator.Validate([job]));

        Assert.True(result.Validated);
        Assert.Contains(result.Errors, e => e.Contains("restartPolicy", StringComparison.Ordinal) && e.Contains("Never", StringComparison.Ordinal));
        Assert.Contains(result.Errors, e => e.Contains("required property 'name'", StringComparison.Ordinal) || e.Contains("required property name", StringComparison.Ordinal));
    }

    private static k8s.Models.V1JSONSchemaProps SchemaOf(string kind) =>
        CustomResourceDefinitions.All().Single(c => c.Spec.Names.Kind == kind).Spec.Versions[0].Schema.OpenAPIV3Schema;
}
