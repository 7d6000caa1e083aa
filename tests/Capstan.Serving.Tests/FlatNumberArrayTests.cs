using System.Globalization;
using System.Text;
using Capstan.Serving.Inference;
using Capstan.Serving.Rest;

namespace Capstan.Serving.Tests;

/// <summary>
/// The one-pass reader for flat FP32/FP64 data must decode exactly what the general Utf8JsonReader
/// path decodes (nested data always takes the general path), and leave every malformed or unusual
/// array to it, so errors read as before.
/// </summary>
public sealed class FlatNumberArrayTests
{
    [Theory]
    [InlineData("FP32", "0.84147096, -0.7568025 ,1E-05,\n\t-0, 3.4028235E+3, 0.1e1, 7", true)]
    [InlineData("FP64", "0.1,-2.5e-3, 1.5E+22 ,0,-0.0, 9007199254740991, 3", true)]
    [InlineData("FP32", "1, 3.4028235E+38, 12345678901234567890123, 1.00000005960464477539062, 1e39, 1e-50", false)]
    [InlineData("FP64", "1, -2.5e-300, 1.7976931348623157E+308, 5e-324, 123456789012345678901234567890", false)]
    public void Read_FlatData_EqualsTheNestedGeneralPath(string datatype, string numbers, bool fastPath)
    {
        var count = numbers.Split(',').Length;
        var nested = string.Join(",", numbers.Split(',').Select(n => $"[{n}]"));
        var type = datatype == "FP32" ? Models.OipDatatype.Fp32 : Models.OipDatatype.Fp64;
        var array = Encoding.UTF8.GetBytes($"[{numbers}]");
        var taken = FlatNumberArray.TryRead(array, 0, type, new byte[count * 8], count, out var written, out var close);
        Assert.Equal(fastPath, taken);
        if (fastPath)
        {
            Assert.Equal(count, written);
            Assert.Equal(array.Length - 1, close);
        }

        // "data" between other keys and a second input after it: the reader must resume where the array ends.
        static string Body(string datatype, int count, string data) =>
            $$$"""{"id":"r","inputs":[{"name":"a","shape":[{{{count}}},1],"datatype":"{{{datatype}}}","data":{{{data}}},"parameters":{"k":1}},{"name":"b","datatype":"{{{datatype}}}","data":[1,2],"shape":[2]}],"outputs":[{"name":"y"}]}""";
        using var flat = OipJsonRequestReader.Read(Encoding.UTF8.GetBytes(Body(datatype, count, $"[{numbers}]")), []);
        using var general = OipJsonRequestReader.Read(Encoding.UTF8.GetBytes(Body(datatype, count, $"[{nested}]")), []);

        Assert.Equal("r", flat.Id);
        Assert.Equal(["a", "b"], flat.Inputs.Select(i => i.Name));
        Assert.Equal("y", Assert.Single(flat.Outputs).Name);
        Assert.Equal(general.Inputs[0].Bytes.ToArray(), flat.Inputs[0].Bytes.ToArray());
        Assert.Equal(general.Inputs[1].Bytes.ToArray(), flat.Inputs[1].Bytes.ToArray());
        var first = numbers.Split(',')[0].Trim();
        var expected = datatype == "FP32"
            ? BitConverter.GetBytes(float.Parse(first, CultureInfo.InvariantCulture))
            : BitConverter.GetBytes(double.Parse(first, CultureInfo.InvariantCulture));
        Assert.Equal(expected, flat.Inputs[0].Bytes[..expected.Length].ToArray());
    }

    [Fact]
    public void TryRead_RandomNumbersInEveryNotation_EqualsFloatAndDoubleParse()
    {
        var random = new Random(11);
        var fast = 0;
        const int Total = 50_000;
        var destination = new byte[8];
        for (var i = 0; i < Total; i++)
        {
            var f = (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-12, 12)));
            var text = (i % 3) switch
            {
                0 => f.ToString("R", CultureInfo.InvariantCulture),
                1 => ((double)f).ToString("R", CultureInfo.InvariantCulture),
                _ => f.ToString("E7", CultureInfo.InvariantCulture),
            };
            var array = Encoding.ASCII.GetBytes($"[ {text} ]");
            if (FlatNumberArray.TryRead(array, 0, Models.OipDatatype.Fp32, destination, 1, out var written, out _))
            {
                fast++;
                Assert.Equal(1, written);
                Assert.Equal(BitConverter.SingleToInt32Bits(float.Parse(text, CultureInfo.InvariantCulture)), BitConverter.ToInt32(destination));
            }

            if (FlatNumberArray.TryRead(array, 0, Models.OipDatatype.Fp64, destination, 1, out _, out _))
            {
                Assert.Equal(BitConverter.DoubleToInt64Bits(double.Parse(text, CultureInfo.InvariantCulture)), BitConverter.ToInt64(destination));
            }
        }

        Assert.True(fast > Total * 0.8, $"only {fast} of {Total} took the fast path");
    }

    [Theory]
    [InlineData("[1,2,]", "Malformed JSON")]
    [InlineData("[1,,2]", "Malformed JSON")]
    [InlineData("[01,2]", "Malformed JSON")]
    [InlineData("[1.,2]", "Malformed JSON")]
    [InlineData("[-,2]", "Malformed JSON")]
    [InlineData("[1e,2]", "Malformed JSON")]
    [InlineData("[1 2]", "Malformed JSON")]
    [InlineData("[1,2", "Malformed JSON")]
    [InlineData("[1,\"2\"]", "element 1 is not a valid FP32")]
    [InlineData("[1,2,3]", "more than the 2 elements")]
    [InlineData("[1]", "has 1 elements")]
    public void Read_MalformedOrWrongFlatData_FailsAsTheGeneralPathDoes(string data, string expected)
    {
        var json = $$"""{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":{{data}}}]}""";
        var error = Assert.Throws<InferenceException>(() => OipJsonRequestReader.Read(Encoding.UTF8.GetBytes(json), []));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
