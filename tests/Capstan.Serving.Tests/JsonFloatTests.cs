using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Capstan.Serving.Inference;
using Capstan.Serving.Models;
using Capstan.Serving.Rest;

namespace Capstan.Serving.Tests;

/// <summary>
/// The FP32 output writer must produce, byte for byte, what Utf8JsonWriter writes for each float, so a
/// client sees the same response text as before; it may only decline (the general path then writes it).
/// </summary>
public sealed class JsonFloatTests
{
    [Fact]
    public void TryFormat_EdgeValuesAndRandomBitPatterns_EqualsUtf8JsonWriter()
    {
        float[] edges =
        [
            0f, -0f, 1f, 0.1f, 0.5f, 2.5f, 100f, 1e-5f, 1e-4f, 0.001f, 9.99999e-5f, 0.00012345f, 1.2345e-5f,
            1e7f, 12345678f, 16777216f, 1e8f, 123456789f, 999999999f, 1e9f, 1e10f, 1e21f, 1e22f, 1e-13f, 1e-14f,
            float.MaxValue, float.MinValue, float.Epsilon, 1.17549435e-38f,
        ];
        var values = new List<float>();
        foreach (var edge in edges)
        {
            values.AddRange([edge, -edge, BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(edge) + 1)]);
        }

        for (var e = -45; e <= 38; e++)
        {
            var power = float.Parse($"1e{e}", CultureInfo.InvariantCulture);
            var bits = BitConverter.SingleToInt32Bits(power);
            values.AddRange([power, BitConverter.Int32BitsToSingle(bits - 1), BitConverter.Int32BitsToSingle(bits + 1)]);
        }

        var random = new Random(3);
        for (var i = 0; i < 200_000; i++)
        {
            values.Add(BitConverter.Int32BitsToSingle(random.Next() | (random.Next(2) << 31)));
            values.Add((float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-8, 8))));
            values.Add((float)Math.Round((random.NextDouble() - 0.5) * 1000, random.Next(0, 5)));
        }

        var fast = 0;
        var destination = new byte[JsonFloat.MaxLength];
        foreach (var value in values.Where(float.IsFinite))
        {
            if (JsonFloat.TryFormat(value, destination, out var written))
            {
                fast++;
                Assert.Equal(Utf8JsonWriterText(value), Encoding.ASCII.GetString(destination, 0, written));
            }
        }

        // Nearly every value in the range model outputs live in takes the fast path (it declines a candidate
        // exactly halfway between two floats, which only the general path can round).
        Assert.True(fast > values.Count / 2, $"only {fast} of {values.Count} took the fast path");
        var inRange = values.Where(v => v != 0 && Math.Abs(v) is > 1e-12f and < 1e21f).ToList();
        var declined = inRange.Count(v => !JsonFloat.TryFormat(v, destination, out _));
        Assert.True(declined < inRange.Count / 100, $"{declined} of {inRange.Count} in-range values declined");
    }

    [Fact]
    public void Write_Fp32Output_IsTheSameJsonAsElementByElement()
    {
        float[] data = [0.79056954f, -0.1f, 1e-7f, 3.4028235e38f, -0f, 123456789f, 1f];
        var bytes = new byte[data.Length * 4];
        Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
        using var request = new InferRequest();
        using var response = new InferResponse("m", "1", null, [InferTensor.Copy("y", OipDatatype.Fp32, [1, data.Length], bytes)]);
        var json = new ArrayBufferWriter<byte>();
        OipJsonResponseWriter.Write(json, request, response);

        using var document = JsonDocument.Parse(json.WrittenMemory);
        var written = document.RootElement.GetProperty("outputs")[0].GetProperty("data");
        Assert.Equal(string.Join(",", data.Select(Utf8JsonWriterText)), written.GetRawText().Trim('[', ']'));
        Assert.Equal(data, written.EnumerateArray().Select(e => e.GetSingle()));
    }

    private static string Utf8JsonWriterText(float value)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteNumberValue(value);
        }

        return Encoding.ASCII.GetString(buffer.WrittenSpan);
    }
}
