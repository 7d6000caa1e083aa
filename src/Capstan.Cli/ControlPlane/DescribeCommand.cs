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
        else if (resource is TuningExperiment experiment)
        {
            WriteExperimentSpec(output, experiment.Spec);
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

            if (resource is TuningExperiment { Status: { } experimentStatus } tuning)
            {
                Field(output, "  Trials:", $"{experimentStatus.Trials ?? 0} ({experimentStatus.TrialsSucceeded ?? 0} succeeded, {experimentStatus.TrialsRunning ?? 0} running, {experimentStatus.TrialsPending ?? 0} pending, {experimentStatus.TrialsFailed ?? 0} failed, {experimentStatus.TrialsEarlyStopped ?? 0} early stopped, {experimentStatus.TrialsKilled ?? 0} killed)");
                Field(output, "  Best trial:", experimentStatus.CurrentOptimalTrial is { } best
                    ? $"{best.Name} ({ExperimentView.Parameters(best)}): {string.Join(", ", ExperimentView.Objectives(tuning.Spec).Select(o => $"{o.Metric}={ExperimentView.Number(ExperimentView.Value(tuning, best, o.Metric))}"))}"
                    : null);
                Field(output, "  Pareto front:", experimentStatus.ParetoFront is { Count: > 0 } front ? string.Join(", ", front.Select(t => t.Name)) : null);
                Field(output, "  Started:", experimentStatus.StartTime is null ? null : ResourceFormatting.Time(experimentStatus.StartTime));
                Field(output, "  Completed:", experimentStatus.CompletionTime is null ? null : ResourceFormatting.Time(experimentStatus.CompletionTime));
                Field(output, "  Parent run:", experimentStatus.RunId);
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

    private static void WriteExperimentSpec(IAnsiConsole output, ExperimentSpec spec)
    {
        Field(output, "  Objective:", string.Join(", ", ExperimentView.Objectives(spec).Select(o => $"{o.Type.ToString().ToLowerInvariant()} {o.Metric}"))
            + (spec.Objective?.Goal is { } goal ? $" (goal {ExperimentView.Number(goal)})" : ""));
        Field(output, "  Algorithm:", spec.Algorithm?.AlgorithmName + (spec.Algorithm?.AlgorithmSettings is { Count: > 0 } settings ? $" ({string.Join(", ", settings.Select(s => $"{s.Name}={s.Value}"))})" : ""));
        foreach (var parameter in spec.Parameters ?? [])
        {
            var space = parameter.FeasibleSpace;
            var range = space?.List is { } list ? $"[{string.Join(", ", list)}]" : $"{space?.Min}..{space?.Max}{(space?.Step is { } step ? $" step {step}" : "")}{(space?.Distribution is { } d and not Distribution.Uniform ? $" {d}" : "")}";
            Field(output, "  Parameter:", $"{parameter.Name} ({parameter.ParameterType?.ToString().ToLowerInvariant()}) {range}");
        }

        Field(output, "  Trials:", $"max {spec.MaxTrialCount?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}, {spec.ParallelTrialCount} at once, maxFailed {spec.MaxFailedTrialCount?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}");
        Field(output, "  Early stop:", spec.EarlyStopping is { } early ? $"{early.AlgorithmName} ({string.Join(", ", (early.AlgorithmSettings ?? []).Select(s => $"{s.Name}={s.Value}"))})" : null);
        Field(output, "  Trial cmd:", spec.TrialTemplate?.TrialSpec?.Command is { } command ? string.Join(' ', command.Concat(spec.TrialTemplate.TrialSpec.Args ?? [])) : spec.TrialTemplate?.TrialSpec?.Image);
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
