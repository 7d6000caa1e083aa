using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Capstan.Core.Resources;

/// <summary>Something a translation did, or could not do, at a place in the source file.</summary>
public sealed record ResourceNote(string File, int Line, int Column, string FieldPath, string Message, bool Translated)
{
    public override string ToString()
    {
        var where = Line > 0 ? string.Create(CultureInfo.InvariantCulture, $"{File}:{Line}:{Column}") : File;
        return FieldPath.Length > 0 ? $"{where}: {FieldPath}: {Message}" : $"{where}: {Message}";
    }
}

/// <summary>
/// Reads a Katib <c>kubeflow.org/v1beta1</c> Experiment as a Capstan one. The search (objective, algorithm, parameters,
/// trial counts, early stopping, resume policy, trial parameters) has the same shape and is taken as it is; the trial
/// spec, a <c>batch/v1</c> Job or a <c>kubeflow.org/v1</c> PyTorchJob, becomes a TrainJob spec from its primary
/// container (image, command, args, env, envFrom, resources, workingDir), its pod's scheduling fields and its replica
/// count. The translated document keeps the original's nodes, so errors still point into the Katib file; every field
/// left behind is reported as a note.
/// </summary>
internal static class KatibTranslation
{
    public const string ApiVersion = "kubeflow.org/v1beta1";

    private static readonly string[] s_searchFields =
        ["objective", "algorithm", "parameters", "parallelTrialCount", "maxTrialCount", "maxFailedTrialCount", "earlyStopping", "resumePolicy"];

    private static readonly string[] s_containerFields = ["image", "command", "args", "env", "envFrom", "resources", "workingDir"];

    private static readonly string[] s_podFields = ["nodeSelector", "tolerations", "affinity"];

    public static bool IsKatib(YamlNode root) =>
        root is YamlMappingNode mapping && Scalar(mapping, "apiVersion") is ApiVersion;

    public static Resource? Translate(YamlMappingNode root, ResourceValidation validation, string source, List<ResourceNote> notes)
    {
        var context = new Context(source, notes);
        var kindNode = Child(root, "kind");
        if (Scalar(root, "kind") != TuningExperiment.KindName)
        {
            validation.Error(kindNode ?? root, "kind", $"only a Katib Experiment can be brought over from {ApiVersion}, not '{Scalar(root, "kind")}'");
            return null;
        }

        var translated = new YamlMappingNode
        {
            { new YamlScalarNode("apiVersion"), new YamlScalarNode(Resource.V1Alpha1) },
            { new YamlScalarNode("kind"), kindNode! },
        };
        if (Child(root, "metadata") is { } metadata)
        {
            translated.Add(new YamlScalarNode("metadata"), metadata);
        }

        if (Child(root, "status") is { } status)
        {
            context.Skip(status, "status", "a Katib status is not carried over; Capstan computes its own");
        }

        if (Child(root, "spec") is YamlMappingNode spec)
        {
            translated.Add(new YamlScalarNode("spec"), TranslateSpec(spec, validation, context));
        }
        else if (Child(root, "spec") is { } other)
        {
            translated.Add(new YamlScalarNode("spec"), other);
        }

        var resource = ResourceLoader.ReadDocument(translated, validation);
        var added = notes.Skip(context.First).OrderBy(n => (n.Line, n.Column)).ToList();
        notes.RemoveRange(context.First, added.Count);
        notes.AddRange(added);
        if (resource is not null && validation.Errors.Count == 0)
        {
            var name = resource.Metadata.Name;
            notes.Insert(context.First, new ResourceNote(source, (int)root.Start.Line, (int)root.Start.Column, "", $"translated Katib Experiment '{name}' ({ApiVersion}) into a Capstan Experiment ({Resource.V1Alpha1})", Translated: true));
        }

        return resource;
    }

    private static YamlMappingNode TranslateSpec(YamlMappingNode spec, ResourceValidation validation, Context context)
    {
        var result = new YamlMappingNode();
        foreach (var (keyNode, value) in spec.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? "";
            var path = "spec." + key;
            switch (key)
            {
                case var _ when s_searchFields.Contains(key):
                    result.Add(keyNode, value);
                    break;
                case "trialTemplate" when value is YamlMappingNode template:
                    result.Add(keyNode, TranslateTemplate(template, validation, context));
                    break;
                case "metricsCollectorSpec":
                    TranslateCollector(value, context);
                    break;
                case "nasConfig":
                    context.Skip(value, path, "neural architecture search is not supported; the experiment needs 'parameters' to search");
                    break;
                default:
                    context.Skip(keyNode, path, "not a Katib field Capstan knows; left out");
                    break;
            }
        }

        if (Child(spec, "algorithm") is YamlMappingNode algorithm && Scalar(algorithm, "algorithmName") is { } name)
        {
            if (Capstan.Tuning.SearchAlgorithms.Canonical(name) is not null)
            {
                context.Done(algorithm, "spec.algorithm", $"algorithm '{name}' runs in Capstan's own search engine");
            }
            else
            {
                context.Skip(algorithm, "spec.algorithm.algorithmName", $"algorithm '{name}' is not supported");
            }
        }

        return result;
    }

