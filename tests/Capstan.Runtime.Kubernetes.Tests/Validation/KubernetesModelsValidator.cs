using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Capstan.Runtime.Kubernetes.Tests.Validation;

/// <summary>
/// Check (b): the npm kubernetes-models validators (the Kubernetes OpenAPI schemas through ajv) on Node, for types, enums,
/// formats and required fields. Needs <c>node</c> and <c>npm ci</c> run in validate/ (.ci/run does both).
/// </summary>
internal static class KubernetesModelsValidator
{
    public static string Folder => Path.Combine(Repository.Root, "tests", "Capstan.Runtime.Kubernetes.Tests", "validate");

    public sealed record Result(int Index, string? ApiVersion, string? Kind, string? Name, bool Validated, IReadOnlyList<string> Errors);

    /// <summary>Fails under CI, skips elsewhere, when Node or the installed validators are missing.</summary>
    public static void RequireInstalled()
    {
        var missing = Tools.Find("node") is null ? "node (Node.js 18 or later) is not on PATH"
            : !Directory.Exists(Path.Combine(Folder, "node_modules", "kubernetes-models"))
                || !Directory.Exists(Path.Combine(Folder, "gateway-api", "node_modules", "@kubernetes-models", "gateway-api"))
                ? $"the validators are not installed: run 'npm ci' in {Folder} and in its gateway-api/"
            : null;
        Tools.Require(missing);
    }

    public static IReadOnlyList<Result> Validate(IReadOnlyList<JsonObject> objects)
    {
        RequireInstalled();
        var input = Path.Combine(Path.GetTempPath(), $"capstan-validate-{Guid.NewGuid():N}.json");
        File.WriteAllText(input, new JsonArray([.. objects.Select(o => o.DeepClone())]).ToJsonString());
        try
        {
            var start = new ProcessStartInfo(Tools.Find("node")!, [Path.Combine(Folder, "validate.js"), input])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = Folder,
            };
            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"validate.js exited {process.ExitCode}: {stderr.Result}");
            return JsonSerializer.Deserialize<List<Result>>(stdout, new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
        }
        finally
        {
            File.Delete(input);
        }
    }
}
