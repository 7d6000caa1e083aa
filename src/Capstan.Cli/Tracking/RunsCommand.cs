using System.CommandLine;
using Capstan.Core;
using Capstan.Core.Storage;
using Capstan.Core.Tracking;
using Spectre.Console;

namespace Capstan.Cli.Tracking;

/// <summary><c>capstan runs list|get|compare</c>.</summary>
public static class RunsCommand
{
    private const int KeyColumns = 4;

    public static Command Create(CliContext context) =>
        new("runs", "Work with runs.") { CreateList(context), CreateGet(context), CreateCompare(context) };

    private static Command CreateList(CliContext context)
    {
        var command = new Command("list", "List runs, newest first.");
        var experiment = new Option<string?>("--experiment", "-e") { Description = "Experiment name or id (default: all active experiments)." };
        var filter = new Option<string?>("--filter") { Description = "MLflow search filter, e.g. \"metrics.accuracy > 0.9 and params.l2 = '0.01'\"." };
        var orderBy = new Option<string[]>("--order-by") { Description = "Order clause, e.g. \"metrics.accuracy DESC\"; repeatable.", AllowMultipleArgumentsPerToken = false };
        var max = new Option<int>("--max") { Description = "Most runs to show.", DefaultValueFactory = _ => 100 };
        var output = Output.CreateOption();
        command.Add(experiment);
        command.Add(filter);
        command.Add(orderBy);
        command.Add(max);
        command.Add(output);
        command.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var limit = parse.GetValue(max);
            if (limit <= 0)
            {
                throw CapstanException.Invalid("--max must be positive.");
            }

            var experimentIds = await ResolveExperimentIdsAsync(backend.Metadata, parse.GetValue(experiment), ct);
            var orders = parse.GetValue(orderBy) is { Length: > 0 } given ? given : null;
            var runs = new List<Run>();
            string? token = null;
            if (experimentIds.Count > 0)
            {
                do
                {
                    var page = await backend.Metadata.SearchRunsAsync(
                        new RunSearch(experimentIds, parse.GetValue(filter), MaxResults: Math.Min(limit - runs.Count, 1000), OrderBy: orders, PageToken: token), ct);
                    runs.AddRange(page.Items);
                    token = page.NextPageToken;
                }
                while (token is not null && runs.Count < limit);
            }

            if (Output.TryWriteData(context, parse.GetValue(output), runs))
            {
                return ExitCodes.Ok;
            }

            context.Out.Write(RunsTable(runs));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command CreateGet(CliContext context)
    {
        var command = new Command("get", "Show one run: info, params, latest metrics, tags and inputs.");
        var runId = new Argument<string>("run-id");
        var output = Output.CreateOption();
        command.Add(runId);
        command.Add(output);
        command.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var run = await backend.Metadata.GetRunAsync(parse.GetRequiredValue(runId), ct);
            if (Output.TryWriteData(context, parse.GetValue(output), run))
            {
                return ExitCodes.Ok;
            }

            var info = new Grid().AddColumn().AddColumn();
            info.AddRow("[bold]Run[/]", Markup.Escape(run.Info.RunId));
            info.AddRow("[bold]Name[/]", Markup.Escape(run.Info.RunName));
            info.AddRow("[bold]Experiment[/]", Markup.Escape(run.Info.ExperimentId));
            info.AddRow("[bold]Status[/]", StatusMarkup(run.Info.Status));
            info.AddRow("[bold]Started[/]", Formatting.Time(run.Info.StartTime));
            info.AddRow("[bold]Ended[/]", Formatting.Time(run.Info.EndTime));
            info.AddRow("[bold]User[/]", Markup.Escape(run.Info.UserId));
            info.AddRow("[bold]Artifacts[/]", Markup.Escape(run.Info.ArtifactUri));
            context.Out.Write(info);

            context.Out.Write(KeyValueTable("Param", "Value", run.Data.Params.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (p.Key, p.Value))));
            var metrics = new Table().AddColumns("Metric", "Latest", "Step", "Time");
            foreach (var m in run.Data.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal))
            {
                metrics.AddRow(Markup.Escape(m.Key), Formatting.Number(m.Value), Formatting.Integer(m.Step), Formatting.Time(m.Timestamp));
            }

