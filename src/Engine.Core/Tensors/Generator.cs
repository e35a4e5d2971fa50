// Seeded random numbers for tensor factories and samplers. Counter-based (SplitMix64 over a stream
// position), so a draw depends only on the seed and how many numbers were drawn before it: results are
// identical on every machine and thread count, and the state is one number that checkpoints can store.
namespace Engine;

public sealed class Generator
{
    public Generator(ulong seed)
    {
        Seed = seed;
    }

    public ulong Seed { get; }

    /// <summary>Numbers drawn so far; with Seed, the whole state (for checkpoints).</summary>
    public ulong Position { get; set; }

    public ulong NextUInt64() => Mix(Seed * 0x9E3779B97F4A7C15UL + ++Position * 0xD1B54A32D192ED03UL);

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public long NextInt64(long n)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        var limit = ulong.MaxValue - ulong.MaxValue % (ulong)n;
        ulong r;
        do r = NextUInt64(); while (r >= limit);
        return (long)(r % (ulong)n);
    }

    /// <summary>Standard normal (Box–Muller; one draw consumes two uniforms).</summary>
    public double NextNormal()
    {
        var u1 = 1.0 - NextDouble();
        var u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary>A permutation of 0..n-1 (Fisher–Yates).</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (var i = 0; i < n; i++) p[i] = i;
        for (var i = n - 1; i > 0; i--)
        {
            var j = (int)NextInt64(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
