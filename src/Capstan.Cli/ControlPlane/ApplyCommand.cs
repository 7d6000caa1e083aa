using System.CommandLine;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;

namespace Capstan.Cli.ControlPlane;

/// <summary>
/// <c>capstan apply -f FILE</c>: validates every document locally first, and submits nothing when any
/// is wrong, printing each error as <c>file:line:col: field: message</c>; then creates or updates each.
/// </summary>
public static class ApplyCommand
{
    public static Command Create(CliContext context)
    {
        var file = new Option<string>("--filename", "-f")
        {
            Description = "The YAML file to apply (multi-document; '-' reads stdin).",
            Required = true,
        };
        var command = new Command("apply", "Create or update the resources in a YAML file.") { file };
        Cluster.ClusterOptions.AddTo(command);
        command.SetHandler(context, async (parse, ct) =>
        {
            var path = parse.GetRequiredValue(file);
            var resources = Load(context, path);
            if (resources is null)
            {
                return ExitCodes.UserError;
            }

            await using var backend = await Cluster.ClusterOptions.OpenBackendAsync(context, parse, ct);
            foreach (var resource in resources)
            {
                var result = await backend.Resources.ApplyAsync(resource, ct);
                context.RawOut.WriteLine($"{resource.Kind.ToLowerInvariant()}/{resource.Metadata.Name} {result.Outcome.ToString().ToLowerInvariant()}");
            }

            context.RawOut.Flush();
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The file's resources, or null after printing every error to stderr.</summary>
    internal static IReadOnlyList<Resource>? Load(CliContext context, string path)
    {
        string text;
        try
        {
            text = path == "-" ? Console.In.ReadToEnd() : File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CapstanException.Invalid($"cannot read '{path}': {e.Message}");
        }

        var result = ResourceLoader.Read(text, path == "-" ? "<stdin>" : path);
        var errors = context.Error.Profile.Out.Writer;
        foreach (var note in result.Notes)
        {
            // What a foreign format (a Katib Experiment) became, and what of it did not carry over.
            errors.WriteLine(note.ToString());
        }

        if (result.Errors.Count == 0)
        {
            errors.Flush();
            return result.Resources;
        }

        foreach (var error in result.Errors)
        {
            errors.WriteLine(error.ToString());
        }

        errors.WriteLine($"{result.Errors.Count} error(s) in {path}; nothing was applied.");
        errors.Flush();
        return null;
    }
}