            context.Out.Write(metrics);
            context.Out.Write(KeyValueTable("Tag", "Value", run.Data.Tags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => (t.Key, t.Value))));
            if (run.Inputs.Count > 0)
            {
                var inputs = new Table().AddColumns("Dataset", "Digest", "Source");
                foreach (var input in run.Inputs)
                {
                    inputs.AddRow(Markup.Escape(input.Dataset.Name), Markup.Escape(input.Dataset.Digest), Markup.Escape(input.Dataset.Source));
                }

                context.Out.Write(inputs);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command CreateCompare(CliContext context)
    {
        var command = new Command("compare", "Params and latest metrics of runs side by side; differing params are highlighted.");
        var runIds = new Argument<string[]>("run-ids") { Arity = new ArgumentArity(2, 100), Description = "Two or more run ids." };
        var output = Output.CreateOption();
        command.Add(runIds);
        command.Add(output);
        command.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var runs = new List<Run>();
            foreach (var id in parse.GetRequiredValue(runIds))
            {
                runs.Add(await backend.Metadata.GetRunAsync(id, ct));
            }

            if (Output.TryWriteData(context, parse.GetValue(output), runs))
            {
                return ExitCodes.Ok;
            }

            context.Out.Write(CompareTable(runs));
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Runs with their most common metrics and params as columns.</summary>
    internal static Table RunsTable(IReadOnlyList<Run> runs)
    {
        var metricKeys = TopKeys(runs.SelectMany(r => r.Data.Metrics.Select(m => m.Key)));
        var paramKeys = TopKeys(runs.SelectMany(r => r.Data.Params.Select(p => p.Key)));
        var table = new Table().AddColumn(new TableColumn("Run ID").NoWrap()).AddColumns("Name", "Status", "Started");
        foreach (var key in metricKeys)
        {
            table.AddColumn(new TableColumn(Markup.Escape(key)).RightAligned());
        }

        foreach (var key in paramKeys)
        {
            table.AddColumn(new TableColumn(Markup.Escape(key)));
        }

        foreach (var run in runs)
        {
            var cells = new List<string>
            {
                Markup.Escape(run.Info.RunId),
                Markup.Escape(run.Info.RunName),
                StatusMarkup(run.Info.Status),
                Formatting.Time(run.Info.StartTime),
            };
            cells.AddRange(metricKeys.Select(k => run.Data.Metrics.FirstOrDefault(m => m.Key == k) is { Key: not null } m ? Formatting.Number(m.Value) : "-"));
            cells.AddRange(paramKeys.Select(k => Markup.Escape(run.Data.Params.FirstOrDefault(p => p.Key == k)?.Value ?? "-")));
            table.AddRow([.. cells]);
        }

        return table;
    }

    internal static Table CompareTable(IReadOnlyList<Run> runs)
    {
        var table = new Table().AddColumn("");
        foreach (var run in runs)
        {
            table.AddColumn(new TableColumn($"[bold]{Markup.Escape(run.Info.RunName)}[/]\n{Markup.Escape(run.Info.RunId)}"));
        }

        table.AddRow(["status", .. runs.Select(r => StatusMarkup(r.Info.Status))]);
        foreach (var key in runs.SelectMany(r => r.Data.Params.Select(p => p.Key)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            var values = runs.Select(r => r.Data.Params.FirstOrDefault(p => p.Key == key)?.Value).ToList();
            var differs = values.Distinct(StringComparer.Ordinal).Count() > 1;
            var label = differs ? $"[bold yellow]params.{Markup.Escape(key)} *[/]" : $"params.{Markup.Escape(key)}";
            table.AddRow([label, .. values.Select(v => v is null ? "-" : differs ? $"[yellow]{Markup.Escape(v)}[/]" : Markup.Escape(v))]);
        }

        foreach (var key in runs.SelectMany(r => r.Data.Metrics.Select(m => m.Key)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            var values = runs.Select(r => r.Data.Metrics.Where(m => m.Key == key).Select(m => (double?)m.Value).FirstOrDefault());
            table.AddRow([$"metrics.{Markup.Escape(key)}", .. values.Select(v => v is double d ? Formatting.Number(d) : "-")]);
        }

        return table;
    }

    /// <summary>An experiment given by name or id; all active experiments when none is given.</summary>
    internal static async Task<IReadOnlyList<string>> ResolveExperimentIdsAsync(IMetadataStore store, string? nameOrId, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(nameOrId))
        {
            var all = await ExperimentsCommand.ReadAllAsync(store, ViewType.ActiveOnly, cancellationToken);
            return [.. all.Select(e => e.ExperimentId)];
        }

        try
        {
            return [(await store.GetExperimentByNameAsync(nameOrId, cancellationToken)).ExperimentId];
        }
        catch (CapstanException byName) when (byName.Code == ErrorCode.ResourceDoesNotExist)
        {
            try
            {
                return [(await store.GetExperimentAsync(nameOrId, cancellationToken)).ExperimentId];
            }
            catch (CapstanException) when (!cancellationToken.IsCancellationRequested)
            {
                throw CapstanException.NotFound($"No experiment is named or has the id '{nameOrId}'.");
            }
        }
    }

    private static List<string> TopKeys(IEnumerable<string> keys) =>
        [.. keys.GroupBy(k => k, StringComparer.Ordinal)
            .OrderByDescending(g => g.Count())
            .ThenBy(g => g.Key, StringComparer.Ordinal)
            .Take(KeyColumns)
            .Select(g => g.Key)
            .Order(StringComparer.Ordinal)];

    private static Table KeyValueTable(string keyTitle, string valueTitle, IEnumerable<(string Key, string Value)> rows)
    {
        var table = new Table().AddColumns(keyTitle, valueTitle);
        foreach (var (key, value) in rows)
        {
            table.AddRow(Markup.Escape(key), Markup.Escape(value));
        }

        return table;
    }

    internal static string StatusMarkup(RunStatus status) => status switch
    {
        RunStatus.Finished => "[green]FINISHED[/]",
        RunStatus.Failed => "[red]FAILED[/]",
        RunStatus.Killed => "[red]KILLED[/]",
        RunStatus.Running => "[blue]RUNNING[/]",
        _ => status.ToString().ToUpperInvariant(),
    };
}
