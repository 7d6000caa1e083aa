using System.Text.RegularExpressions;

namespace Capstan.Core.Resources;

/// <summary>Kubernetes' DNS-1123 label rule for object names: it lets a name become a pod, service or host name.</summary>
public static partial class ResourceNames
{
    public const int MaxLength = 63;

    /// <summary>Why <paramref name="name"/> is not a valid name, or null when it is.</summary>
    public static string? Check(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length > MaxLength)
        {
            return $"'{name}' is too long: a name has at most {MaxLength} characters";
        }

        return Dns1123Label().IsMatch(name)
            ? null
            : $"'{name}' is not a valid name: use lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. 'my-job-1')";
    }

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex Dns1123Label();
}
