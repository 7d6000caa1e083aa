using System.Globalization;
using System.Text;

namespace Capstan.Training.Tests;

/// <summary>The data sets the tests train on: the bundled Iris CSV and small generated ones.</summary>
internal static class DataFiles
{
    public static string Iris => Path.Combine(AppContext.BaseDirectory, "Data", "iris.csv");

    /// <summary>
    /// y = 3·x1 − 2·x2 + (city offset) + small noise, with a categorical city column; deterministic by seed.
    /// </summary>
    public static string WriteRegression(string directory, int rows = 300, int seed = 7)
    {
        var random = new Random(seed);
        string[] cities = ["lisbon", "oslo", "quito"];
        var csv = new StringBuilder("x1,x2,city,y\n");
        for (var i = 0; i < rows; i++)
        {
            var x1 = random.NextDouble() * 10;
            var x2 = random.NextDouble() * 5;
            var city = cities[random.Next(cities.Length)];
            var offset = city switch { "lisbon" => 5.0, "oslo" => -5.0, _ => 0.0 };
            var y = (3 * x1) - (2 * x2) + offset + ((random.NextDouble() - 0.5) * 0.5);
            csv.Append(CultureInfo.InvariantCulture, $"{x1:F4},{x2:F4},{city},{y:F4}\n");
        }

        var path = Path.Combine(directory, "regression.csv");
        File.WriteAllText(path, csv.ToString());
        return path;
    }

    /// <summary>approved = yes when income − 2·debt + noise > 20; a categorical region column; deterministic by seed.</summary>
    public static string WriteBinary(string directory, int rows = 400, int seed = 11)
    {
        var random = new Random(seed);
        string[] regions = ["north", "south"];
        var csv = new StringBuilder("income,debt,region,approved\n");
        for (var i = 0; i < rows; i++)
        {
            var income = random.NextDouble() * 60;
            var debt = random.NextDouble() * 20;
            var region = regions[random.Next(regions.Length)];
            var score = income - (2 * debt) + (region == "north" ? 3 : -3) + ((random.NextDouble() - 0.5) * 4);
            csv.Append(CultureInfo.InvariantCulture, $"{income:F3},{debt:F3},{region},{(score > 20 ? "yes" : "no")}\n");
        }

        var path = Path.Combine(directory, "binary.csv");
        File.WriteAllText(path, csv.ToString());
        return path;
    }
}
