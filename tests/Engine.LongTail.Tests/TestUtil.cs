// Helpers of the long-tail tests: the core tests' fresh seeds, NaN poisoning and tolerance checks (linked from
// tests/Engine.Core.Tests/TestUtil.cs), plus random batches of logits and labels with the shapes the
// spec cares about (absent classes, all-background batches, one RoI, empty, LVIS width, extreme logits).
namespace Engine.LongTail.Tests;

public static class TestUtil
{
    /// <summary>A fresh seed with NaN-poisoned allocations (the core tests' helper).</summary>
    public static Generator Fresh(out ulong seed) => Engine.Tests.TestUtil.Fresh(out seed);

    public static void AssertClose(IReadOnlyList<double> expected, IReadOnlyList<double> actual, string what, ulong seed,
                                   double atol = 1e-5, double rtol = 1e-4) =>
        Engine.Tests.TestUtil.AssertClose(expected, actual, what, seed, atol, rtol);

    public static void AssertClose(double expected, double actual, string what, ulong seed, double atol = 1e-5, double rtol = 1e-4) =>
        AssertClose([expected], [actual], what, seed, atol, rtol);

    public static double[] Uniform(Generator g, int count, double low, double high)
    {
        var r = new double[count];
        for (var i = 0; i < r.Length; i++) r[i] = low + (high - low) * g.NextDouble();
        return r;
    }

    /// <summary>Logits rounded to float32 (so the double reference sees exactly what the engine sees).</summary>
    public static double[] Logits(Generator g, int n, int k, double low = -4, double high = 4) =>
        Uniform(g, n * k, low, high).Select(v => (double)(float)v).ToArray();

    /// <summary>Labels with about <paramref name="backgroundFraction"/> background (= c) and foreground drawn from only
    /// the first half of the classes (so the other half is absent from the batch).</summary>
    public static long[] Labels(Generator g, int n, int c, double backgroundFraction = 0.6)
    {
        var present = Math.Max(1, c / 2);
        var y = new long[n];
        for (var i = 0; i < n; i++) y[i] = g.NextDouble() < backgroundFraction ? c : g.NextInt64(present);
        return y;
    }

    public static Tensor Float(double[] values, params int[] shape) => Tensor.FromDoubles(values, shape);

    public static Tensor Long(long[] values) => Tensor.From(values, values.Length);

    /// <summary>The batch shapes every loss is checked on: (name, N, C, background fraction, logit range).</summary>
    public static IEnumerable<(string Name, int N, int C, double Background, double Range)> Cases()
    {
        yield return ("random", 37, 9, 0.6, 4);
        yield return ("single RoI", 1, 9, 0, 4);
        yield return ("all background", 13, 9, 1, 4);
        yield return ("empty batch", 0, 9, 0.5, 4);
        yield return ("extreme logits", 11, 9, 0.5, 60);
        yield return ("LVIS width", 40, 1203, 0.6, 6);
    }

    /// <summary>Runs <paramref name="loss"/> on (z, y) with autograd and returns (loss value, ∂loss/∂z).</summary>
    public static (double Loss, double[] Grad) LossAndGrad(IClassificationLoss loss, double[] z, long[] y, LossContext? context = null)
    {
        using var scope = DisposeScope.Begin();
        var zt = Float(z, y.Length, loss.LogitCount).RequireGrad();
        var yt = Long(y);
        var l = loss.Loss(zt, yt, context);
        Assert.Equal(0, l.Rank);
        l.Backward();
        return (l.Item(), zt.Grad!.ToDoubleArray());
    }
}
