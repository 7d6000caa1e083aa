namespace Capstan.Tuning;

/// <summary>
/// Quasi-random search over the Sobol sequence with Joe and Kuo's direction numbers (new-joe-kuo-6.21201), points in
/// Gray-code order as Joe and Kuo's own generator emits them. Trial k takes point k + 1 (the origin, a corner of the
/// space, is skipped). Unscrambled by default, so the points are the published ones; <c>scramble: true</c> applies a
/// random digital shift (an XOR of each coordinate with a seeded 32-bit mask), which keeps the net's structure.
/// </summary>
internal sealed class SobolSearch(AlgorithmContext context, bool scramble) : Sampler(context)
{
    /// <summary>Joe–Kuo rows for dimensions 2 and up: degree s, polynomial coefficients a, then m_1 … m_s.</summary>
    private const string JoeKuo =
        "1 0 1|2 1 1 3|3 1 1 3 1|3 2 1 1 1|4 1 1 1 3 3|4 4 1 3 5 13|5 2 1 1 5 5 17|5 4 1 1 5 5 5|5 7 1 1 7 11 19|5 11 1 1 5 1 1|"
        + "5 13 1 1 1 3 11|5 14 1 3 5 5 31|6 1 1 3 3 9 7 49|6 13 1 1 1 15 21 21|6 16 1 3 1 13 27 49|6 19 1 1 1 15 7 5|"
        + "6 22 1 3 1 15 13 25|6 25 1 1 5 5 19 61|7 1 1 3 7 11 23 15 103|7 4 1 3 7 13 13 15 69|7 7 1 1 3 13 7 35 63|"
        + "7 8 1 3 5 9 1 25 53|7 14 1 3 1 13 9 35 107|7 19 1 3 1 5 27 61 31|7 21 1 1 5 11 19 41 61|7 28 1 3 5 3 3 13 69|"
        + "7 31 1 1 7 13 1 19 1|7 32 1 3 7 5 13 19 59|7 37 1 1 3 9 25 29 41|7 41 1 3 5 13 23 1 55|7 42 1 3 7 3 13 59 17|"
        + "7 50 1 3 1 3 5 53 69|7 55 1 1 5 5 23 33 13|7 56 1 1 7 7 1 61 123|7 59 1 1 7 9 13 61 49|7 62 1 3 3 5 3 55 33|"
        + "8 14 1 3 1 15 31 13 49 245|8 21 1 3 5 15 31 59 63 97|8 22 1 3 1 11 11 11 77 249|8 38 1 3 1 11 27 43 71 9|"
        + "8 47 1 1 7 15 21 11 81 45|8 49 1 3 7 3 25 31 65 79|8 50 1 3 1 1 19 11 3 205|8 52 1 1 5 9 19 21 29 157|"
        + "8 56 1 3 7 11 1 33 89 185|8 67 1 3 3 3 15 9 79 71|8 70 1 3 7 11 15 39 119 27|8 84 1 1 3 1 11 31 97 225|"
        + "8 97 1 1 1 3 23 43 57 177|8 103 1 3 7 7 17 17 37 71|8 115 1 3 1 5 27 63 123 213|8 122 1 1 3 5 11 43 53 133";

    private static readonly uint[][] s_directions = Directions();

    /// <summary>The most dimensions the table covers.</summary>
    public static int MaxDimensions => s_directions.Length;

    public static SobolSearch? Create(AlgorithmContext context, SettingsReader reader)
    {
        var scramble = reader.Bool("scramble", false);
        if (context.Space.Count > MaxDimensions)
        {
            reader.Fail("parameters", $"sobol covers up to {MaxDimensions} parameters; the space has {context.Space.Count}");
            return null;
        }

        return new SobolSearch(context, scramble);
    }

    protected override Suggestion? SuggestNext(IReadOnlyList<Trial> history)
    {
        var u = new double[Dimensions.Count];
        var shift = scramble ? Rng.For(Seed, 4, 0) : null;
        for (var d = 0; d < u.Length; d++)
        {
            var mask = shift is null ? 0u : (uint)(shift.NextUInt64() >> 32);
            u[d] = (Point(history.Count + 1, d) ^ mask) / 4294967296.0;
        }

        return new Suggestion(FromUnit(u));
    }

    /// <summary>Coordinate <paramref name="dimension"/> of point <paramref name="index"/> (Gray-code order), as a 32-bit fraction.</summary>
    public static uint Point(long index, int dimension)
    {
        var v = s_directions[dimension];
        var gray = (ulong)index ^ ((ulong)index >> 1);
        var x = 0u;
        for (var j = 0; gray != 0 && j < 32; j++, gray >>= 1)
        {
            if ((gray & 1) != 0)
            {
                x ^= v[j];
            }
        }

        return x;
    }

    public static double Unit(long index, int dimension) => Point(index, dimension) / 4294967296.0;

    private static uint[][] Directions()
    {
        var all = new List<uint[]> { Enumerable.Range(0, 32).Select(j => 1u << (31 - j)).ToArray() };
        foreach (var row in JoeKuo.Split('|'))
        {
            var numbers = row.Split(' ').Select(uint.Parse).ToArray();
            var s = (int)numbers[0];
            var a = numbers[1];
            var v = new uint[32];
            for (var j = 0; j < 32; j++)
            {
                if (j < s)
                {
                    v[j] = numbers[2 + j] << (31 - j);
                    continue;
                }

                var x = v[j - s] ^ (v[j - s] >> s);
                for (var k = 1; k < s; k++)
                {
                    if (((a >> (s - 1 - k)) & 1) != 0)
                    {
                        x ^= v[j - k];
                    }
                }

                v[j] = x;
            }

            all.Add(v);
        }

        return all.ToArray();
    }
}
