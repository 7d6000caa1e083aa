using System.Globalization;

namespace Capstan.Cli;

/// <summary>How values read in tables.</summary>
internal static class Formatting
{
    public static string Time(long? unixMilliseconds) =>
        unixMilliseconds is long ms and > 0
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)
            : "-";

    public static string Number(double value) => value.ToString("G6", CultureInfo.InvariantCulture);

    public static string Integer(long value) => value.ToString(CultureInfo.InvariantCulture);
}
