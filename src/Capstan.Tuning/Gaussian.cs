namespace Capstan.Tuning;

/// <summary>The standard normal distribution: density, distribution function and tail masses.</summary>
internal static class Gaussian
{
    public const double LogSqrt2Pi = 0.91893853320467274178;

    // Numerical Recipes' erfcc coefficients, from the highest power of t down to t¹.
    private static readonly double[] s_erfcCoefficients = [-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196, 1.00002368];

    public static double Pdf(double z) => Math.Exp((-0.5 * z * z) - LogSqrt2Pi);

    public static double LogPdf(double z) => (-0.5 * z * z) - LogSqrt2Pi;

    /// <summary>Φ(z).</summary>
    public static double Cdf(double z) => 0.5 * Erfc(-z / Math.Sqrt(2));

    /// <summary>Φ(b) − Φ(a) for a ≤ b, computed on the side of zero where it does not cancel.</summary>
    public static double Mass(double a, double b)
    {
        if (a < -8.5 && b > 8.5)
        {
            return 1;
        }

        if (a >= 0)
        {
            return 0.5 * (Erfc(a / Math.Sqrt(2)) - Erfc(b / Math.Sqrt(2)));
        }

        if (b <= 0)
        {
            return 0.5 * (Erfc(-b / Math.Sqrt(2)) - Erfc(-a / Math.Sqrt(2)));
        }

        return 1 - (0.5 * Erfc(-a / Math.Sqrt(2))) - (0.5 * Erfc(b / Math.Sqrt(2)));
    }

    /// <summary>
    /// The complementary error function by its Chebyshev fit (relative error below 1.2e-7 everywhere), which keeps
    /// precision far into the tails.
    /// </summary>
    public static double Erfc(double x)
    {
        var z = Math.Abs(x);
        var t = 1 / (1 + (0.5 * z));
        var poly = 0.17087277;
        foreach (var c in s_erfcCoefficients)
        {
            poly = c + (t * poly);
        }

        var r = t * Math.Exp((-z * z) - 1.26551223 + (t * poly));
        return x >= 0 ? r : 2 - r;
    }

    /// <summary>A draw from N(mu, sigma²) truncated to [low, high], by rejection (uniform over the range if that fails).</summary>
    public static double SampleTruncated(Rng rng, double mu, double sigma, double low, double high)
    {
        for (var i = 0; i < 100; i++)
        {
            var x = mu + (sigma * rng.Normal());
            if (x >= low && x <= high)
            {
                return x;
            }
        }

        return Math.Clamp(mu, low, high) is var c && sigma > 0 ? Math.Clamp(c + ((rng.NextDouble() - 0.5) * sigma), low, high) : c;
    }

    public static double LogSumExp(ReadOnlySpan<double> values)
    {
        var max = double.NegativeInfinity;
        foreach (var v in values)
        {
            max = Math.Max(max, v);
        }

        if (double.IsNegativeInfinity(max))
        {
            return max;
        }

        var sum = 0.0;
        foreach (var v in values)
        {
            sum += Math.Exp(v - max);
        }

        return max + Math.Log(sum);
    }
}
