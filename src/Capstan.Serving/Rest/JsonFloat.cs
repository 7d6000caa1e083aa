namespace Capstan.Serving.Rest;

/// <summary>
/// The fast path for writing FP32 output data as JSON: the same text <see cref="System.Text.Json.Utf8JsonWriter"/>
/// writes for a float (the shortest decimal that reads back as the same float, in .NET's "G" layout),
/// without .NET's general number formatting machinery. For p significant digits (p found by bisection over 1…9) it takes
/// the p-digit decimal nearest the float and keeps the smallest p that reads back exactly, checked with
/// <see cref="JsonNumber"/>'s correctly rounded composition; the nearest p-digit decimal reads back
/// whenever any p-digit decimal does, so the first hit is the shortest and the closest. Values it
/// cannot decide exactly (non-finite, magnitudes outside about 1e-13…1e22 where powers of ten are
/// inexact, a double-rounding tie) answer false and the caller formats them the general way.
/// </summary>
internal static class JsonFloat
{
    /// <summary>Longest text written: sign, 9 digits, point, "E-45"-style exponent, with room to spare.</summary>
    public const int MaxLength = 24;

    // float's "G" layout switches to scientific past 9 integer digits (its round-trip precision) or before 10^-5.
    private const int MaxFixedScale = 9;
    private const int MinFixedScale = -3;

    private static readonly double[] s_powersOfTen =
    [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];

    private static readonly ulong[] s_integerPowersOfTen =
    [
        1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000,
    ];

    /// <summary>Writes <paramref name="value"/> into <paramref name="destination"/> (at least <see cref="MaxLength"/> bytes).</summary>
    public static bool TryFormat(float value, Span<byte> destination, out int written)
    {
        written = 0;
        if (!float.IsFinite(value) || destination.Length < MaxLength)
        {
            return false;
        }

        var negative = float.IsNegative(value);
        if (value == 0)
        {
            return Write(negative, 0, 1, 1, destination, out written);
        }

        var magnitude = Math.Abs((double)value);
        var target = Math.Abs(value);
        if (magnitude is >= 1e22 or < 1e-22)
        {
            return false; // the powers of ten below are exact doubles only up to 10^22
        }

        // k = floor(log10(magnitude)), estimated from the binary exponent and corrected by one comparison.
        var k = (int)Math.Floor(Math.ILogB(magnitude) * 0.30102999566398119521);
        // The estimate is k or k - 1 (the mantissa's own log10 is in [0, 0.302)).
        if (magnitude >= Power(k + 1))
        {
            k++;
        }

        // Reading back exactly is monotone in the digit count (the nearest p+1-digit decimal is at least as
        // close as the nearest p-digit one), so the shortest count is found by bisection over 1…9.
        int low = 1, high = 9;
        ulong hitMantissa = 0;
        int hitExponent = 0, hitDigits = 0;
        while (low <= high)
        {
            var digits = (low + high) / 2;
            switch (TryDigits(magnitude, target, k, digits, out var mantissa, out var exponent))
            {
                case Candidate.Exact:
                    (hitMantissa, hitExponent, hitDigits) = (mantissa, exponent, digits);
                    high = digits - 1;
                    break;
                case Candidate.Inexact:
                    low = digits + 1;
                    break;
                default:
                    return false;
            }
        }

        if (hitDigits == 0)
        {
            return false;
        }

        var length = hitDigits;
        while (hitMantissa % 10 == 0)
        {
            hitMantissa /= 10;
            hitExponent++;
            length--;
        }

        // value = 0.d1d2…dn · 10^decimalScale
        return Write(negative, hitMantissa, length, hitExponent + length, destination, out written);
    }

    private enum Candidate
    {
        Exact,
        Inexact,
        Undecided,
    }

    /// <summary>The <paramref name="digits"/>-digit decimal nearest <paramref name="magnitude"/>, as mantissa · 10^exponent, and whether it reads back as <paramref name="target"/>.</summary>
    private static Candidate TryDigits(double magnitude, float target, int k, int digits, out ulong mantissa, out int exponent)
    {
        // magnitude · 10^scale lies in [10^(digits-1), 10^digits); its nearest integer is the candidate.
        var scale = digits - 1 - k;
        mantissa = 0;
        exponent = -scale;
        if (scale is < -22 or > 22)
        {
            return Candidate.Undecided;
        }

        var scaled = scale >= 0 ? magnitude * s_powersOfTen[scale] : magnitude / s_powersOfTen[-scale];
        mantissa = (ulong)Math.Round(scaled, MidpointRounding.ToEven);
        if (mantissa >= s_integerPowersOfTen[digits])
        {
            // Rounded up to the next power of ten: 10^digits · 10^-scale, one digit fewer of mantissa.
            mantissa /= 10;
            exponent++;
        }

        if (!JsonNumber.TryCompose(false, mantissa, exponent, out var exact) || !JsonNumber.TryNarrow(exact, out var back))
        {
            return Candidate.Undecided;
        }

        return back == target ? Candidate.Exact : Candidate.Inexact;
    }

    private static double Power(int exponent) => exponent >= 0 ? s_powersOfTen[exponent] : 1 / s_powersOfTen[-exponent];

    /// <summary>Lays out the digits of <paramref name="mantissa"/> (<paramref name="length"/> of them) as .NET's "G" format does.</summary>
    private static bool Write(bool negative, ulong mantissa, int length, int decimalScale, Span<byte> destination, out int written)
    {
        Span<byte> digits = stackalloc byte[10];
        for (var i = length - 1; i >= 0; i--)
        {
            digits[i] = (byte)('0' + (mantissa % 10));
            mantissa /= 10;
        }

        var at = 0;
        if (negative)
        {
            destination[at++] = (byte)'-';
        }

        if (decimalScale > MaxFixedScale || decimalScale < MinFixedScale)
        {
            destination[at++] = digits[0];
            if (length > 1)
            {
                destination[at++] = (byte)'.';
                digits[1..length].CopyTo(destination[at..]);
                at += length - 1;
            }

            var power = decimalScale - 1;
            destination[at++] = (byte)'E';
            destination[at++] = power < 0 ? (byte)'-' : (byte)'+';
            power = Math.Abs(power);
            destination[at++] = (byte)('0' + (power / 10));
            destination[at++] = (byte)('0' + (power % 10));
        }
        else if (decimalScale <= 0)
        {
            destination[at++] = (byte)'0';
            destination[at++] = (byte)'.';
            for (var i = decimalScale; i < 0; i++)
            {
                destination[at++] = (byte)'0';
            }

            digits[..length].CopyTo(destination[at..]);
            at += length;
        }
        else if (decimalScale >= length)
        {
            digits[..length].CopyTo(destination[at..]);
            at += length;
            for (var i = length; i < decimalScale; i++)
            {
                destination[at++] = (byte)'0';
            }
        }
        else
        {
            digits[..decimalScale].CopyTo(destination[at..]);
            at += decimalScale;
            destination[at++] = (byte)'.';
            digits[decimalScale..length].CopyTo(destination[at..]);
            at += length - decimalScale;
        }

        written = at;
        return true;
    }
}
