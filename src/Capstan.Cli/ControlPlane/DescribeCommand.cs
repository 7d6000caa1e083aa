using System.CommandLine;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;
using Spectre.Console;

namespace Capstan.Cli.ControlPlane;

/// <summary>
/// <c>capstan describe KIND NAME</c>: what was asked (spec), what is (status), the conditions and the
/// events, so a user can see why a job waits or failed.
/// </summary>
public static class DescribeCommand
{
    private const int LabelWidth = 14;

    public static Command Create(CliContext context)
    {
        var kindArgument = new Argument<string>("kind") { Description = "KIND/NAME, or the kind followed by the name." };
        var nameArgument = new Argument<string?>("name") { Description = "The name, when the kind is given alone.", Arity = ArgumentArity.ZeroOrOne };
        var ns = ResourceArguments.CreateNamespaceOption();
        var command = new Command("describe", "Show a resource's spec, status, conditions and events.") { kindArgument, nameArgument, ns };
        Cluster.ClusterOptions.AddTo(command);
        command.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var (kind, name) = ResourceArguments.KindAndName(parse.GetRequiredValue(kindArgument), parse.GetValue(nameArgument));
            if (name is null)
            {
                throw Core.CapstanException.Invalid("name the resource to describe: KIND/NAME or KIND NAME");
            }

            var @namespace = parse.GetValue(ns)!;
            var resource = await backend.Resources.GetAsync(kind, @namespace, name, ct);
            var events = await backend.Resources.ListEventsAsync(kind, @namespace, name, ct);
            Write(context, resource, events, DateTimeOffset.UtcNow);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static void Write(CliContext context, Resource resource, IReadOnlyList<ResourceEvent> events, DateTimeOffset now)
    {
        var output = context.Out;
        var metadata = resource.Metadata;
        Field(output, "Name:", metadata.Name);
        Field(output, "Namespace:", metadata.Namespace);
        Field(output, "Kind:", resource.Kind);
        Field(output, "Labels:", Pairs(metadata.Labels));
        Field(output, "Annotations:", Pairs(metadata.Annotations));
        Field(output, "Created:", $"{ResourceFormatting.Time(metadata.CreationTimestamp)} ({ResourceFormatting.Age(metadata.CreationTimestamp, now)} ago)");
        Field(output, "Generation:", $"{metadata.Generation} (status observed {resource.CommonStatus?.ObservedGeneration?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none yet"})");

        output.WriteLine("Spec:");
        if (resource is TrainJob job)
        {
            WriteTrainJobSpec(output, job.Spec);
        }
        else
        {
            output.WriteLine("  (see capstan get -o yaml)");
        }

        output.WriteLine("Status:");
        var status = resource.CommonStatus;
        if (status is null)
        {
            output.WriteLine("  <none> (no controller has picked it up yet)");
        }
        else
        {
            Field(output, "  Phase:", ResourceFormatting.Phase(resource));
            if (resource is TrainJob { Status: { } jobStatus })
            {
                Field(output, "  Attempts:", jobStatus.Attempts?.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Field(output, "  Started:", jobStatus.StartTime is null ? null : ResourceFormatting.Time(jobStatus.StartTime));
                Field(output, "  Completed:", jobStatus.CompletionTime is null ? null : ResourceFormatting.Time(jobStatus.CompletionTime));
                Field(output, "  Run:", jobStatus.RunId);
            }

            Field(output, "  Message:", status.Message);
        }

        output.WriteLine("Conditions:");
        if (status?.Conditions is { Count: > 0 } conditions)
        {
            var table = new Table().Border(TableBorder.None).AddColumns("  TYPE", "STATUS", "REASON", "MESSAGE", "LAST TRANSITION");
            foreach (var condition in conditions)
            {
                table.AddRow(
                    Markup.Escape("  " + condition.Type),
                    condition.Status.ToString(),
                    Markup.Escape(condition.Reason ?? "-"),
                    Markup.Escape(condition.Message ?? ""),
                    ResourceFormatting.Time(condition.LastTransitionTime));
            }

            output.Write(table);
        }
        else
        {
            output.WriteLine("  <none>");
        }

        output.WriteLine("Events:");
        if (events.Count == 0)
        {
            output.WriteLine("  <none>");
            return;
        }

        var eventTable = new Table().Border(TableBorder.None).AddColumns("  TYPE", "REASON", "AGE", "COUNT", "MESSAGE");
        foreach (var e in events)
        {
            var age = e.Count > 1
                ? $"{ResourceFormatting.Age(e.LastTimestamp, now)} (x{e.Count} over {ResourceFormatting.Age(e.FirstTimestamp, now)})"
                : ResourceFormatting.Age(e.LastTimestamp, now);
            eventTable.AddRow(
                "  " + e.Type,
                Markup.Escape(e.Reason),
                Markup.Escape(age),
                e.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Markup.Escape(e.Message));
        }

        output.Write(eventTable);
    }

    private static void WriteTrainJobSpec(IAnsiConsole output, TrainJobSpec spec)
    {
        Field(output, "  Image:", spec.Image);
        Field(output, "  Command:", spec.Command is null ? null : string.Join(' ', spec.Command));
        Field(output, "  Args:", spec.Args is null ? null : string.Join(' ', spec.Args));
        Field(output, "  Params:", Pairs(spec.Params));
        Field(output, "  Replicas:", $"{spec.Replicas} (nprocPerNode {spec.NprocPerNode})");
        Field(output, "  Restart:", $"{spec.RestartPolicy} (backoffLimit {spec.BackoffLimit})");
        Field(output, "  Deadline:", spec.ActiveDeadlineSeconds is { } deadline ? $"{deadline}s" : null);
        Field(output, "  Priority:", spec.Priority?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Field(output, "  Experiment:", spec.Experiment);
        if (spec.Resources is { } resources)
        {
            Field(output, "  Requests:", Pairs(resources.Requests?.ToDictionary(r => r.Key, r => r.Value.ToString())));
            Field(output, "  Limits:", Pairs(resources.Limits?.ToDictionary(r => r.Key, r => r.Value.ToString())));
        }

        Field(output, "  Model:", spec.Outputs?.Model?.Register is { } register
            ? $"{spec.Outputs.Model.Path} → {register.Model}{(register.Alias is null ? "" : "@" + register.Alias)}"
            : spec.Outputs?.Model?.Path);
    }

    private static void Field(IAnsiConsole output, string label, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            output.WriteLine(label.PadRight(LabelWidth) + value);
        }
    }

    private static string? Pairs<TValue>(IEnumerable<KeyValuePair<string, TValue>>? pairs) =>
        pairs is null ? null : string.Join(", ", pairs.Select(p => $"{p.Key}={p.Value}"));
}
