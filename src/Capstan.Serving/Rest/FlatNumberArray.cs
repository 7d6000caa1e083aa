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

            var end = NumberEnd(json, i);
            if (end < 0)
            {
                return false;
            }

            var token = json[i..end];
            var slot = destination.Slice((int)(index * size), size);
            if (size == 4)
            {
                if (!JsonNumber.TryParseSingle(token, out var f))
                {
                    return false;
                }

                BinaryPrimitives.WriteSingleLittleEndian(slot, f);
            }
            else
            {
                if (!JsonNumber.TryParseDouble(token, out var d))
                {
                    return false;
                }

                BinaryPrimitives.WriteDoubleLittleEndian(slot, d);
            }

            index++;
            i = SkipWhitespace(json, end);
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

    /// <summary>The index just past a JSON number starting at <paramref name="i"/>, or -1 when there is none.</summary>
    private static int NumberEnd(ReadOnlySpan<byte> json, int i)
    {
        if (i < json.Length && json[i] == '-')
        {
            i++;
        }

        if (i >= json.Length)
        {
            return -1;
        }

        if (json[i] == '0')
        {
            i++;
        }
        else if (IsDigit(json[i]))
        {
            i = Digits(json, i + 1);
        }
        else
        {
            return -1;
        }

        if (i < json.Length && json[i] == '.')
        {
            var afterDot = i + 1;
            i = Digits(json, afterDot);
            if (i == afterDot)
            {
                return -1;
            }
        }

        if (i < json.Length && (json[i] == 'e' || json[i] == 'E'))
        {
            i++;
            if (i < json.Length && (json[i] == '+' || json[i] == '-'))
            {
                i++;
            }

            var exponentStart = i;
            i = Digits(json, i);
            if (i == exponentStart)
            {
                return -1;
            }
        }

        // A number must be followed by a delimiter; "1x" or "01" is not a number.
        return i < json.Length && (IsDigit(json[i]) || !IsDelimiter(json[i])) ? -1 : i;
    }

    private static int Digits(ReadOnlySpan<byte> json, int i)
    {
        while (i < json.Length && IsDigit(json[i]))
        {
            i++;
        }

        return i;
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

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;
}
