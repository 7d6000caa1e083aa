using System.Globalization;
using System.Security.Cryptography;
using Microsoft.ML.Data;

namespace Capstan.Cli.Quickstart;

/// <summary>One flower of the Iris data set.</summary>
public sealed class IrisFlower
{
    [LoadColumn(0)]
    public float SepalLength { get; set; }

    [LoadColumn(1)]
    public float SepalWidth { get; set; }

    [LoadColumn(2)]
    public float PetalLength { get; set; }

    [LoadColumn(3)]
    public float PetalWidth { get; set; }

    [LoadColumn(4)]
    public string Species { get; set; } = string.Empty;
}

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

    /// <summary>Lowercase hex SHA-256 of the CSV bytes.</summary>
    public static string Sha256(byte[] csv) => Convert.ToHexStringLower(SHA256.HashData(csv));

    /// <summary>
    /// The data set's identity in the run's inputs: the first 32 hex digits (128 bits) of the SHA-256,
    /// as MLflow caps a dataset digest at 36 characters; the full hash goes in the profile.
    /// </summary>
    public static string Digest(byte[] csv) => Sha256(csv)[..32];

    public static IReadOnlyList<IrisFlower> Parse(byte[] csv)
    {
        using var reader = new StreamReader(new MemoryStream(csv));
        var flowers = new List<IrisFlower>();
        reader.ReadLine(); // header
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }

            var cells = line.Split(',');
            flowers.Add(new IrisFlower
            {
                SepalLength = float.Parse(cells[0], CultureInfo.InvariantCulture),
                SepalWidth = float.Parse(cells[1], CultureInfo.InvariantCulture),
                PetalLength = float.Parse(cells[2], CultureInfo.InvariantCulture),
                PetalWidth = float.Parse(cells[3], CultureInfo.InvariantCulture),
                Species = cells[4],
            });
        }

        return flowers;
    }
}