    private static void TranslateCollector(YamlNode value, Context context)
    {
        var kind = value is YamlMappingNode collector && Child(collector, "collector") is YamlMappingNode inner ? Scalar(inner, "kind") ?? "StdOut" : "StdOut";
        if (kind == "StdOut")
        {
            context.Done(value, "spec.metricsCollectorSpec", "the StdOut collector needs no sidecar: 'name=value' lines on stdout land in the trial's run");
        }
        else
        {
            context.Skip(value, "spec.metricsCollectorSpec", $"the {kind} metrics collector is not supported; trials report through stdout 'name=value' lines, the Capstan API or the MLflow API");
        }

        if (value is YamlMappingNode spec && Child(spec, "source") is { } source)
        {
            context.Skip(source, "spec.metricsCollectorSpec.source", "custom metric sources and formats are not supported; stdout lines must read 'name=value'");
        }
    }

    private static YamlMappingNode TranslateTemplate(YamlMappingNode template, ResourceValidation validation, Context context)
    {
        var result = new YamlMappingNode();
        var primary = Scalar(template, "primaryContainerName");
        foreach (var (keyNode, value) in template.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? "";
            var path = "spec.trialTemplate." + key;
            switch (key)
            {
                case "trialParameters":
                case "primaryContainerName":
                    result.Add(keyNode, value);
                    break;
                case "trialSpec" when value is YamlMappingNode trialSpec:
                    if (TranslateTrialSpec(trialSpec, primary, validation, context) is { } translated)
                    {
                        result.Add(keyNode, translated);
                    }

                    break;
                case "configMap":
                    validation.Error(value, path, "a trial template kept in a ConfigMap cannot be read here; inline it as trialSpec");
                    break;
                default:
                    context.Skip(keyNode, path, key switch
                    {
                        "retain" => "trials' TrainJobs are always kept",
                        "successCondition" or "failureCondition" => "a trial succeeds or fails with its TrainJob",
                        "primaryPodLabels" => "a TrainJob's replicas need no labels to be found",
                        _ => "left out",
                    });
                    break;
            }
        }

        return result;
    }

