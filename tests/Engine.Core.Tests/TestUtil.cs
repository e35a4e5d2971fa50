// Shared helpers for the core tests: fresh seeds each run (printed on failure so a run can be replayed),
// NaN-poisoned allocations (an unwritten output element fails its comparison), and tolerance checks of
// the form |actual - expected| ≤ atol + rtol·|expected|.
using Engine.Diagnostics;
using Engine.Reference;

namespace Engine.Tests;

public static class TestUtil
{
    static TestUtil() => EngineOptions.PoisonAllocations = true;

    /// <summary>A generator with a fresh seed (ENGINE_TEST_SEED replays one).</summary>
    public static Generator Fresh(out ulong seed)
    {
        EngineOptions.PoisonAllocations = true;
        var fixedSeed = Environment.GetEnvironmentVariable("ENGINE_TEST_SEED");
        seed = fixedSeed is not null ? ulong.Parse(fixedSeed) : (ulong)Random.Shared.NextInt64();
        return new Generator(seed);
    }

    /// <summary>float32 against a double reference: atol/rtol default to a few float32 ulps of accumulated rounding.</summary>
    public static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual, string what, ulong seed,
                                   double atol = 1e-5, double rtol = 1e-4)
    {
        Assert.True(expected.Count == actual.Count, $"{what}: {actual.Count} elements, expected {expected.Count} (seed {seed})");
        for (var i = 0; i < expected.Count; i++)
        {
            var (e, a) = (expected[i], actual[i]);
            if (double.IsNaN(e) && double.IsNaN(a)) continue;
            if (double.IsInfinity(e) && e == a) continue;
            var ok = Math.Abs(a - e) <= atol + rtol * Math.Abs(e);
            // the message is built only on failure: formatting it for every element dominates large comparisons
            if (!ok) Assert.Fail($"{what}: element {i} is {a:G9}, expected {e:G9} (seed {seed}, ENGINE_TEST_SEED={seed} replays)");
        }
    }

    public static void AssertClose(RefTensor expected, Tensor actual, string what, ulong seed, double atol = 1e-5, double rtol = 1e-4)
    {
        Assert.True(expected.Shape.SequenceEqual(actual.ShapeArray()),
            $"{what}: shape {ShapeUtil.Format(actual.Shape)}, expected {ShapeUtil.Format(expected.Shape)} (seed {seed})");
        AssertClose(expected.Data, actual.ToDoubleArray(), what, seed, atol, rtol);
    }

    /// <summary>A random shape of the given rank with sizes in [1, max], biased to odd sizes.</summary>
    public static int[] RandomShape(Generator g, int rank, int max = 7)
    {
        var s = new int[rank];
        for (var i = 0; i < rank; i++) s[i] = 1 + (int)g.NextInt64(max);
        return s;
    }

    /// <summary>The same values as <paramref name="r"/> stored transposed (a non-contiguous view) when rank ≥ 2.</summary>
    public static Tensor NonContiguous(RefTensor r)
    {
        if (r.Shape.Length < 2) return r.ToTensor();
        var n = r.Shape.Length;
        var perm = Enumerable.Range(0, n).ToArray();
        (perm[0], perm[n - 1]) = (perm[n - 1], perm[0]);
        using var stored = r.Permute(perm).ToTensor();
        return stored.Permute(perm);
    }

    /// <summary>Runs the selftest rows that <paramref name="filter"/> picks on the CPU over <paramref name="rounds"/> fresh
    /// seeds: each round must give exactly <paramref name="rows"/> ("op part", in order), every one passing.</summary>
    public static void AssertSelfTestRowsPass(Func<SelfTestCheck, bool> filter, IReadOnlyList<string> rows, int rounds = 4)
    {
        for (var round = 0; round < rounds; round++)
        {
            Fresh(out var seed);
            var results = SelfTest.Run(Device.Cpu, seed, filter).ToList();
            Assert.Equal(rows, results.Select(r => $"{r.Op} {r.Part}"));
            var failures = results.Where(r => !r.Passed).Select(r => $"{r.Op} {r.Part}: {r.RelativeError:G3} > {r.Tolerance:G3} {r.Error}").ToList();
            Assert.True(failures.Count == 0, $"seed {seed}: " + string.Join("; ", failures));
        }
    }
}
