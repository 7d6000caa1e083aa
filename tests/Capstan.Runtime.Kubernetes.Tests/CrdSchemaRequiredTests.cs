using System.Diagnostics;
using System.Text.Json;
using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Crds;
using Capstan.Runtime.Kubernetes.Tests.Validation;

namespace Capstan.Runtime.Kubernetes.Tests;

/// <summary>
/// The KubernetesClient models do not mark required fields, so the CRD generator keeps the Kubernetes OpenAPI's lists
/// itself; this checks them, for every Kubernetes type any CRD embeds, against the kubernetes-models validators.
/// </summary>
public sealed class CrdSchemaRequiredTests
{
    /// <summary>Types of Kubernetes versions newer than kubernetes-models@4 (v1.34's env from files); their list is checked by hand.</summary>
    private static readonly string[] s_newerThanTheValidators = ["V1FileKeySelector"];

    [Fact]
    public void EmbeddedKubernetesTypes_RequiredFields_MatchTheKubernetesOpenApi()
    {
        KubernetesModelsValidator.RequireInstalled();
        var types = new SortedDictionary<string, Type>(StringComparer.Ordinal);
        foreach (var kind in ResourceKinds.Names.Where(k => ResourceKinds.TypeOf(k) is not null))
        {
            Collect(ResourceKinds.TypeOf(kind)!, types, []);
        }

        var definitions = types.Keys.ToDictionary(name => name, Definitions);
        var required = Required([.. definitions.Values.SelectMany(d => d)]);

        Assert.Contains("V1EnvVar", types.Keys);
        Assert.Contains("V1WeightedPodAffinityTerm", types.Keys);
        var mismatches = new List<string>();
        foreach (var (name, type) in types.Where(t => !s_newerThanTheValidators.Contains(t.Key)))
        {
            var known = definitions[name].Select(d => required.GetValueOrDefault(d)).FirstOrDefault(r => r is not null);
            Assert.True(known is not null, $"{name}: no Kubernetes API definition among {string.Join(", ", definitions[name])}");
            var generated = CrdSchema.For(type).Required?.Order(StringComparer.Ordinal).ToList() ?? [];
            if (!generated.SequenceEqual(known))
            {
                mismatches.Add($"{name}: generated [{string.Join(", ", generated)}], Kubernetes [{string.Join(", ", known)}]");
            }
        }

        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
        Assert.All(s_newerThanTheValidators, name => Assert.True(definitions[name].All(d => required[d] is null), $"{name} is now in the validators: check it there"));
    }

    /// <summary>The Kubernetes model classes reachable from <paramref name="type"/>'s fields.</summary>
    private static void Collect(Type type, SortedDictionary<string, Type> found, HashSet<Type> seen)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (CrdSchema.DictionaryValueType(type) is { } value)
        {
            Collect(value, found, seen);
            return;
        }

        if (CrdSchema.ListItemType(type) is { } item)
        {
            Collect(item, found, seen);
            return;
        }

        if (!type.IsClass || type == typeof(string) || type.Namespace is not ("k8s.Models" or "Capstan.Core.Resources") || !seen.Add(type))
        {
            return;
        }

        if (type.Namespace == "k8s.Models" && type.Name != "ResourceQuantity")
        {
            found[type.Name] = type;
        }

        foreach (var (_, property) in CrdSchema.Fields(type))
        {
            Collect(property.PropertyType, found, seen);
        }
    }

    /// <summary>The API definitions a client model may stand for: core/v1 first, then the meta/v1 of apimachinery.</summary>
    private static string[] Definitions(string modelName)
    {
        var name = modelName.StartsWith("Corev1", StringComparison.Ordinal) ? "V1" + modelName["Corev1".Length..] : modelName;
        return ["IoK8sApiCore" + name, "IoK8sApimachineryPkgApisMeta" + name];
    }

    private static Dictionary<string, List<string>?> Required(string[] definitions)
    {
        var start = new ProcessStartInfo(Tools.Find("node")!, [Path.Combine(KubernetesModelsValidator.Folder, "required.js"), .. definitions])
        {
            RedirectStandardOutput = true,
        };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
        return JsonSerializer.Deserialize<Dictionary<string, List<string>?>>(output)!;
    }
}
