using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Spectre.Console;

namespace Capstan.Cli.ControlPlane;

/// <summary><c>capstan get KIND [NAME] [-n NS | -A] [-o table|json|yaml]</c>; YAML and JSON show the applied defaults.</summary>
public static class GetCommand
{
    private static readonly JsonSerializerOptions s_indented = new(ResourceSerializer.JsonOptions) { WriteIndented = true };

    public static Command Create(CliContext context)
    {
        var kindArgument = new Argument<string>("kind") { Description = "The kind: singular, plural or short name (trainjob, trainjobs, tj), or KIND/NAME." };
        var nameArgument = new Argument<string?>("name") { Description = "One resource's name; all of the kind when left out.", Arity = ArgumentArity.ZeroOrOne };
        var ns = ResourceArguments.CreateNamespaceOption();
        var allNamespaces = new Option<bool>("--all-namespaces", "-A") { Description = "List across every namespace." };
        var output = Output.CreateOption();
        var command = new Command("get", "Show resources (TrainJobs, ...) as a table, JSON or YAML.") { kindArgument, nameArgument, ns, allNamespaces, output };
        Cluster.ClusterOptions.AddTo(command);
        command.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var (kind, name) = ResourceArguments.KindAndName(parse.GetRequiredValue(kindArgument), parse.GetValue(nameArgument));
            var format = parse.GetValue(output);
            var @namespace = parse.GetValue(ns)!;
            if (name is not null)
            {
                var resource = await backend.Resources.GetAsync(kind, @namespace, name, ct);
                Write(context, format, [resource], kind, single: true, showNamespace: false);
                return ExitCodes.Ok;
            }

            var all = parse.GetValue(allNamespaces);
            var items = await backend.Resources.ListAsync(kind, all ? null : @namespace, cancellationToken: ct);
            if (items.Count == 0 && format == OutputFormat.Table)
            {
                context.Error.WriteLine(all ? "No resources found." : $"No resources found in {@namespace} namespace.");
                return ExitCodes.Ok;
            }

            Write(context, format, items, kind, single: false, showNamespace: all);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static void Write(CliContext context, OutputFormat format, IReadOnlyList<Resource> items, string kind, bool single, bool showNamespace)
    {
        switch (format)
        {
            case OutputFormat.Json:
                JsonNode node = single
                    ? ResourceSerializer.ToJsonNode(items[0])
                    : new JsonObject
                    {
                        ["apiVersion"] = Resource.V1Alpha1,
                        ["kind"] = "List",
                        ["items"] = new JsonArray([.. items.Select(i => (JsonNode)ResourceSerializer.ToJsonNode(i))]),
                    };
                context.RawOut.WriteLine(node.ToJsonString(s_indented));
                break;
            case OutputFormat.Yaml:
                // Multi-document, so the output can be edited and applied again.
                context.RawOut.Write(ResourceSerializer.ToYaml(items));
                break;
            default:
                if (single && items[0] is TuningExperiment experiment)
                {
                    ExperimentView.Write(context.Out, experiment);
                    break;
                }

                WriteTable(context, items, kind, showNamespace);
                break;
        }

        context.RawOut.Flush();
    }

    private static void WriteTable(CliContext context, IReadOnlyList<Resource> items, string kind, bool showNamespace)
    {
        var now = DateTimeOffset.UtcNow;
        var table = new Table().Border(TableBorder.None);
        var columns = new List<string>();
        if (showNamespace)
        {
            columns.Add("NAMESPACE");
        }

        columns.AddRange(["NAME", kind is TrainJob.KindName or TuningExperiment.KindName ? "PHASE" : "STATUS"]);
        columns.AddRange(ResourceFormatting.ExtraColumns(kind));
        columns.Add("AGE");
        table.AddColumns([.. columns]);
        foreach (var item in items)
        {
            var row = new List<string>();
            if (showNamespace)
            {
                row.Add(item.Metadata.Namespace ?? "");
            }

            row.AddRange([item.Metadata.Name ?? "", ResourceFormatting.Phase(item)]);
            row.AddRange(ResourceFormatting.ExtraValues(item));
            row.Add(ResourceFormatting.Age(item.Metadata.CreationTimestamp, now));
            table.AddRow([.. row.Select(Markup.Escape)]);
        }

        context.Out.Write(table);
    }
}
