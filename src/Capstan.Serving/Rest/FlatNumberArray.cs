using System.Buffers.Binary;
using Capstan.Serving.Models;

namespace Capstan.Serving.Rest;

/// <summary>
/// The fast path for the usual tensor data: a flat JSON array of FP32 or FP64 numbers, validated
/// and parsed in one pass over the bytes instead of Utf8JsonReader's token-by-token validation plus
/// a second parse of each token. It accepts only what JSON allows (RFC 8259 numbers, whitespace,
/// commas) and values <see cref="JsonNumber"/> parses exactly; anything else — nesting, other
/// tokens, comments, a long mantissa, a number out of range, malformed or truncated input, more
/// elements than the shape needs — answers false and the caller reads the array the general way,
/// which also produces the error message.
/// </summary>
internal static class FlatNumberArray
{
    /// <summary>
    /// Parses the array whose '[' is at <paramref name="start"/> in <paramref name="json"/>. On success
    /// <paramref name="written"/> is the element count and <paramref name="close"/> the index of the ']'.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> json, int start, OipDatatype type, Span<byte> destination, long count, out long written, out int close)
    {
        written = 0;
        close = -1;
        if (type is not (OipDatatype.Fp32 or OipDatatype.Fp64) || start < 0 || start >= json.Length || json[start] != '[')
        {
            return false;
        }

        var size = type == OipDatatype.Fp32 ? 4 : 8;
        var i = SkipWhitespace(json, start + 1);
        if (i < json.Length && json[i] == ']')
        {
            close = i;
            return true;
        }

        long index = 0;
        while (true)
        {
            if (index >= count)
            {
                return false;
            }

            if (!TryNumber(json, ref i, out var negative, out var mantissa, out var exponent)
                || !JsonNumber.TryCompose(negative, mantissa, exponent, out var d))
            {
                return false;
            }

            var slot = destination.Slice((int)(index * size), size);
            if (size == 4)
            {
                if (!JsonNumber.TryNarrow(d, out var f))
                {
                    return false;
                }

                BinaryPrimitives.WriteSingleLittleEndian(slot, f);
            }
            else
            {
                BinaryPrimitives.WriteDoubleLittleEndian(slot, d);
            }

            index++;
            i = SkipWhitespace(json, i);
            if (i >= json.Length)
            {
                return false;
            }

            if (json[i] == ']')
            {
                written = index;
                close = i;
                return true;
            }

            if (json[i] != ',')
            {
                return false;
            }

            i = SkipWhitespace(json, i + 1);
        }
    }

    /// <summary>
    /// Reads the JSON number at <paramref name="i"/> (see <see cref="JsonNumber.TryDecompose"/>), leaving
    /// <paramref name="i"/> just past it; false also when it is not followed by a delimiter ("1x", "01").
    /// </summary>
    private static bool TryNumber(ReadOnlySpan<byte> json, ref int i, out bool negative, out ulong mantissa, out int exponent)
    {
        if (!JsonNumber.TryDecompose(json[i..], out negative, out mantissa, out exponent, out var consumed))
        {
            return false;
        }

        i += consumed;
        return i >= json.Length || IsDelimiter(json[i]);
    }

    private static int SkipWhitespace(ReadOnlySpan<byte> json, int i)
    {
        while (i < json.Length && json[i] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')
        {
            i++;
        }

        return i;
    }

    private static bool IsDelimiter(byte b) => b is (byte)',' or (byte)']' or (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t';
}
