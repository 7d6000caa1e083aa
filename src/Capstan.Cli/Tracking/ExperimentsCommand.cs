using System.CommandLine;
using Capstan.Core.Tracking;
using Spectre.Console;

namespace Capstan.Cli.Tracking;

/// <summary><c>capstan experiments list|create</c>.</summary>
public static class ExperimentsCommand
{
    public static Command Create(CliContext context)
    {
        var list = new Command("list", "List experiments.");
        var output = Output.CreateOption();
        var all = new Option<bool>("--all") { Description = "Include deleted experiments." };
        list.Add(output);
        list.Add(all);
        list.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var viewType = parse.GetValue(all) ? ViewType.All : ViewType.ActiveOnly;
            var experiments = await ReadAllAsync(backend.Metadata, viewType, ct);
            if (Output.TryWriteData(context, parse.GetValue(output), experiments))
            {
                return ExitCodes.Ok;
            }

            var table = new Table().AddColumns("ID", "Name", "Stage", "Created", "Artifact location");
            foreach (var e in experiments)
            {
                table.AddRow(
                    Markup.Escape(e.ExperimentId),
                    Markup.Escape(e.Name),
                    e.LifecycleStage.ToString(),
                    Formatting.Time(e.CreationTime),
                    Markup.Escape(e.ArtifactLocation));
            }

            context.Out.Write(table);
            return ExitCodes.Ok;
        });

        var create = new Command("create", "Create an experiment; prints its id.");
        var name = new Argument<string>("name") { Description = "The experiment's name." };
        create.Add(name);
        create.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var experiment = await backend.Metadata.CreateExperimentAsync(new NewExperiment(parse.GetRequiredValue(name)), ct);
            context.RawOut.WriteLine(experiment.ExperimentId);
            context.Error.MarkupLineInterpolated($"Created experiment [bold]{experiment.Name}[/] ({experiment.ExperimentId}) in {backend.Location}.");
            return ExitCodes.Ok;
        });

        return new Command("experiments", "Work with experiments.") { list, create };
    }

    internal static async Task<IReadOnlyList<Experiment>> ReadAllAsync(Capstan.Core.Storage.IMetadataStore store, ViewType viewType, CancellationToken cancellationToken)
    {
        var result = new List<Experiment>();
        string? token = null;
        do
        {
            var page = await store.SearchExperimentsAsync(new ExperimentSearch(ViewType: viewType, PageToken: token), cancellationToken);
            result.AddRange(page.Items);
            token = page.NextPageToken;
        }
        while (token is not null);
        return result;
    }
}
