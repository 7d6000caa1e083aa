using System.CommandLine;
using Capstan.Core;
using Capstan.Core.ControlPlane;
using Capstan.Core.Resources;

namespace Capstan.Cli.ControlPlane;

/// <summary>The options and argument forms the resource commands share, as kubectl spells them.</summary>
internal static class ResourceArguments
{
    public static Option<string> CreateNamespaceOption() => new("--namespace", "-n")
    {
        Description = "The namespace (project) of the resource.",
        DefaultValueFactory = _ => ResourceMetadata.DefaultNamespace,
    };

    /// <summary><c>KIND/NAME</c> in one argument, or <c>KIND</c> and <c>NAME</c> in two; the kind by singular, plural or short name.</summary>
    public static (string Kind, string? Name) KindAndName(string first, string? second)
    {
        var slash = first.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            if (second is not null)
            {
                throw CapstanException.Invalid($"there is no need to give a name after '{first}'; use either KIND/NAME or KIND NAME");
            }

            return (KindNames.Require(first[..slash]), first[(slash + 1)..]);
        }

        return (KindNames.Require(first), second);
    }
}
