namespace Capstan.Cli.Quickstart;

/// <summary>The Iris CSV embedded in this assembly (see Quickstart/Data/README.md for its origin).</summary>
public static class IrisData
{
    public const string ResourceName = "Capstan.Cli.Quickstart.Data.iris.csv";

    public static byte[] ReadCsv()
    {
        using var stream = typeof(IrisData).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded resource {ResourceName} is missing from the build.");
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }
}
