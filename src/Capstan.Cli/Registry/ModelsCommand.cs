using System.CommandLine;
using Capstan.Core;
using Capstan.Core.Registry;
using Capstan.Core.Storage;
using Spectre.Console;

namespace Capstan.Cli.Registry;

/// <summary><c>capstan models list|get|versions|alias</c>.</summary>
public static class ModelsCommand
{
    public static Command Create(CliContext context) =>
        new("models", "Work with the model registry.") { CreateList(context), CreateGet(context), CreateVersions(context), CreateAlias(context) };

    private static Command CreateList(CliContext context)
    {
        var command = new Command("list", "List registered models.");
        var filter = new Option<string?>("--filter") { Description = "Registry filter, e.g. \"name LIKE 'iris%'\"." };
        var output = Output.CreateOption();
        command.Add(filter);
        command.Add(output);
        command.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var models = new List<RegisteredModel>();
            string? token = null;
            do
            {
                var page = await backend.Metadata.SearchRegisteredModelsAsync(new RegistrySearch(parse.GetValue(filter), PageToken: token), ct);
                models.AddRange(page.Items);
                token = page.NextPageToken;
            }
            while (token is not null);

            if (Output.TryWriteData(context, parse.GetValue(output), models))
            {
                return ExitCodes.Ok;
            }

            var table = new Table().AddColumns("Name", "Latest version", "Aliases", "Updated", "Description");
            foreach (var model in models)
            {
                var latest = model.LatestVersions.Count > 0 ? Formatting.Integer(model.LatestVersions.Max(v => v.Version)) : "-";
                table.AddRow(
                    Markup.Escape(model.Name),
                    latest,
                    Markup.Escape(AliasList(model.Aliases)),
                    Formatting.Time(model.LastUpdatedTimestamp),
                    Markup.Escape(model.Description ?? string.Empty));
            }

            context.Out.Write(table);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command CreateGet(CliContext context)
    {
        var command = new Command("get", "Show a registered model with its versions and aliases.");
        var name = new Argument<string>("name");
        var output = Output.CreateOption();
        command.Add(name);
        command.Add(output);
        command.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var model = await backend.Metadata.GetRegisteredModelAsync(parse.GetRequiredValue(name), ct);
            if (Output.TryWriteData(context, parse.GetValue(output), model))
            {
                return ExitCodes.Ok;
            }

            var info = new Grid().AddColumn().AddColumn();
            info.AddRow("[bold]Model[/]", Markup.Escape(model.Name));
            info.AddRow("[bold]Description[/]", Markup.Escape(model.Description ?? "-"));
            info.AddRow("[bold]Aliases[/]", Markup.Escape(AliasList(model.Aliases) is { Length: > 0 } a ? a : "-"));
            info.AddRow("[bold]Created[/]", Formatting.Time(model.CreationTimestamp));
            info.AddRow("[bold]Updated[/]", Formatting.Time(model.LastUpdatedTimestamp));
            foreach (var tag in model.Tags)
            {
                info.AddRow($"[bold]tags.{Markup.Escape(tag.Key)}[/]", Markup.Escape(tag.Value));
            }

            context.Out.Write(info);
            var versions = await ReadVersionsAsync(backend.Metadata, model.Name, ct);
            context.Out.Write(VersionsTable(versions));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command CreateVersions(CliContext context)
    {
        var command = new Command("versions", "List the versions of a registered model.");
        var name = new Argument<string>("name");
        var output = Output.CreateOption();
        command.Add(name);
        command.Add(output);
        command.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var modelName = parse.GetRequiredValue(name);

            // Resolving the model first makes an unknown name an error rather than an empty list.
            await backend.Metadata.GetRegisteredModelAsync(modelName, ct);
            var versions = await ReadVersionsAsync(backend.Metadata, modelName, ct);
            if (Output.TryWriteData(context, parse.GetValue(output), versions))
            {
                return ExitCodes.Ok;
            }

            context.Out.Write(VersionsTable(versions));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command CreateAlias(CliContext context)
    {
        var command = new Command("alias", "Point an alias (e.g. champion) at a version, or delete it with --delete.");
        var name = new Argument<string>("name");
        var alias = new Argument<string>("alias");
        var version = new Argument<long?>("version") { Arity = ArgumentArity.ZeroOrOne, Description = "The version the alias points at." };
        var delete = new Option<bool>("--delete") { Description = "Delete the alias instead of setting it." };
        command.Add(name);
        command.Add(alias);
        command.Add(version);
        command.Add(delete);
        command.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var modelName = parse.GetRequiredValue(name);
            var aliasName = parse.GetRequiredValue(alias);
            var target = parse.GetValue(version);
            if (parse.GetValue(delete))
            {
                if (target is not null)
                {
                    throw CapstanException.Invalid("Give either a VERSION or --delete, not both.");
                }

                await backend.Metadata.DeleteAliasAsync(modelName, aliasName, ct);
                context.Error.MarkupLineInterpolated($"Deleted alias [bold]{aliasName}[/] of {modelName}.");
                return ExitCodes.Ok;
            }

            if (target is not long v)
            {
                throw CapstanException.Invalid("Give the VERSION the alias should point at, or --delete.");
            }

            await backend.Metadata.SetAliasAsync(modelName, aliasName, v, ct);
            context.Error.MarkupLineInterpolated($"{modelName}@{aliasName} now points at version {v}.");
            return ExitCodes.Ok;
        });
        return command;
    }

    internal static async Task<IReadOnlyList<ModelVersion>> ReadVersionsAsync(IMetadataStore store, string name, CancellationToken cancellationToken)
    {
        var versions = new List<ModelVersion>();
        var filter = $"name = '{name.Replace("'", "''", StringComparison.Ordinal)}'";
        string? token = null;
        do
        {
            var page = await store.SearchModelVersionsAsync(new RegistrySearch(filter, MaxResults: 1000, PageToken: token), cancellationToken);
            versions.AddRange(page.Items);
            token = page.NextPageToken;
        }
        while (token is not null);
        return [.. versions.OrderByDescending(v => v.Version)];
    }

    private static Table VersionsTable(IReadOnlyList<ModelVersion> versions)
    {
        var table = new Table().AddColumns("Version", "Aliases", "Stage", "Status", "Run", "Source", "Created");
        foreach (var v in versions)
        {
            table.AddRow(
                Formatting.Integer(v.Version),
                Markup.Escape(string.Join(", ", v.Aliases)),
                Markup.Escape(v.CurrentStage),
                v.Status.ToString(),
                Markup.Escape(v.RunId ?? "-"),
                Markup.Escape(v.Source),
                Formatting.Time(v.CreationTimestamp));
        }

        return table;
    }

    private static string AliasList(IReadOnlyList<ModelAlias> aliases) =>
        string.Join(", ", aliases.OrderBy(a => a.Alias, StringComparer.Ordinal).Select(a => $"{a.Alias}→v{a.Version}"));
}
