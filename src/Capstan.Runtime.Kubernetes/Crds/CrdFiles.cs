using Capstan.Runtime.Kubernetes.Rendering;

namespace Capstan.Runtime.Kubernetes.Crds;

/// <summary>The files of deploy/kubernetes/crds/: one YAML per CRD and the kustomization that lists them.</summary>
public static class CrdFiles
{
    /// <summary>The command that rewrites the committed files from the code (a test that otherwise fails when they differ).</summary>
    public const string RegenerateCommand = "CAPSTAN_WRITE_CRDS=1 dotnet test tests/Capstan.Runtime.Kubernetes.Tests --filter FullyQualifiedName~CrdFilesTests";

    private const string Header = "# Generated from the C# resource model (Capstan.Runtime.Kubernetes.Crds); do not edit.\n# Regenerate: " + RegenerateCommand + "\n";

    /// <summary>File name → content, in a stable order.</summary>
    public static IReadOnlyDictionary<string, string> Render()
    {
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var names = new List<string>();
        foreach (var crd in CustomResourceDefinitions.All())
        {
            var file = crd.Metadata.Name + ".yaml";
            names.Add(file);
            files[file] = Header + KubernetesManifests.ToYaml([crd]);
        }

        // For the CRDs alone: kubectl apply -k deploy/kubernetes/crds
        files["kustomization.yaml"] = Header
            + "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
            + string.Concat(names.Order(StringComparer.Ordinal).Select(n => $"  - {n}\n"));
        return files;
    }

    /// <summary>
    /// deploy/kubernetes/kustomization.yaml with its <c>  - crds/…</c> lines replaced by one line per CRD file, so the
    /// install lists every CRD file by name (kustomize v2, in kubectl 1.20, takes no folder as a resource).
    /// </summary>
    public static string WithCrdResources(string kustomization)
    {
        ArgumentNullException.ThrowIfNull(kustomization);
        const string Prefix = "  - crds/";
        var lines = kustomization.Split('\n').ToList();
        var first = lines.FindIndex(l => l.StartsWith(Prefix, StringComparison.Ordinal));
        if (first < 0)
        {
            throw new InvalidOperationException("the kustomization has no '  - crds/' resource lines to replace");
        }

        lines.RemoveAll(l => l.StartsWith(Prefix, StringComparison.Ordinal));
        var crds = Render().Keys.Where(k => k != "kustomization.yaml").Order(StringComparer.Ordinal).Select(k => Prefix + k);
        lines.InsertRange(first, crds);
        return string.Join('\n', lines);
    }
}
