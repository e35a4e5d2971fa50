// LogN `repo` mode's fused batch standardization of the logits (LongTailOps.StandardizeLogits and the CPU backend's
// StandardizeLogits / StandardizeLogitsBackward) against the double references (LogitNormReference.Standardize, its
// finite-difference-checked StandardizeBackward, EmaUpdate): odd sizes, one column, a column block boundary (128),
// LVIS width, outputs poisoned with NaN, the running update in the same pass or none, and the argument errors.
using Engine.LongTail.Reference;

namespace Engine.LongTail.Tests.Ops;

public class StandardizeLogitsTests
{
    private const double Eps = 1e-5;

    public static TheoryData<int, int> Shapes => new() { { 2, 3 }, { 5, 1 }, { 37, 129 }, { 160, 300 }, { 9, 1204 } };

    /// <summary>Logits whose columns are spread well apart (a gap of at least 1 between two rows' values when N = 2): the
    /// tolerances below assume 1/sd of a few at most, since 1/sd scales every float rounding of a centred value.</summary>
    private static double[] Spread(Generator g, int n, int k)
    {
        var z = TestUtil.Logits(g, n, k, -5, 5);
        while (n == 2 && Enumerable.Range(0, k).Any(j => Math.Abs(z[j] - z[k + j]) < 1)) z = TestUtil.Logits(g, n, k, -5, 5);
        return z;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void BackendMatchesTheReferenceWithPoisonedOutputs(int n, int k)
    {
        var g = TestUtil.Fresh(out var seed);
        var z = Spread(g, n, k);
        var u = TestUtil.Uniform(g, n * k, -1, 1);
        var mean0 = TestUtil.Uniform(g, k, -2, 2).Select(v => (double)(float)v).ToArray();
        var variance0 = TestUtil.Uniform(g, k, 0.1, 3).Select(v => (double)(float)v).ToArray();
        using var scope = DisposeScope.Begin();
        var x = TestUtil.Float(z, n, k);
        var mean = TestUtil.Float(mean0, k);
        var variance = TestUtil.Float(variance0, k);
        var y = Tensor.Full([n, k], double.NaN);
        var inverseSd = Tensor.Full([k], double.NaN);
        LongTailBackends.Cpu.StandardizeLogits(x, Eps, y, inverseSd, mean, variance, 0.3);

        // y = (z − a)·r in double, rounded once: half an ulp of |y| ≤ sqrt(N) plus the double sums' differences
        var expected = LogitNormReference.Standardize(z, n, k, Eps);
        TestUtil.AssertClose(expected, y.ToDoubleArray(), $"forward ({n}, {k})", seed, 1e-6, 1e-6);
        var (_, unbiased) = LogitNormReference.BatchStatistics(z, n, k);
        var expectedR = unbiased.Select(v => 1 / Math.Sqrt(v * (n - 1) / n + Eps)).ToArray();
        TestUtil.AssertClose(expectedR, inverseSd.ToDoubleArray(), $"1/sd ({n}, {k})", seed, 1e-9, 1e-7);
        var (em, ev) = ((double[])mean0.Clone(), (double[])variance0.Clone());
        LogitNormReference.EmaUpdate(z, n, k, 0.3, em, ev);
        TestUtil.AssertClose(em, mean.ToDoubleArray(), $"running mean ({n}, {k})", seed, 1e-7, 1e-6);
        TestUtil.AssertClose(ev, variance.ToDoubleArray(), $"running variance ({n}, {k})", seed, 1e-7, 1e-6);

        var gx = Tensor.Full([n, k], double.NaN);
        LongTailBackends.Cpu.StandardizeLogitsBackward(y, TestUtil.Float(u, n, k), inverseSd, gx);
        // the backward reads the float y and r: their roundings, times |g| ≤ 1 and r of a few, stay below 1e-5
        TestUtil.AssertClose(LogitNormReference.StandardizeBackward(z, n, k, Eps, u), gx.ToDoubleArray(), $"backward ({n}, {k})", seed, 1e-5, 1e-4);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void OpRecordsTheBackwardAndUpdatesTheRunningStatisticsItIsGiven(int n, int k)
    {
        var g = TestUtil.Fresh(out var seed);
        var z = Spread(g, n, k);
        var u = TestUtil.Uniform(g, n * k, -1, 1);
        using var scope = DisposeScope.Begin();
        var zt = TestUtil.Float(z, n, k).RequireGrad();
        var y = LongTailOps.StandardizeLogits(zt, Eps);
        TestUtil.AssertClose(LogitNormReference.Standardize(z, n, k, Eps), y.ToDoubleArray(), $"forward ({n}, {k})", seed, 1e-6, 1e-6);
        y.Backward(TestUtil.Float(u, n, k));
        TestUtil.AssertClose(LogitNormReference.StandardizeBackward(z, n, k, Eps, u), zt.Grad!.ToDoubleArray(), $"gradient ({n}, {k})", seed, 1e-5, 1e-4);

        // with running statistics: the same output, and μ, v after one EMA step of momentum 1e-4 (repo mode's)
        var mean = Tensor.Zeros([k]);
        var variance = Tensor.Ones([k]);
        var y2 = LongTailOps.StandardizeLogits(zt, Eps, (mean, variance, 1e-4));
        Assert.Equal(y.ToDoubleArray(), y2.ToDoubleArray());
        var (em, ev) = (new double[k], Enumerable.Repeat(1.0, k).ToArray());
        LogitNormReference.EmaUpdate(z, n, k, 1e-4, em, ev);
        TestUtil.AssertClose(em, mean.ToDoubleArray(), $"running mean ({n}, {k})", seed, 1e-9, 1e-6);
        TestUtil.AssertClose(ev, variance.ToDoubleArray(), $"running variance ({n}, {k})", seed, 1e-9, 1e-6);
    }

    [Fact]
    public void StridedLogitsAreReadAsTheirValues()
    {
        var g = TestUtil.Fresh(out var seed);
        var z = TestUtil.Logits(g, 6, 7, -5, 5);
        using var scope = DisposeScope.Begin();
        var wide = TestUtil.Float(z, 6, 7).Narrow(1, 1, 5);   // rows of 5 inside rows of 7
        Assert.False(wide.IsContiguous);
        var y = LongTailOps.StandardizeLogits(wide, Eps);
        var picked = Enumerable.Range(0, 30).Select(e => z[e / 5 * 7 + 1 + e % 5]).ToArray();
        TestUtil.AssertClose(LogitNormReference.Standardize(picked, 6, 5, Eps), y.ToDoubleArray(), "strided logits", seed, 1e-6, 1e-6);
    }

    [Fact]
    public void BadArgumentsAreNamed()
    {
        using var scope = DisposeScope.Begin();
        var z = Tensor.Zeros([4, 3]);
        var one = Assert.Throws<ArgumentException>(() => LongTailOps.StandardizeLogits(Tensor.Zeros([1, 3]), Eps));
        Assert.Contains("at least 2 rows", one.Message);
        var rank = Assert.Throws<ArgumentException>(() => LongTailOps.StandardizeLogits(Tensor.Zeros([12]), Eps));
        Assert.Contains("float32 [N, K]", rank.Message);
        var eps = Assert.Throws<ArgumentException>(() => LongTailOps.StandardizeLogits(z, -1));
        Assert.Contains("eps", eps.Message);
        var length = Assert.Throws<ArgumentException>(() => LongTailOps.StandardizeLogits(z, Eps, (Tensor.Zeros([2]), Tensor.Ones([3]), 0.1)));
        Assert.Contains("running mean must be float32 [3]", length.Message);
        var shared = Tensor.Zeros([3]);
        var same = Assert.Throws<ArgumentException>(() => LongTailOps.StandardizeLogits(z, Eps, (shared, shared, 0.1)));
        Assert.Contains("separate storage", same.Message);
        var momentum = Assert.Throws<ArgumentException>(() => LongTailOps.StandardizeLogits(z, Eps, (Tensor.Zeros([3]), Tensor.Ones([3]), 0)));
        Assert.Contains("momentum", momentum.Message);
    }
}
