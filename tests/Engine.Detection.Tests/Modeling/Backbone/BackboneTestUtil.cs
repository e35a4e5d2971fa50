// Helpers of the backbone tests: fresh seeds printed on failure (ENGINE_TEST_SEED replays one), NaN-poisoned
// allocations so an unwritten output element fails its comparison, tolerance checks of the form
// |actual − expected| ≤ atol + rtol·|expected|, and random frozen-BN / GroupNorm state so norm layers are
// not the identity in the numeric tests.
using Engine.Nn;
using Engine.Reference;

namespace Engine.Detection.Tests.Modeling.Backbone;

internal static class BackboneTestUtil
{
    public static Generator Fresh(out ulong seed)
    {
        EngineOptions.PoisonAllocations = true;
        var fixedSeed = Environment.GetEnvironmentVariable("ENGINE_TEST_SEED");
        seed = fixedSeed is not null ? ulong.Parse(fixedSeed, System.Globalization.CultureInfo.InvariantCulture) : (ulong)Random.Shared.NextInt64();
        return new Generator(seed);
    }

    public static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual, string what, ulong seed, double atol, double rtol)
    {
        Assert.True(expected.Count == actual.Count, $"{what}: {actual.Count} elements, expected {expected.Count} (seed {seed})");
        for (var i = 0; i < expected.Count; i++)
        {
            var (e, a) = (expected[i], actual[i]);
            if (!(Math.Abs(a - e) <= atol + rtol * Math.Abs(e)))
                Assert.Fail($"{what}: element {i} is {a:G9}, expected {e:G9} (atol {atol}, rtol {rtol}; seed {seed}, ENGINE_TEST_SEED={seed} replays)");
        }
    }

    public static void AssertClose(RefTensor expected, Tensor actual, string what, ulong seed, double atol, double rtol)
    {
        Assert.True(expected.Shape.SequenceEqual(actual.ShapeArray()),
            $"{what}: shape {ShapeUtil.Format(actual.Shape)}, expected {ShapeUtil.Format(expected.Shape)} (seed {seed})");
        AssertClose(expected.Data, actual.ToDoubleArray(), what, seed, atol, rtol);
    }

    /// <summary>Gives every FrozenBatchNorm2d and GroupNorm under <paramref name="module"/> random statistics and affine
    /// parameters (scales in [0.5, 1.5], shifts in [−0.3, 0.3], variances in [0.5, 2]).</summary>
    public static void RandomizeNorms(Module module, Generator g)
    {
        using var _ = GradMode.NoGrad();
        foreach (var (_, m) in module.NamedModules())
        {
            if (m is FrozenBatchNorm2d bn)
            {
                Fill(bn.Weight.Value, g, 0.5, 1.5);
                Fill(bn.Bias.Value, g, -0.3, 0.3);
                Fill(bn.RunningMean.Value, g, -0.3, 0.3);
                Fill(bn.RunningVar.Value, g, 0.5, 2);
            }
            else if (m is GroupNorm gn && gn.Weight is not null && gn.Bias is not null)
            {
                Fill(gn.Weight.Value, g, 0.5, 1.5);
                Fill(gn.Bias.Value, g, -0.3, 0.3);
            }
        }
    }

    private static void Fill(Tensor t, Generator g, double low, double high)
    {
        using var values = Tensor.Rand(t.ShapeArray(), g, low, high);
        t.CopyFrom(values);
    }

    /// <summary>Σ u·y over every map of <paramref name="features"/> in double, u from <paramref name="weights"/>.</summary>
    public static double WeightedSum(IReadOnlyDictionary<string, Tensor> features, IReadOnlyDictionary<string, double[]> weights)
    {
        double sum = 0;
        foreach (var (name, t) in features)
        {
            var data = t.ToDoubleArray();
            var u = weights[name];
            for (var i = 0; i < data.Length; i++) sum += u[i] * data[i];
        }
        return sum;
    }
}
