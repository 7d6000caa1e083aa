using k8s.Models;

namespace Capstan.Core.Resources;

/// <summary>Kubernetes resource quantities (<c>500m</c>, <c>2</c>, <c>1.5Gi</c>), parsed by the Kubernetes client's own rules.</summary>
public static class ResourceQuantities
{
    /// <summary>The quantity, or null when the text is not one; negative quantities are refused as Kubernetes does for requests and limits.</summary>
    public static ResourceQuantity? Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0 || text.StartsWith('-') || char.IsWhiteSpace(text[0]) || char.IsWhiteSpace(text[^1]))
        {
            return null;
        }

        try
        {
            return new ResourceQuantity(text);
        }
        catch (FormatException)
        {
            return null;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    public static string Problem(string text) => text.StartsWith('-')
        ? $"'{text}' is negative: a quantity must be 0 or more"
        : $"'{text}' is not a valid quantity (examples: 500m, 2, 1.5Gi)";
}