    private static YamlMappingNode? TranslateTrialSpec(YamlMappingNode trialSpec, string? primaryContainer, ResourceValidation validation, Context context)
    {
        const string root = "spec.trialTemplate.trialSpec";
        var apiVersion = Scalar(trialSpec, "apiVersion");
        var kind = Scalar(trialSpec, "kind");
        var spec = Child(trialSpec, "spec") as YamlMappingNode;
        var result = new YamlMappingNode();
        YamlMappingNode? podTemplate;
        var podPath = $"{root}.spec.template.spec";
        int? replicas = null;
        YamlNode? restartPolicy = null;
        switch (kind)
        {
            case "Job" when apiVersion == "batch/v1":
                podTemplate = spec is null ? null : Child(spec, "template") as YamlMappingNode;
                CopyIfPresent(spec, "backoffLimit", result);
                CopyIfPresent(spec, "activeDeadlineSeconds", result);
                foreach (var keyNode in spec?.Children.Keys ?? Enumerable.Empty<YamlNode>())
                {
                    if ((keyNode as YamlScalarNode)?.Value is { } key and not ("template" or "backoffLimit" or "activeDeadlineSeconds"))
                    {
                        context.Skip(keyNode, $"{root}.spec.{key}", "a Job field with no TrainJob counterpart; left out");
                    }
                }

                break;
            case "PyTorchJob" when apiVersion is "kubeflow.org/v1":
                var replicaSpecs = spec is null ? null : Child(spec, "pytorchReplicaSpecs") as YamlMappingNode;
                var master = replicaSpecs is null ? null : Child(replicaSpecs, "Master") as YamlMappingNode;
                var worker = replicaSpecs is null ? null : Child(replicaSpecs, "Worker") as YamlMappingNode;
                var first = master ?? worker;
                podPath = $"{root}.spec.pytorchReplicaSpecs.{(master is not null ? "Master" : "Worker")}.template.spec";
                podTemplate = first is null ? null : Child(first, "template") as YamlMappingNode;
                replicas = ReplicaCount(master) + ReplicaCount(worker);
                restartPolicy = first is null ? null : Child(first, "restartPolicy");
                if (spec is not null && Child(spec, "nprocPerNode") is YamlScalarNode { Value: { } nproc } nprocNode)
                {
                    if (int.TryParse(nproc, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                    {
                        result.Add(new YamlScalarNode("nprocPerNode"), new YamlScalarNode(nproc) { Style = YamlDotNet.Core.ScalarStyle.Plain });
                    }
                    else
                    {
                        context.Skip(nprocNode, $"{root}.spec.nprocPerNode", $"'{nproc}' is not a number of processes; one per replica is started");
                    }
                }

                if (spec is not null && Child(spec, "runPolicy") is YamlMappingNode runPolicy)
                {
                    CopyIfPresent(runPolicy, "backoffLimit", result);
                    CopyIfPresent(runPolicy, "activeDeadlineSeconds", result);
                }

                context.Done(trialSpec, root, $"PyTorchJob with {replicas} replica(s) → a distributed TrainJob (gang-started, PyTorch rendezvous environment)");
                break;
            default:
                validation.Error(trialSpec, root, $"a trial spec of kind '{kind}' ({apiVersion}) cannot be translated; supported: batch/v1 Job, kubeflow.org/v1 PyTorchJob");
                return null;
        }

        var podSpec = podTemplate is null ? null : Child(podTemplate, "spec") as YamlMappingNode;
        var containers = podSpec is null ? null : Child(podSpec, "containers") as YamlSequenceNode;
        if (containers is null || containers.Children.Count == 0)
        {
            validation.Error(trialSpec, root, "the trial spec has no pod template with containers to take the command from");
            return null;
        }

        var container = containers.Children.OfType<YamlMappingNode>()
            .FirstOrDefault(c => Scalar(c, "name") == primaryContainer)
            ?? containers.Children.OfType<YamlMappingNode>().FirstOrDefault(c => Scalar(c, "name") is "training-container" or "pytorch")
            ?? (YamlMappingNode)containers.Children[0];
        var containerPath = FieldPath.Index(podPath + ".containers", containers.Children.IndexOf(container));
        foreach (var (keyNode, value) in container.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? "";
            if (s_containerFields.Contains(key))
            {
                result.Add(keyNode, value);
            }
            else if (key != "name")
            {
                context.Skip(keyNode, $"{containerPath}.{key}", "a container field with no TrainJob counterpart; left out");
            }
        }

        foreach (var other in containers.Children.OfType<YamlMappingNode>().Where(c => c != container))
        {
            context.Skip(other, FieldPath.Index(podPath + ".containers", containers.Children.IndexOf(other)), $"only the primary container runs; container '{Scalar(other, "name")}' is left out");
        }

        foreach (var (keyNode, value) in podSpec!.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? "";
            if (s_podFields.Contains(key))
            {
                result.Add(keyNode, value);
            }
            else if (key == "restartPolicy")
            {
                restartPolicy ??= value;
            }
            else if (key != "containers")
            {
                context.Skip(keyNode, $"{podPath}.{key}", "a pod field with no TrainJob counterpart; left out");
            }
        }

        if (restartPolicy is YamlScalarNode { Value: { } policy })
        {
            if (policy == "Always")
            {
                result.Add(new YamlScalarNode("restartPolicy"), new YamlScalarNode("OnFailure"));
                context.Skip(restartPolicy, $"{root}.restartPolicy", "'Always' restarts a finished trial too; translated as OnFailure");
            }
            else
            {
                result.Add(new YamlScalarNode("restartPolicy"), restartPolicy);
            }
        }

        if (replicas is > 1)
        {
            result.Add(new YamlScalarNode("replicas"), new YamlScalarNode(replicas.Value.ToString(CultureInfo.InvariantCulture)));
        }

        var taken = string.Join(", ", s_containerFields.Where(f => Child(container, f) is not null));
        context.Done(container, root, $"{kind} container '{Scalar(container, "name")}' → TrainJob spec ({taken})");
        if (Child(container, "image") is { } image && Child(container, "command") is not null)
        {
            context.Done(image, $"{root}.image", "on Kubernetes the trial runs in the image; on the local runtime its command runs as a process on this machine");
        }

        return result;
    }

    private static int ReplicaCount(YamlMappingNode? replicaSpec) =>
        replicaSpec is null ? 0
        : Child(replicaSpec, "replicas") is YamlScalarNode { Value: { } text } && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var count) ? count
        : 1;

    private static void CopyIfPresent(YamlMappingNode? from, string key, YamlMappingNode to)
    {
        if (from is not null && Child(from, key) is { } value)
        {
            to.Add(new YamlScalarNode(key), value);
        }
    }

    private static YamlNode? Child(YamlMappingNode mapping, string key) =>
        mapping.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    private static string? Scalar(YamlMappingNode mapping, string key) => (Child(mapping, key) as YamlScalarNode)?.Value;

    private sealed class Context(string source, List<ResourceNote> notes)
    {
        /// <summary>Where this document's notes start in the list shared by every document of the file.</summary>
        public int First { get; } = notes.Count;

        public void Done(YamlNode node, string path, string message) => Add(node, path, message, translated: true);

        public void Skip(YamlNode node, string path, string message) => Add(node, path, "not translated: " + message, translated: false);

        private void Add(YamlNode node, string path, string message, bool translated) =>
            notes.Add(new ResourceNote(source, (int)node.Start.Line, (int)node.Start.Column, path, message, translated));
    }
}
