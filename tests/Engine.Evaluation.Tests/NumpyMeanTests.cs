// numpy's summation order: exact for short arrays, pairwise blocks above 8 elements, 8192-element chunks.
namespace Engine.Evaluation.Tests;

public class NumpyMeanTests
{
    [Fact]
    public void ShortArraysSumLeftToRight()
    {
        double[] a = [0.1, 0.2, 0.3, 1e16, -1e16, 0.7, 0.3];
        double s = 0;
        foreach (double v in a)
            s += v;
        Assert.Equal(s / a.Length, NumpyMean.Mean(a));
    }

    [Fact]
    public void BlocksOfEightUseEightRunningSums()
    {
        // 16 elements: r_j = a[j] + a[8 + j], combined ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)).
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        var a = Enumerable.Range(0, 19).Select(_ => rng.NextDouble() * Math.Pow(10, rng.Next(-5, 5))).ToArray();
        var r = new double[8];
        for (int j = 0; j < 8; j++)
            r[j] = a[j] + a[8 + j];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        s += a[16];
        s += a[17];
        s += a[18];
        Assert.True(s / 19 == NumpyMean.Mean(a), $"seed {seed}");
    }

    [Fact]
    public void LongArraysSplitPairwiseAndChunkAt8192()
    {
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        var a = Enumerable.Range(0, 20000).Select(_ => rng.NextDouble()).ToArray();
        double expected = 0.0;
        expected += NumpyMean.PairwiseSum(a.AsSpan(0, 8192));
        expected += NumpyMean.PairwiseSum(a.AsSpan(8192, 8192));
        expected += NumpyMean.PairwiseSum(a.AsSpan(16384));
        Assert.True(expected / a.Length == NumpyMean.Mean(a), $"seed {seed}");
        // 300 > 128: split at 150 - 150 % 8 = 144.
        var b = a.AsSpan(0, 300);
        Assert.Equal(NumpyMean.PairwiseSum(b[..144]) + NumpyMean.PairwiseSum(b[144..]), NumpyMean.PairwiseSum(b));
        Assert.True(Math.Abs(NumpyMean.Mean(a) - a.Average()) < 1e-12);
    }

    [Fact]
    public void MeanOfDefinedSkipsMinusOneAndIsMinusOneWhenEmpty()
    {
        Assert.Equal(-1.0, NumpyMean.MeanOfDefined([-1.0, -1.0]));
        Assert.Equal(-1.0, NumpyMean.MeanOfDefined([]));
        Assert.Equal(0.25, NumpyMean.MeanOfDefined([-1.0, 0.5, 0.0, -1.0]));
    }
}
