using Capstan.Runtime.Kubernetes.Crds;

namespace Capstan.Runtime.Kubernetes.Tests;

/// <summary>The CRDs committed under deploy/kubernetes/crds/ are exactly what the resource classes generate.</summary>
public sealed class CrdFilesTests
{
    private static string Folder => Path.Combine(Repository.Deploy, "crds");

    private static string Install => Path.Combine(Repository.Deploy, "kustomization.yaml");

    private static bool Writing => Environment.GetEnvironmentVariable("CAPSTAN_WRITE_CRDS") == "1" && Environment.GetEnvironmentVariable("CI") != "true";

    [Fact]
    public void CommittedCrds_ComparedWithTheCode_AreTheSame()
    {
        var expected = CrdFiles.Render();
        if (Writing)
        {
            Directory.CreateDirectory(Folder);
            foreach (var stale in Directory.EnumerateFiles(Folder, "*.yaml").Where(f => !expected.ContainsKey(Path.GetFileName(f))))
            {
                File.Delete(stale);
            }

            foreach (var (file, content) in expected)
            {
                File.WriteAllText(Path.Combine(Folder, file), content);
            }
        }

        var committed = Directory.Exists(Folder)
            ? Directory.EnumerateFiles(Folder, "*.yaml").ToDictionary(f => Path.GetFileName(f), File.ReadAllText)
            : [];
        var missing = expected.Keys.Except(committed.Keys).ToList();
        var extra = committed.Keys.Except(expected.Keys).ToList();
        var changed = expected.Where(e => committed.TryGetValue(e.Key, out var text) && text != e.Value).Select(e => e.Key).ToList();
        Assert.True(
            missing.Count + extra.Count + changed.Count == 0,
            $"deploy/kubernetes/crds/ is out of date (missing: [{string.Join(", ", missing)}], not generated: [{string.Join(", ", extra)}], changed: [{string.Join(", ", changed)}]); run: {CrdFiles.RegenerateCommand}");
    }

    [Fact]
    public void InstallKustomization_ListsEveryGeneratedCrd()
    {
        var text = File.ReadAllText(Install);
        if (Writing)
        {
            File.WriteAllText(Install, CrdFiles.WithCrdResources(text));
            text = File.ReadAllText(Install);
        }

        Assert.True(text == CrdFiles.WithCrdResources(text), $"deploy/kubernetes/kustomization.yaml does not list every CRD file; run: {CrdFiles.RegenerateCommand}");
        foreach (var file in CrdFiles.Render().Keys.Where(k => k != "kustomization.yaml"))
        {
            Assert.Contains($"  - crds/{file}\n", text, StringComparison.Ordinal);
        }
    }
}
