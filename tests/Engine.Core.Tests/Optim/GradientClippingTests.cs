// Global-norm clipping against a double reference, for several norm types and non-finite gradients; per-parameter
// clipping against the per-parameter reference.
using Engine.Nn;
using Engine.Optim;
using Engine.Reference;

namespace Engine.Tests.Optim;

public class GradientClippingTests
{
    private static (Parameter[] Ps, double[][] Grads) Setup(Generator g, double scale)
    {
        var shapes = new[] { new[] { 3, 4 }, new[] { 7 }, new[] { 2, 1, 5 }, new[] { 6 } };
        var ps = shapes.Select((s, i) => new Parameter($"p{i}", Tensor.Zeros(s))).ToArray();
        var grads = new double[ps.Length][];
        for (var i = 0; i < ps.Length - 1; i++)   // the last parameter has no gradient and is skipped
        {
            // rounded to float32 so the reference sees exactly the stored gradients
            grads[i] = RefTensor.Random(g, shapes[i], -scale, scale).Data.Select(v => (double)(float)v).ToArray();
            ps[i].Value.Grad = Tensor.FromDoubles(grads[i], shapes[i]).DetachFromScope();
        }
        grads[^1] = [];
        return (ps, grads);
    }

    /// <summary>(Σ|g|^q)^(1/q), or max |g| for q = ∞, over all gradient elements, in double.</summary>
    private static double ReferenceNorm(double[][] grads, double q)
    {
        var all = grads.SelectMany(x => x).Select(Math.Abs).ToArray();
        return double.IsPositiveInfinity(q) ? all.Max() : Math.Pow(all.Sum(v => Math.Pow(v, q)), 1 / q);
    }

    [Theory]
    [InlineData(2.0)]
    [InlineData(1.0)]
    [InlineData(3.0)]
    [InlineData(double.PositiveInfinity)]
    public void ReturnsTheTotalNormAndScalesOnlyWhenAboveTheLimit(double q)
    {
        var g = TestUtil.Fresh(out var seed);
        var (ps, grads) = Setup(g, 2);
        var norm = ReferenceNorm(grads, q);

        // a limit above the norm leaves every gradient as it was
        var total = GradientClipping.ClipByGlobalNorm(ps, norm * 1.5, q);
        Assert.True(Math.Abs(total - norm) <= 1e-5 * norm, $"q={q}: total {total}, expected {norm} (seed {seed})");
        for (var i = 0; i < ps.Length - 1; i++)
            TestUtil.AssertClose(grads[i], ps[i].Grad!.ToDoubleArray(), $"q={q} unclipped p{i}", seed, 0, 0);
        Assert.Null(ps[^1].Grad);

        // a limit below scales all gradients by max/(norm + 1e-6): the new norm is the limit
        var limit = norm / 4;
        total = GradientClipping.ClipByGlobalNorm(ps, limit, q);
        Assert.True(Math.Abs(total - norm) <= 1e-5 * norm, $"q={q}: total before clipping {total}, expected {norm} (seed {seed})");
        var coef = limit / (norm + 1e-6);
        for (var i = 0; i < ps.Length - 1; i++)
            TestUtil.AssertClose(grads[i].Select(v => v * coef).ToArray(), ps[i].Grad!.ToDoubleArray(), $"q={q} clipped p{i}", seed, 1e-6, 1e-5);
        var after = ReferenceNorm(ps.Take(ps.Length - 1).Select(p => p.Grad!.ToDoubleArray()).Append([]).ToArray(), q);
        Assert.True(Math.Abs(after - limit) <= 1e-5 * limit, $"q={q}: norm after clipping {after}, limit {limit} (seed {seed})");
        foreach (var p in ps) p.Dispose();
    }

    [Theory]
    [InlineData(float.PositiveInfinity, double.PositiveInfinity)]
    [InlineData(float.NaN, double.NaN)]
    public void ANonFiniteNormIsReturnedAndGradientsAreLeftAlone(float bad, double expected)
    {
        var g = TestUtil.Fresh(out _);
        var (ps, grads) = Setup(g, 1);
        using (GradMode.NoGrad())
        using (var v = Tensor.From([bad]))
        using (var slot = ps[1].Grad!.Slice(0, 3, 4))
            slot.CopyFrom(v);
        var before = ps.Take(3).Select(p => p.Grad!.ToFloatArray()).ToList();
        foreach (var q in new[] { 2.0, double.PositiveInfinity })
        {
            var total = GradientClipping.ClipByGlobalNorm(ps, 1.0, q);
            Assert.Equal(expected, total);
            for (var i = 0; i < 3; i++) Assert.Equal(before[i], ps[i].Grad!.ToFloatArray());
        }
        foreach (var p in ps) p.Dispose();
    }

    [Fact]
    public void NoGradientsGiveZeroAndBadArgumentsThrow()
    {
        using var p = new Parameter("w", Tensor.Zeros([3]));
        Assert.Equal(0, GradientClipping.ClipByGlobalNorm([p], 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipByGlobalNorm([p], -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => GradientClipping.ClipByGlobalNorm([p], 1, 0));
    }

    [Theory]
    [InlineData(2.0)]
    [InlineData(double.PositiveInfinity)]
    public void ClipEachByNormClipsEveryParameterByItsOwnNorm(double q)
    {
        var g = TestUtil.Fresh(out var seed);
        var (ps, grads) = Setup(g, 2);
        var norms = grads.Take(ps.Length - 1).Select(x => ReferenceNorm([x], q)).ToArray();
        // a limit between the norms: the larger ones are scaled to it, the smaller ones stay
        var limit = norms.Order().ElementAt(norms.Length / 2);
        var totals = GradientClipping.ClipEachByNorm(ps, limit, q);
        Assert.Equal(norms.Length, totals.Length);
        for (var i = 0; i < norms.Length; i++)
        {
            Assert.True(Math.Abs(totals[i] - norms[i]) <= 1e-5 * norms[i], $"q={q} p{i}: norm {totals[i]}, expected {norms[i]} (seed {seed})");
            var coef = Math.Min(1, limit / (norms[i] + 1e-6));
            TestUtil.AssertClose(grads[i].Select(v => v * coef).ToArray(), ps[i].Grad!.ToDoubleArray(), $"q={q} p{i}", seed, 1e-6, 1e-5);
        }
        Assert.Null(ps[^1].Grad);
        foreach (var p in ps) p.Dispose();
    }
}
