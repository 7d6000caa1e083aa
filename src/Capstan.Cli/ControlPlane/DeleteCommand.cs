using System.CommandLine;

namespace Capstan.Cli.ControlPlane;

/// <summary><c>capstan delete KIND/NAME</c> or <c>capstan delete KIND NAME</c>.</summary>
public static class DeleteCommand
{
    public static Command Create(CliContext context)
    {
        var kindArgument = new Argument<string>("kind") { Description = "KIND/NAME, or the kind followed by the name." };
        var nameArgument = new Argument<string?>("name") { Description = "The name, when the kind is given alone.", Arity = ArgumentArity.ZeroOrOne };
        var ns = ResourceArguments.CreateNamespaceOption();
        var command = new Command("delete", "Delete a resource; its controller stops what it runs.") { kindArgument, nameArgument, ns };
        Cluster.ClusterOptions.AddTo(command);
        command.SetBackendHandler(context, async (parse, backend, ct) =>
        {
            var (kind, name) = ResourceArguments.KindAndName(parse.GetRequiredValue(kindArgument), parse.GetValue(nameArgument));
            if (name is null)
            {
                throw Core.CapstanException.Invalid("name the resource to delete: KIND/NAME or KIND NAME");
            }

            await backend.Resources.DeleteAsync(kind, parse.GetValue(ns)!, name, ct);
            context.RawOut.WriteLine($"{kind.ToLowerInvariant()} \"{name}\" deleted");
            context.RawOut.Flush();
            return ExitCodes.Ok;
        });
        return command;
    }
}
