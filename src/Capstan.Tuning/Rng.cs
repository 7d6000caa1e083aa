namespace Capstan.Tuning;

/// <summary>
/// A small seeded generator (xoshiro256** seeded through SplitMix64) whose stream depends only on its seed, so a
/// suggestion derived from (seed, trial index) is the same on every run and every machine.
/// </summary>
internal sealed class Rng
{
    private ulong _s0;
    private ulong _s1;
    private ulong _s2;
    private ulong _s3;
    private double? _spareNormal;

    public Rng(ulong seed)
    {
        _s0 = SplitMix(ref seed);
        _s1 = SplitMix(ref seed);
        _s2 = SplitMix(ref seed);
        _s3 = SplitMix(ref seed);
    }

    /// <summary>A generator for one purpose (<paramref name="stream"/>) at one point of the search (<paramref name="index"/>).</summary>
    public static Rng For(long seed, ulong stream, long index)
    {
        var x = (ulong)seed;
        var h = SplitMix(ref x) ^ (stream * 0x9E3779B97F4A7C15UL);
        h = SplitMix(ref h) ^ (ulong)index;
        return new Rng(SplitMix(ref h));
    }

    public ulong NextUInt64()
    {
        var result = RotateLeft(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public double Uniform(double low, double high) => low + (NextDouble() * (high - low));

    public int Next(int n) => (int)(NextDouble() * n);

    public double Normal()
    {
        if (_spareNormal is { } spare)
        {
            _spareNormal = null;
            return spare;
        }

        double u;
        double v;
        double s;
        do
        {
            u = (2 * NextDouble()) - 1;
            v = (2 * NextDouble()) - 1;
            s = (u * u) + (v * v);
        }
        while (s >= 1 || s == 0);

        var m = Math.Sqrt(-2 * Math.Log(s) / s);
        _spareNormal = v * m;
        return u * m;
    }

    /// <summary>An index drawn with probability proportional to its weight.</summary>
    public int Choice(ReadOnlySpan<double> weights)
    {
        var total = 0.0;
        foreach (var w in weights)
        {
            total += w;
        }

        var r = NextDouble() * total;
        for (var i = 0; i < weights.Length; i++)
        {
            r -= weights[i];
            if (r < 0)
            {
                return i;
            }
        }

        return weights.Length - 1;
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));

    private static ulong SplitMix(ref ulong x)
    {
        var z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
