// FrozenBatchNorm2d and GroupNorm against the double references in NormReference, forward and backward.
using Engine.Nn;
using Engine.Reference;

namespace Engine.Tests.Nn;

public class NormLayerTests
{
    // float32 forward/backward against double: a handful of float32 roundings per element (mean, variance, sqrt,
    // divide) of values of order 1 → a few 1e-7 relative; 2e-5 absolute + 1e-4 relative leaves a wide margin while
    // still catching any wrong index or formula (errors of order 1e-1).
    private const double Atol = 2e-5, Rtol = 1e-4;

    private static void SetRandom(Tensor t, Generator g, double lo, double hi)
    {
        using (GradMode.NoGrad()) Init.Uniform(t, g, lo, hi);
    }

    // ---- FrozenBatchNorm2d ----

    [Fact]
    public void FrozenBatchNormMatchesTheReferenceForwardAndBackward()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (n, c, h, w) in new[] { (2, 3, 5, 7), (1, 1, 1, 1), (3, 17, 2, 9), (0, 4, 3, 3) })
        {
            using var bn = new FrozenBatchNorm2d(c);
            SetRandom(bn.Weight, g, -2, 2);
            SetRandom(bn.Bias, g, -1, 1);
            SetRandom(bn.RunningMean, g, -1, 1);
            SetRandom(bn.RunningVar, g, 0.1, 3);
            var (wt, bs, mean, var) = (bn.Weight.Value.ToDoubleArray(), bn.Bias.Value.ToDoubleArray(), bn.RunningMean.Value.ToDoubleArray(), bn.RunningVar.Value.ToDoubleArray());
            var rx = RefTensor.Random(g, [n, c, h, w], -3, 3);
            var u = RefTensor.Random(g, [n, c, h, w]);
            using var x = TestUtil.NonContiguous(rx).RequireGrad();
            using var y = bn.Forward(x);
            var what = $"frozen_bn {ShapeUtil.Format(rx.Shape)}";
            TestUtil.AssertClose(new RefTensor(rx.Shape, NormReference.FrozenBatchNormForward(rx.Data, n, c, h * w, wt, bs, mean, var, 1e-5)), y, what, seed, Atol, Rtol);
            using var gy = u.ToTensor();
            y.Backward(gy);
            TestUtil.AssertClose(new RefTensor(rx.Shape, NormReference.FrozenBatchNormBackward(u.Data, n, c, h * w, wt, var, 1e-5)), x.Grad!, what + " dx", seed, Atol, Rtol);
            Assert.All(bn.NamedBuffers(), b => Assert.Null(b.Buffer.Value.Grad));
        }
    }

    [Fact]
    public void FrozenBatchNormReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        var (n, c, s) = (2, 3, 4);
        var wt = RefTensor.Random(g, [c]).Data;
        var mean = RefTensor.Random(g, [c]).Data;
        var bs = RefTensor.Random(g, [c]).Data;
        var var = RefTensor.Random(g, [c], 0.2, 2).Data;
        var result = Gradcheck.Check(
            inp => NormReference.FrozenBatchNormForward(inp[0], n, c, s, wt, bs, mean, var, 1e-5),
            (inp, dy) => [NormReference.FrozenBatchNormBackward(dy, n, c, s, wt, var, 1e-5)],
            [RefTensor.Random(g, [n * c * s]).Data], g);
        Assert.True(result.Passed, $"{result} (seed {seed})");
    }

    [Fact]
    public void FrozenBatchNormHasDetectron2BufferNamesAndNoParameters()
    {
        using var bn = new FrozenBatchNorm2d(8);
        Assert.Empty(bn.Parameters());
        Assert.Equal(["weight", "bias", "running_mean", "running_var"], bn.NamedBuffers().Select(b => b.Name));
        Assert.IsAssignableFrom<INormLayer>(bn);
        using var x = Tensor.Zeros([1, 5, 2, 2]);
        var e = Assert.Throws<ArgumentException>(() => bn.Forward(x));
        Assert.Contains("FrozenBatchNorm2d(8)", e.Message);
        Assert.Contains("[1, 5, 2, 2]", e.Message);
    }

    // ---- GroupNorm ----

    public static TheoryData<int[], int, bool> GroupNormCases => new()
    {
        { [2, 6, 5, 3], 3, true },
        { [3, 8, 7], 2, true },             // (N, C, L)
        { [1, 4, 3, 3, 2], 4, true },       // 3-D spatial, one channel per group
        { [2, 5, 9], 1, false },            // one group = layer norm over (C, L), no affine
        { [4, 6], 6, true },                // (N, C): groups of size one normalize to 0, y = bias
        { [2, 12, 11, 13], 4, true },       // big enough for parallel reductions
        { [0, 4, 3], 2, true },             // empty batch
    };

    [Theory]
    [MemberData(nameof(GroupNormCases))]
    public void GroupNormMatchesTheReferenceForwardAndBackward(int[] shape, int groups, bool affine)
    {
        var g = TestUtil.Fresh(out var seed);
        var (n, c) = (shape[0], shape[1]);
        var s = (int)ShapeUtil.Numel(shape.AsSpan(2));
        using var gn = new GroupNorm(groups, c, 1e-5, affine);
        double[]? wt = null, bs = null;
        if (affine)
        {
            SetRandom(gn.Weight!, g, -2, 2);
            SetRandom(gn.Bias!, g, -1, 1);
            (wt, bs) = (gn.Weight!.Value.ToDoubleArray(), gn.Bias!.Value.ToDoubleArray());
        }
        else Assert.Empty(gn.Parameters());
        // a common offset makes the mean matter; unit-scale spread keeps the variance well conditioned in float32
        var rx = RefTensor.Random(g, shape, -1, 1).Map(v => v + 0.5);
        using var x = TestUtil.NonContiguous(rx).RequireGrad();
        using var y = gn.Forward(x);
        var what = $"group_norm G={groups} {ShapeUtil.Format(shape)}";
        TestUtil.AssertClose(new RefTensor(shape, NormReference.GroupNormForward(rx.Data, n, c, s, groups, wt, bs, 1e-5)), y, what, seed, Atol, Rtol);

        var u = RefTensor.Random(g, shape);
        using var gy = u.ToTensor();
        y.Backward(gy);
        var (dx, dw, db) = NormReference.GroupNormBackward(rx.Data, n, c, s, groups, wt, 1e-5, u.Data);
        // dx is a difference of sums over the group (Σ dx̂, Σ dx̂·x̂) scaled by 1/σ: allow the sums' rounding
        TestUtil.AssertClose(new RefTensor(shape, dx), x.Grad!, what + " dx", seed, 1e-4, 1e-3);
        if (affine)
        {
            TestUtil.AssertClose(new RefTensor([c], dw), gn.Weight!.Grad!, what + " dweight", seed, 1e-4, Rtol);
            TestUtil.AssertClose(new RefTensor([c], db), gn.Bias!.Grad!, what + " dbias", seed, 1e-4, Rtol);
        }
    }

    [Fact]
    public void GroupNormReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (n, c, s, groups) in new[] { (2, 4, 3, 2), (1, 3, 5, 1), (2, 3, 2, 3) })
        {
            var x = RefTensor.Random(g, [n * c * s]).Data;
            var w = RefTensor.Random(g, [c]).Data;
            var b = RefTensor.Random(g, [c]).Data;
            var result = Gradcheck.Check(
                inp => NormReference.GroupNormForward(inp[0], n, c, s, groups, inp[1], inp[2], 1e-5),
                (inp, dy) =>
                {
                    var (dx, dw, db) = NormReference.GroupNormBackward(inp[0], n, c, s, groups, inp[1], 1e-5, dy);
                    return [dx, dw, db];
                },
                [x, w, b], g);
            Assert.True(result.Passed, $"N={n} C={c} S={s} G={groups}: {result} (seed {seed})");
        }
    }

    [Fact]
    public void GroupNormGroupsOfSizeOneGiveTheBias()
    {
        var g = TestUtil.Fresh(out var seed);
        using var gn = new GroupNorm(3, 3);
        SetRandom(gn.Bias!, g, -1, 1);
        using var x = RefTensor.Random(g, [2, 3, 1, 1]).ToTensor();
        using var y = gn.Forward(x);
        var b = gn.Bias!.Value.ToDoubleArray();
        TestUtil.AssertClose([b[0], b[1], b[2], b[0], b[1], b[2]], y.ToDoubleArray(), "group of one element", seed, 0, 0);
    }

    [Fact]
    public void GroupNormRejectsBadConfigurationsAndInputs()
    {
        Assert.Contains("10 channels cannot be split into 4 groups", Assert.Throws<ArgumentException>(() => new GroupNorm(4, 10)).Message);
        using var gn = new GroupNorm(2, 4);
        Assert.Equal(["weight", "bias"], gn.NamedParameters().Select(p => p.Name));
        Assert.IsAssignableFrom<INormLayer>(gn);
        using var x = Tensor.Zeros([2, 6, 3]);
        var e = Assert.Throws<ArgumentException>(() => gn.Forward(x));
        Assert.Contains("GroupNorm(2, 4)", e.Message);
        Assert.Contains("[2, 6, 3]", e.Message);
    }
}
