using System.CommandLine;
using Capstan.Cli.ControlPlane;
using Capstan.Core.Resources;
using Capstan.Runtime.Kubernetes.Rendering;
using YamlDotNet.RepresentationModel;

namespace Capstan.Cli.Kubernetes;

/// <summary>
/// <c>capstan render -f FILE</c>: prints the Kubernetes objects the operator would create for the file's resources, as
/// multi-document YAML (or a JSON list), for review and for GitOps tools (Argo CD, Flux). The file is validated as
/// <c>capstan apply</c> validates it, and nothing is printed when any document is wrong. Rendered from a file, the
/// objects carry no owner references (the custom resource has no uid yet); the operator adds them.
/// </summary>
public static class RenderCommand
{
    public static Command Create(CliContext context)
    {
        var file = new Option<string>("--filename", "-f")
        {
            Description = "The YAML file to render (multi-document; '-' reads stdin).",
            Required = true,
        };
        var ns = new Option<string?>("--namespace", "-n") { Description = "Put every object in this namespace (default: each resource's own)." };
        var gang = new Option<GangScheduler>("--gang-scheduler")
        {
            Description = "How a distributed TrainJob's pods are admitted together: None (one by one), Kueue (suspended Job with the queue label) or Volcano (a PodGroup).",
            DefaultValueFactory = _ => GangScheduler.None,
        };
        var kueueQueue = new Option<string>("--kueue-queue") { Description = "The Kueue LocalQueue, with --gang-scheduler Kueue.", DefaultValueFactory = _ => "default" };
        var volcanoQueue = new Option<string>("--volcano-queue") { Description = "The Volcano queue, with --gang-scheduler Volcano.", DefaultValueFactory = _ => "default" };
        var gatewayApi = new Option<bool>("--gateway-api") { Description = "The cluster has the Gateway API: an InferenceService gets an HTTPRoute, a canary a weighted split." };
        var gateway = new Option<string>("--gateway") { Description = "The Gateway the HTTPRoute attaches to.", DefaultValueFactory = _ => "capstan" };
        var gatewayNamespace = new Option<string?>("--gateway-namespace") { Description = "The Gateway's namespace (default: the route's)." };
        var apiUrl = new Option<string>("--api-url") { Description = "The Capstan API the pods report to.", DefaultValueFactory = _ => RenderOptions.DefaultApiUrl };
        var trainerImage = new Option<string>("--trainer-image") { Description = "The image of a TrainJob without spec.image.", DefaultValueFactory = _ => RenderOptions.DefaultTrainerImage };
        var servingImage = new Option<string>("--serving-image") { Description = "The inference server image.", DefaultValueFactory = _ => RenderOptions.DefaultServingImage };
        var output = new Option<RenderFormat>("--output", "-o") { Description = "yaml (documents separated by ---) or json (a v1 List).", DefaultValueFactory = _ => RenderFormat.Yaml };
        var command = new Command("render", "Print the Kubernetes objects the operator would create for a file's resources (for review and GitOps).")
        {
            file, ns, gang, kueueQueue, volcanoQueue, gatewayApi, gateway, gatewayNamespace, apiUrl, trainerImage, servingImage, output,
        };
        command.SetHandler(context, (parse, _) =>
        {
            var path = parse.GetRequiredValue(file);
            var resources = ApplyCommand.Load(context, path);
            if (resources is null)
            {
                return Task.FromResult(ExitCodes.UserError);
            }

            var options = new RenderOptions
            {
                Namespace = parse.GetValue(ns),
                GangScheduler = parse.GetValue(gang),
                KueueQueue = parse.GetRequiredValue(kueueQueue),
                VolcanoQueue = parse.GetRequiredValue(volcanoQueue),
                GatewayApi = parse.GetValue(gatewayApi),
                GatewayName = parse.GetRequiredValue(gateway),
                GatewayNamespace = parse.GetValue(gatewayNamespace),
                ApiUrl = parse.GetRequiredValue(apiUrl),
                TrainerImage = parse.GetRequiredValue(trainerImage),
                ServingImage = parse.GetRequiredValue(servingImage),
            };
            if (options.Namespace is { } target && ResourceNames.Check(target) is { } problem)
            {
                CommandAction.Fail(context, $"--namespace: {problem}");
                return Task.FromResult(ExitCodes.Usage);
            }

            var objects = new List<object>();
            var errors = new List<ResourceError>();
            foreach (var resource in resources)
            {
                try
                {
                    objects.AddRange(KubernetesRenderer.Render(resource, options));
                }
                catch (ResourceValidationException e)
                {
                    errors.AddRange(e.Errors.Select(error => Locate(path, resource, error)));
                }
            }

            if (errors.Count > 0)
            {
                var writer = context.Error.Profile.Out.Writer;
                foreach (var error in errors)
                {
                    writer.WriteLine(error.ToString());
                }

                writer.WriteLine($"{errors.Count} error(s) in {path}; nothing was rendered.");
                writer.Flush();
                return Task.FromResult(ExitCodes.UserError);
            }

            context.RawOut.Write(parse.GetValue(output) == RenderFormat.Json
                ? new System.Text.Json.Nodes.JsonObject
                {
                    ["apiVersion"] = "v1",
                    ["kind"] = "List",
                    ["items"] = new System.Text.Json.Nodes.JsonArray([.. objects.Select(KubernetesManifests.ToJsonNode)]),
                }.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n"
                : KubernetesManifests.ToYaml(objects));
            context.RawOut.Flush();
            return Task.FromResult(ExitCodes.Ok);
        });
        return command;
    }

    /// <summary>A render error with the file, line and column of its field, found in the resource's own document.</summary>
    private static ResourceError Locate(string path, Resource resource, ResourceError error)
    {
        var source = path == "-" ? "<stdin>" : path;
        if (path == "-" || !File.Exists(path))
        {
            return error with { File = source };
        }

        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(path)));
        foreach (var document in stream.Documents)
        {
            if (document.RootNode is YamlMappingNode root
                && Scalar(root, "kind") == resource.Kind
                && (root.Children.TryGetValue(new YamlScalarNode("metadata"), out var metadata) ? Scalar(metadata, "name") : null) == resource.Metadata.Name)
            {
                var node = Find(root, error.FieldPath);
                return error with { File = source, Line = (int)node.Start.Line, Column = (int)node.Start.Column };
            }
        }

        return error with { File = source };
    }

    private static string? Scalar(YamlNode node, string key) =>
        node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out var value) ? (value as YamlScalarNode)?.Value : null;

    /// <summary>The deepest node along a field path (<c>spec.resources.requests.cpu</c>, <c>spec.env[0]</c>): a missing field points at its parent.</summary>
    private static YamlNode Find(YamlNode root, string fieldPath)
    {
        var node = root;
        foreach (var segment in fieldPath.Replace("[", ".[", StringComparison.Ordinal).Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            YamlNode? next = null;
            if (segment.StartsWith('[') && node is YamlSequenceNode sequence && int.TryParse(segment[1..^1], out var index) && index < sequence.Children.Count)
            {
                next = sequence.Children[index];
            }
            else if (node is YamlMappingNode map)
            {
                var key = segment.StartsWith('[') ? segment[1..^1] : segment;
                map.Children.TryGetValue(new YamlScalarNode(key), out next);
            }

            if (next is null)
            {
                return node;
            }

            node = next;
        }

        return node;
    }
}

public enum RenderFormat
{
    Yaml,
    Json,
}
