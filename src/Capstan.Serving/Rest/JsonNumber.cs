namespace Capstan.Serving.Rest;

/// <summary>
/// The fast path for JSON numbers in tensor data (most of an infer request's parsing time):
/// Clinger's exact case — at most 19 significant digits forming a mantissa below 2^53 and a
/// power of ten up to 22, where one IEEE multiplication or division is correctly rounded. Anything
/// else (long mantissas, large exponents, subnormals, a float result exactly halfway between two
/// floats) returns false and the caller parses it the general way, so results always equal
/// <see cref="float.Parse(string)"/> / <see cref="double.Parse(string)"/>.
/// The input is a number token Utf8JsonReader has already validated.
/// </summary>
internal static class JsonNumber
{
    private const ulong MaxExactMantissa = 1UL << 53;

    /// <summary>2^-126, the smallest normal float.</summary>
    private const double MinNormalSingle = 1.1754943508222875e-38;

    private static readonly double[] s_powersOfTen =
    [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];

    public static bool TryParseDouble(ReadOnlySpan<byte> token, out double value)
    {
        value = 0;
        return TryDecompose(token, out var negative, out var mantissa, out var exponent, out var consumed)
            && consumed == token.Length
            && TryCompose(negative, mantissa, exponent, out value);
    }

    public static bool TryParseSingle(ReadOnlySpan<byte> token, out float value)
    {
        value = 0;
        return TryParseDouble(token, out var exact) && TryNarrow(exact, out value);
    }

    /// <summary>mantissa · 10^exponent when one IEEE operation rounds it correctly (Clinger's exact case).</summary>
    public static bool TryCompose(bool negative, ulong mantissa, int exponent, out double value)
    {
        value = 0;
        if (mantissa == 0)
        {
            value = negative ? -0.0 : 0.0;
            return true;
        }

        if (mantissa > MaxExactMantissa || exponent < -22 || exponent > 22)
        {
            return false;
        }

        double result = mantissa;
        result = exponent >= 0 ? result * s_powersOfTen[exponent] : result / s_powersOfTen[-exponent];
        value = negative ? -result : result;
        return true;
    }

    /// <summary>The float nearest a correctly rounded double, when rounding twice cannot differ from rounding once.</summary>
    public static bool TryNarrow(double exact, out float value)
    {
        value = 0;

        // The double is the correctly rounded value; rounding it again to float is only wrong when
        // it sits exactly halfway between two floats (the 29 dropped bits are 1000...0), or in the
        // subnormal and overflow ranges where float's precision differs.
        var magnitude = Math.Abs(exact);
        if (magnitude != 0 && (magnitude < MinNormalSingle || magnitude > float.MaxValue))
        {
            return false;
        }

        if ((BitConverter.DoubleToInt64Bits(exact) & 0x1FFF_FFFF) == 0x1000_0000)
        {
            return false;
        }

        value = (float)exact;
        return true;
    }

    /// <summary>
    /// Splits the JSON number (RFC 8259 grammar) at the start of <paramref name="text"/> into sign, decimal
    /// mantissa and power of ten, in one pass; <paramref name="consumed"/> is its length in bytes. The
    /// text may go on past the number (the caller checks what follows). False when the text does not
    /// start with a number, or it has more than 19 significant digits or a huge exponent.
    /// </summary>
    public static bool TryDecompose(ReadOnlySpan<byte> text, out bool negative, out ulong mantissa, out int exponent, out int consumed)
    {
        mantissa = 0;
        exponent = 0;
        consumed = 0;
        var digits = 0;
        var i = 0;
        negative = text.Length > 0 && text[0] == '-';
        if (negative)
        {
            i++;
        }

        if (i >= text.Length || !IsDigit(text[i]))
        {
            return false;
        }

        if (text[i] == '0')
        {
            i++; // a leading zero stands alone: "01" is "0" followed by something else
        }
        else
        {
            for (; i < text.Length && IsDigit(text[i]); i++)
            {
                if (!Append(ref mantissa, ref digits, text[i]))
                {
                    return false;
                }
            }
        }

        if (i < text.Length && text[i] == '.')
        {
            var afterDot = ++i;
            for (; i < text.Length && IsDigit(text[i]); i++)
            {
                if (!Append(ref mantissa, ref digits, text[i]))
                {
                    return false;
                }

                exponent--;
            }

            if (i == afterDot)
            {
                return false;
            }
        }

        if (i < text.Length && (text[i] == 'e' || text[i] == 'E'))
        {
            i++;
            var sign = 1;
            if (i < text.Length && (text[i] == '+' || text[i] == '-'))
            {
                sign = text[i] == '-' ? -1 : 1;
                i++;
            }

            var exponentStart = i;
            var written = 0;
            for (; i < text.Length && IsDigit(text[i]); i++)
            {
                written = (written * 10) + (text[i] - '0');
                if (written > 9999)
                {
                    return false;
                }
            }

            if (i == exponentStart)
            {
                return false;
            }

            exponent += sign * written;
        }

        consumed = i;
        return true;
    }

    private static bool Append(ref ulong mantissa, ref int digits, byte digit)
    {
        if (mantissa == 0 && digit == '0')
        {
            return true; // leading zeros are not significant
        }

        if (++digits > 19)
        {
            return false;
        }

        mantissa = (mantissa * 10) + (ulong)(digit - '0');
        return true;
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;
}
