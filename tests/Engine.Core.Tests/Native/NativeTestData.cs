// Random inputs, poisoned outputs, comparison with explicit tolerances and the geometries that the
// convolution and matmul tests (reference and oneDNN) share.
using Engine.Native;

namespace Engine.Tests.Native;

public static class NativeTestData
{
    /// <summary>A fresh seed per run; every failure message prints it so a failure can be replayed.</summary>
    public static int NewSeed() => Environment.TickCount ^ Random.Shared.Next();

    public static double[] Uniform(Random rng, long count)
    {
        var values = new double[count];
        for (var i = 0; i < count; i++) values[i] = rng.NextDouble() * 2 - 1;
        return values;
    }

    public static float[] ToFloat(double[] values) => Array.ConvertAll(values, v => (float)v);
    public static double[] ToDouble(float[] values) => Array.ConvertAll(values, v => (double)v);
    public static double[] Abs(double[] values) => Array.ConvertAll(values, Math.Abs);

    public static float[] Poisoned(long count)
    {
        var values = new float[count];
        Array.Fill(values, float.NaN);
        return values;
    }

    /// <summary>Checks float results against a double reference. <paramref name="magnitude"/> is the same
    /// computation on absolute values (Σ|terms| per element). A float32 sum of K terms in any order is off
    /// by at most about K·eps·Σ|terms| (Higham, Accuracy and Stability of Numerical Algorithms, §3.1);
    /// blocked and pairwise sums as oneDNN does them stay far below that, so 32·eps·Σ|terms| holds for
    /// every K used here, while a missing or doubled term (≈ Σ|terms|/K) still fails for K up to ~10⁵.</summary>
    public static void AssertClose(string what, ReadOnlySpan<float> actual, double[] expected, double[] magnitude, int seed)
    {
        Assert.True(actual.Length == expected.Length, $"{what}: {actual.Length} elements, expected {expected.Length} (seed {seed})");
        const double eps32 = 1.1920929e-7;
        for (var i = 0; i < expected.Length; i++)
        {
            var tolerance = 1e-6 + 32 * eps32 * magnitude[i];
            var error = Math.Abs(actual[i] - expected[i]);
            if (!(error <= tolerance))   // NaN (an unwritten, poisoned element) fails too
                Assert.Fail($"{what}: element {i} is {actual[i]}, reference {expected[i]:R}, |error| {error:E2} > tolerance {tolerance:E2} (seed {seed})");
        }
    }

    /// <summary>Small geometries that reach every branch: padding, stride (with a dropped remainder),
    /// rectangular kernels, dilation, groups (incl. depthwise), 1x1, odd and >16 channel counts.</summary>
    public static IEnumerable<Conv2dGeometry> ConvCases(Random rng)
    {
        yield return Conv2dGeometry.Square(2, 3, 7, 6, 5, 3, stride: 1, pad: 1);
        yield return Conv2dGeometry.Square(1, 4, 9, 8, 6, 3, stride: 2, pad: 1, groups: 2);
        yield return new Conv2dGeometry(2, 3, 8, 9, 4, 3, 2, strideH: 1, strideW: 2, padH: 2, padW: 0, dilationH: 2, dilationW: 1);
        yield return Conv2dGeometry.Square(3, 5, 5, 7, 7, 1);
        yield return Conv2dGeometry.Square(1, 6, 6, 5, 6, 3, stride: 1, pad: 1, groups: 6);
        yield return Conv2dGeometry.Square(2, 2, 7, 7, 3, 2, stride: 3);
        yield return Conv2dGeometry.Square(1, 8, 9, 9, 4, 1, stride: 2);
        yield return Conv2dGeometry.Square(2, 19, 11, 10, 21, 3, stride: 1, pad: 1);
        yield return Conv2dGeometry.Square(1, 32, 6, 7, 48, 3, stride: 2, pad: 1, dilation: 2, groups: 4);
        for (var i = 0; i < 3; i++) yield return RandomConv(rng);
    }

    public static Conv2dGeometry RandomConv(Random rng)
    {
        while (true)
        {
            var groups = rng.Next(1, 4);
            var kh = rng.Next(1, 4);
            var kw = rng.Next(1, 4);
            var dh = rng.Next(1, 3);
            var dw = rng.Next(1, 3);
            var ph = rng.Next(0, 3);
            var pw = rng.Next(0, 3);
            var h = rng.Next(1, 10);
            var w = rng.Next(1, 10);
            if (h + 2 * ph < dh * (kh - 1) + 1 || w + 2 * pw < dw * (kw - 1) + 1) continue;
            return new Conv2dGeometry(rng.Next(1, 3), groups * rng.Next(1, 5), h, w, groups * rng.Next(1, 5), kh, kw,
                                      rng.Next(1, 4), rng.Next(1, 4), ph, pw, dh, dw, groups);
        }
    }

    /// <summary>Transposes, padded leading dimensions, gapped batch strides, broadcast of either or both
    /// operands, odd sizes.</summary>
    public static IEnumerable<MatmulGeometry> MatmulCases()
    {
        foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true), (true, true) })
        {
            yield return MatmulGeometry.Contiguous(1, 7, 5, 3, ta, tb);
            yield return MatmulGeometry.Contiguous(3, 5, 9, 17, ta, tb);
            yield return MatmulGeometry.Contiguous(4, 6, 3, 5, ta, tb, broadcastA: true);
            yield return MatmulGeometry.Contiguous(4, 6, 3, 5, ta, tb, broadcastB: true);
        }
        yield return MatmulGeometry.Contiguous(3, 4, 5, 6, broadcastA: true, broadcastB: true);
        // Row pitches and batch strides larger than the packed ones (views into wider buffers).
        yield return new MatmulGeometry(2, 5, 7, 3, false, false, lda: 4, ldb: 9, ldc: 8, batchStrideA: 23, batchStrideB: 30, batchStrideC: 41);
        yield return new MatmulGeometry(3, 5, 7, 3, true, true, lda: 6, ldb: 5, ldc: 7, batchStrideA: 20, batchStrideB: 0, batchStrideC: 36);
        yield return MatmulGeometry.Contiguous(2, 33, 65, 129);
    }
}
