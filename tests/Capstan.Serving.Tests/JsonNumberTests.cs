using System.Globalization;
using System.Text;
using Capstan.Serving.Rest;

namespace Capstan.Serving.Tests;

public sealed class JsonNumberTests
{
    [Fact]
    public void TryParseSingle_RandomFloatsInEveryNotation_EqualsFloatParse()
    {
        var random = new Random(7);
        var fast = 0;
        var total = 0;
        for (var i = 0; i < 200_000; i++)
        {
            var f = (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-12, 12)));
            var text = (i % 4) switch
            {
                0 => f.ToString("R", CultureInfo.InvariantCulture),
                1 => ((double)f).ToString("R", CultureInfo.InvariantCulture), // a float written as a double, as JSON libraries do
                2 => f.ToString("E7", CultureInfo.InvariantCulture),
                _ => random.NextDouble().ToString("F" + random.Next(1, 15), CultureInfo.InvariantCulture),
            };
            total++;
            if (JsonNumber.TryParseSingle(Encoding.ASCII.GetBytes(text), out var parsed))
            {
                fast++;
                Assert.Equal(BitConverter.SingleToInt32Bits(float.Parse(text, CultureInfo.InvariantCulture)), BitConverter.SingleToInt32Bits(parsed));
            }
        }

        // The fast path must carry the usual case (17-digit doubles and tiny exponents defer), or it is not worth having.
        Assert.True(fast > total * 0.8, $"only {fast} of {total} took the fast path");
    }

    [Fact]
    public void TryParseDouble_RandomDoubles_EqualsDoubleParse()
    {
        var random = new Random(8);
        for (var i = 0; i < 100_000; i++)
        {
            var d = (random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-20, 20));
            var text = d.ToString(i % 2 == 0 ? "R" : "G12", CultureInfo.InvariantCulture);
            if (JsonNumber.TryParseDouble(Encoding.ASCII.GetBytes(text), out var parsed))
            {
                Assert.Equal(BitConverter.DoubleToInt64Bits(double.Parse(text, CultureInfo.InvariantCulture)), BitConverter.DoubleToInt64Bits(parsed));
            }
        }
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-0")]
    [InlineData("1")]
    [InlineData("-2.5")]
    [InlineData("0.1")]
    [InlineData("1e10")]
    [InlineData("1E-7")]
    [InlineData("3.4028235e38")]
    [InlineData("0.000000000000000000000000000000000000011754944")]
    public void TryParseSingle_EdgeCases_EqualsFloatParseOrDefers(string text)
    {
        var expected = float.Parse(text, CultureInfo.InvariantCulture);
        if (JsonNumber.TryParseSingle(Encoding.ASCII.GetBytes(text), out var parsed))
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(parsed));
        }
    }

    [Theory]
    [InlineData("1e39")] // past float range
    [InlineData("1e-45")] // subnormal
    [InlineData("12345678901234567890123")] // more than 19 significant digits
    [InlineData("1e400")]
    [InlineData("16777217")] // exactly halfway between two floats
    public void TryParseSingle_OutsideTheExactCase_DefersToTheGeneralParser(string text)
    {
        Assert.False(JsonNumber.TryParseSingle(Encoding.ASCII.GetBytes(text), out _));
    }
}
