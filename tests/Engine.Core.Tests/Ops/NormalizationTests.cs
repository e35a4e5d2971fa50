// Tensor.GroupNorm and Tensor.BatchNorm against the double references in NormalizationReference: the reference
// backward against finite differences first, then the fused forward and backward against the reference on fresh
// random inputs (odd sizes, groups of one element, 1×1 maps, N = 1, several eps, no affine, non-contiguous
// inputs, NaN-poisoned outputs), the running-statistics update, and the argument errors.
using Engine.Reference;

namespace Engine.Tests.Ops;

public class NormalizationTests
{
    // Forward, float32 against double: each output is (x − μ)·scale + shift with μ, scale and shift accurate to a
    // few float32 ulps (1.2e-7 relative) of values of order 1–3; 2e-5 absolute + 1e-4 relative leaves a wide
    // margin and still catches a wrong index or formula (errors of order 0.1).
    private const double Atol = 2e-5, Rtol = 1e-4;
    // dx is a difference of group sums (Σ dy·w, Σ dy·w·x̂ over up to a few thousand terms) scaled by rstd: the
    // float32 products and block sums carry ~1e-6 relative error of Σ|terms|, which is up to ~1e2 times the
    // result for cancelling sums, hence 1e-4 absolute; dweight and dbias are plain sums of the same size.
    private const double GradAtol = 1e-4, GradRtol = 1e-3;

    private static double[] Data(Tensor t) => t.ToDoubleArray();

    // ---- group normalization ----

    public static TheoryData<int[], int, bool, double> GroupCases => new()
    {
        { [2, 6, 5, 7], 3, true, 1e-5 },
        { [2, 6, 1, 1], 3, true, 1e-5 },     // 1×1 maps: two values per group
        { [1, 6, 5, 7], 3, true, 1e-3 },     // N = 1
        { [3, 8, 7], 2, true, 0.1 },         // (N, C, L), large eps
        { [1, 4, 3, 3, 2], 4, true, 1e-5 },  // 3-D spatial, one channel per group
        { [2, 5, 9], 1, false, 1e-5 },       // one group (layer norm over C and L), no affine
        { [4, 6], 6, true, 1e-5 },           // (N, C): groups of one element normalize to 0, y = bias
        { [2, 64, 11, 13], 32, true, 1e-5 }, // detectron2's 32 groups, big enough to run in parallel
        { [3, 96, 45, 40], 32, true, 1e-5 }, // groups of 5400 values: several statistics blocks, odd tails
        { [0, 4, 3], 2, true, 1e-5 },        // empty batch
        { [2, 4, 0], 2, true, 1e-5 },        // empty maps
    };

    [Theory]
    [MemberData(nameof(GroupCases))]
    public void GroupNormMatchesTheReference(int[] shape, int groups, bool affine, double eps)
    {
        var g = TestUtil.Fresh(out var seed);
        var (n, c) = (shape[0], shape[1]);
        var s = (int)ShapeUtil.Numel(shape.AsSpan(2));
        var rw = affine ? RefTensor.Random(g, [c], -2, 2) : null;
        var rb = affine ? RefTensor.Random(g, [c], -1, 1) : null;
        // an offset makes the mean matter; unit-scale spread keeps the variance well conditioned in float32
        var rx = RefTensor.Random(g, shape, -1, 1).Map(v => (double)(float)(v + 0.5));
        var u = RefTensor.Random(g, shape);
        using var x = TestUtil.NonContiguous(rx).RequireGrad();
        using var w = rw?.ToTensor().RequireGrad();
        using var b = rb?.ToTensor().RequireGrad();
        using var y = Tensor.GroupNorm(x, groups, w, b, eps);
        var what = $"group_norm G={groups} {ShapeUtil.Format(shape)} eps={eps}{(affine ? "" : " no affine")}";
        TestUtil.AssertClose(new RefTensor(shape, NormalizationReference.GroupNormForward(rx.Data, n, c, s, groups, rw?.Data, rb?.Data, eps)),
                             y, what, seed, Atol, Rtol);

        using var gy = u.ToTensor();
        y.Backward(gy);
        var (dx, dw, db) = NormalizationReference.GroupNormBackward(rx.Data, n, c, s, groups, rw?.Data, eps, u.Data);
        TestUtil.AssertClose(new RefTensor(shape, dx), x.Grad!, what + " dx", seed, GradAtol, GradRtol);
        if (!affine) return;
        TestUtil.AssertClose(new RefTensor([c], dw), w!.Grad!, what + " dweight", seed, GradAtol, GradRtol);
        TestUtil.AssertClose(new RefTensor([c], db), b!.Grad!, what + " dbias", seed, GradAtol, GradRtol);
    }

    [Fact]
    public void GroupNormReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (n, c, s, groups, eps) in new[] { (2, 4, 3, 2, 1e-5), (1, 3, 5, 1, 1e-3), (2, 6, 2, 3, 1e-5), (2, 3, 1, 3, 0.5) })
        {
            var x = RefTensor.Random(g, [n * c * s]).Data;
            var w = RefTensor.Random(g, [c]).Data;
            var b = RefTensor.Random(g, [c]).Data;
            var result = Gradcheck.Check(
                inp => NormalizationReference.GroupNormForward(inp[0], n, c, s, groups, inp[1], inp[2], eps),
                (inp, dy) =>
                {
                    var (dx, dw, db) = NormalizationReference.GroupNormBackward(inp[0], n, c, s, groups, inp[1], eps, dy);
                    return [dx, dw, db];
                },
                [x, w, b], g);
            Assert.True(result.Passed, $"N={n} C={c} S={s} G={groups} eps={eps}: {result} (seed {seed})");
        }
    }

    /// <summary>The previous GroupNorm module's formula, composed of generic ops (autograd through all of them).</summary>
    private static Tensor ComposedGroupNorm(Tensor input, int groups, Tensor weight, Tensor bias, double eps)
    {
        var shape = input.ShapeArray();
        var perGroup = shape[1] / groups * (int)ShapeUtil.Numel(shape.AsSpan(2));
        using var grouped = input.Reshape(shape[0], groups, perGroup);
        using var mean = grouped.Mean(2, keepDim: true);
        using var centered = grouped.Sub(mean);
        using var sq = centered.Square();
        using var variance = sq.Mean(2, keepDim: true);
        using var ve = variance.Add(eps);
        using var sd = ve.Sqrt();
        using var normalized = centered.Div(sd);
        using var y = normalized.Reshape(shape);
        using var w = weight.Reshape(1, shape[1], 1, 1);
        using var b = bias.Reshape(1, shape[1], 1, 1);
        using var scaled = y.Mul(w);
        return scaled.Add(b);
    }

    [Fact]
    public void GroupNormAgreesWithTheComposedFormulaItReplaces()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var shape in new[] { new[] { 2, 32, 20, 20 }, [3, 64, 7, 9], [1, 128, 5, 5] })
        {
            var c = shape[1];
            var rx = RefTensor.Random(g, shape, -2, 3);
            var rw = RefTensor.Random(g, [c], 0.5, 1.5);
            var rb = RefTensor.Random(g, [c], -0.5, 0.5);
            var u = RefTensor.Random(g, shape);
            Tensor[] Run(Func<Tensor, Tensor, Tensor, Tensor> f)
            {
                using var x = rx.ToTensor().RequireGrad();
                using var w = rw.ToTensor().RequireGrad();
                using var b = rb.ToTensor().RequireGrad();
                using var y = f(x, w, b);
                using var gy = u.ToTensor();
                y.Backward(gy);
                return [y.Detach(), x.Grad!.Clone(), w.Grad!.Clone(), b.Grad!.Clone()];
            }
            var fused = Run((x, w, b) => Tensor.GroupNorm(x, 32, w, b, 1e-5));
            var composed = Run((x, w, b) => ComposedGroupNorm(x, 32, w, b, 1e-5));
            string[] names = ["y", "dx", "dweight", "dbias"];
            for (var k = 0; k < 4; k++)
                // both are float32 evaluations of the same formula: the tolerance is two float32 errors (see above)
                TestUtil.AssertClose(Data(composed[k]), Data(fused[k]), $"fused vs composed {names[k]} {ShapeUtil.Format(shape)}", seed,
                                     k == 0 ? Atol : GradAtol, k == 0 ? Rtol : GradRtol);
            foreach (var t in fused.Concat(composed)) t.Dispose();
        }
    }

    [Fact]
    public void GroupNormIsAccurateForALargeMean()
    {
        // x = 1000 + U(−1, 1): a one-pass Σx² − (Σx)²/m in float32 would lose every digit of σ² ≈ 1/3; the two
        // passes keep the full accuracy, so the usual tolerances hold.
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [2, 8, 17, 19];
        var rx = RefTensor.Random(g, shape, 999, 1001);
        var u = RefTensor.Random(g, shape);
        using var x = rx.ToTensor().RequireGrad();
        using var y = Tensor.GroupNorm(x, 4);
        TestUtil.AssertClose(new RefTensor(shape, NormalizationReference.GroupNormForward(rx.Data, 2, 8, 17 * 19, 4, null, null, 1e-5)),
                             y, "group_norm mean 1000", seed, Atol, Rtol);
        using var gy = u.ToTensor();
        y.Backward(gy);
        var (dx, _, _) = NormalizationReference.GroupNormBackward(rx.Data, 2, 8, 17 * 19, 4, null, 1e-5, u.Data);
        TestUtil.AssertClose(new RefTensor(shape, dx), x.Grad!, "group_norm mean 1000 dx", seed, GradAtol, GradRtol);
    }

    [Fact]
    public void GroupNormWithOnlyWeightOrOnlyBiasGetsTheirGradients()
    {
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [2, 6, 3, 5];
        var rx = RefTensor.Random(g, shape);
        var rp = RefTensor.Random(g, [6], 0.5, 2);
        var u = RefTensor.Random(g, shape);
        foreach (var weightOnly in new[] { true, false })
        {
            using var x = rx.ToTensor();   // no gradient for x: only the parameter's is computed
            using var p = rp.ToTensor().RequireGrad();
            using var y = weightOnly ? Tensor.GroupNorm(x, 3, p, null) : Tensor.GroupNorm(x, 3, null, p);
            TestUtil.AssertClose(new RefTensor(shape, NormalizationReference.GroupNormForward(rx.Data, 2, 6, 15, 3, weightOnly ? rp.Data : null,
                                 weightOnly ? null : rp.Data, 1e-5)), y, $"weight only {weightOnly}", seed, Atol, Rtol);
            using var gy = u.ToTensor();
            y.Backward(gy);
            var (_, dw, db) = NormalizationReference.GroupNormBackward(rx.Data, 2, 6, 15, 3, weightOnly ? rp.Data : null, 1e-5, u.Data);
            TestUtil.AssertClose(new RefTensor([6], weightOnly ? dw : db), p.Grad!, $"weight only {weightOnly} grad", seed, GradAtol, GradRtol);
            Assert.Null(x.Grad);
        }
    }

    [Fact]
    public void GroupNormRejectsBadArguments()
    {
        using var x = Tensor.Zeros([2, 6, 3, 3]);
        Assert.Contains("6 channels of input [2, 6, 3, 3] cannot be split into 4 groups", Assert.Throws<ArgumentException>(() => Tensor.GroupNorm(x, 4)).Message);
        using var w = Tensor.Ones([5]);
        Assert.Contains("weight must be a float32 (6) tensor", Assert.Throws<ArgumentException>(() => Tensor.GroupNorm(x, 3, w)).Message);
        using var xi = Tensor.Zeros([2, 6], DType.Int64);
        Assert.Contains("needs a float32 (N, C, ...) input, got int64 [2, 6]", Assert.Throws<ArgumentException>(() => Tensor.GroupNorm(xi, 3)).Message);
        using var x1 = Tensor.Zeros([6]);
        Assert.Contains("group_norm", Assert.Throws<ArgumentException>(() => Tensor.GroupNorm(x1, 3)).Message);
        Assert.Contains("eps must be ≥ 0", Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.GroupNorm(x, 3, eps: -1)).Message);
    }

    // ---- batch normalization ----

    public static TheoryData<int[], bool, double> BatchCases => new()
    {
        { [4, 3, 5, 7], true, 1e-5 },
        { [8, 6, 1, 1], true, 1e-5 },      // 1×1 maps: statistics over the batch only
        { [1, 5, 3, 3], true, 1e-3 },      // N = 1: statistics over the map only
        { [2, 7, 9], false, 0.1 },         // (N, C, L), no affine, large eps
        { [5, 4], true, 1e-5 },            // (N, C), as BatchNorm1d
        { [8, 32, 20, 20], true, 1e-5 },   // parallel over channels, several statistics blocks
        { [3, 2, 0, 4], true, 1e-5 },      // empty maps
    };

    [Theory]
    [MemberData(nameof(BatchCases))]
    public void BatchNormTrainingMatchesTheReference(int[] shape, bool affine, double eps)
    {
        var g = TestUtil.Fresh(out var seed);
        var (n, c) = (shape[0], shape[1]);
        var s = (int)ShapeUtil.Numel(shape.AsSpan(2));
        var rw = affine ? RefTensor.Random(g, [c], -2, 2) : null;
        var rb = affine ? RefTensor.Random(g, [c], -1, 1) : null;
        var rx = RefTensor.Random(g, shape, -1, 1).Map(v => (double)(float)(v + 0.5));
        var rm = RefTensor.Random(g, [c], -1, 1);
        var rv = RefTensor.Random(g, [c], 0.5, 2);
        var u = RefTensor.Random(g, shape);
        using var x = TestUtil.NonContiguous(rx).RequireGrad();
        using var w = rw?.ToTensor().RequireGrad();
        using var b = rb?.ToTensor().RequireGrad();
        using var runningMean = rm.ToTensor();
        using var runningVar = rv.ToTensor();
        using var y = Tensor.BatchNorm(x, runningMean, runningVar, w, b, training: true, momentum: 0.1, eps: eps);
        var what = $"batch_norm train {ShapeUtil.Format(shape)} eps={eps}{(affine ? "" : " no affine")}";
        TestUtil.AssertClose(new RefTensor(shape, NormalizationReference.BatchNormTrainForward(rx.Data, n, c, s, rw?.Data, rb?.Data, eps)),
                             y, what, seed, Atol, Rtol);

        // running statistics: moved 10 % toward the batch's mean and unbiased variance (none moved for an empty batch)
        var (mean, variance) = NormalizationReference.BatchNormStatistics(rx.Data, n, c, s);
        var (em, ev) = (rm.Data.ToArray(), rv.Data.ToArray());
        if (n * s > 0) NormalizationReference.BatchNormRunningUpdate(em, ev, mean, variance, (long)n * s, 0.1);
        TestUtil.AssertClose(em, Data(runningMean), what + " running_mean", seed, 1e-6, 1e-5);
        TestUtil.AssertClose(ev, Data(runningVar), what + " running_var", seed, 1e-6, 1e-5);

        using var gy = u.ToTensor();
        y.Backward(gy);
        var (dx, dw, db) = NormalizationReference.BatchNormTrainBackward(rx.Data, n, c, s, rw?.Data, eps, u.Data);
        TestUtil.AssertClose(new RefTensor(shape, dx), x.Grad!, what + " dx", seed, GradAtol, GradRtol);
        if (!affine) return;
        TestUtil.AssertClose(new RefTensor([c], dw), w!.Grad!, what + " dweight", seed, GradAtol, GradRtol);
        TestUtil.AssertClose(new RefTensor([c], db), b!.Grad!, what + " dbias", seed, GradAtol, GradRtol);
    }

    [Theory]
    [MemberData(nameof(BatchCases))]
    public void BatchNormEvaluationMatchesTheReference(int[] shape, bool affine, double eps)
    {
        var g = TestUtil.Fresh(out var seed);
        var (n, c) = (shape[0], shape[1]);
        var s = (int)ShapeUtil.Numel(shape.AsSpan(2));
        var rw = affine ? RefTensor.Random(g, [c], -2, 2) : null;
        var rb = affine ? RefTensor.Random(g, [c], -1, 1) : null;
        var rx = RefTensor.Random(g, shape, -2, 2);
        var rm = RefTensor.Random(g, [c], -1, 1);
        var rv = RefTensor.Random(g, [c], 0.2, 2);
        var u = RefTensor.Random(g, shape);
        using var x = TestUtil.NonContiguous(rx).RequireGrad();
        using var w = rw?.ToTensor().RequireGrad();
        using var b = rb?.ToTensor().RequireGrad();
        using var runningMean = rm.ToTensor();
        using var runningVar = rv.ToTensor();
        using var y = Tensor.BatchNorm(x, runningMean, runningVar, w, b, training: false, eps: eps);
        var what = $"batch_norm eval {ShapeUtil.Format(shape)} eps={eps}{(affine ? "" : " no affine")}";
        TestUtil.AssertClose(new RefTensor(shape, NormalizationReference.BatchNormForward(rx.Data, n, c, s, rm.Data, rv.Data, rw?.Data, rb?.Data, eps)),
                             y, what, seed, Atol, Rtol);
        // evaluation never moves the running statistics
        Assert.Equal(rm.Data, Data(runningMean));
        Assert.Equal(rv.Data, Data(runningVar));

        using var gy = u.ToTensor();
        y.Backward(gy);
        var (dx, dw, db) = NormalizationReference.BatchNormEvalBackward(rx.Data, n, c, s, rm.Data, rv.Data, rw?.Data, eps, u.Data);
        TestUtil.AssertClose(new RefTensor(shape, dx), x.Grad!, what + " dx", seed, GradAtol, GradRtol);
        if (!affine) return;
        TestUtil.AssertClose(new RefTensor([c], dw), w!.Grad!, what + " dweight", seed, GradAtol, GradRtol);
        TestUtil.AssertClose(new RefTensor([c], db), b!.Grad!, what + " dbias", seed, GradAtol, GradRtol);
    }

    /// <summary>BatchCases' shapes and affine flags (the scale backward takes no eps).</summary>
    public static TheoryData<int[], bool> ScaleBackwardCases()
    {
        var data = new TheoryData<int[], bool>();
        foreach (var row in BatchCases) data.Add((int[])row[0], (bool)row[1]);
        return data;
    }

    [Theory]
    [MemberData(nameof(ScaleBackwardCases))]
    public void BatchNormScaleBackwardIsTheGradientTimesTheChannelScale(int[] shape, bool affine)
    {
        // dx = (y > 0 ? dy : 0)·(float)(rstd·w), or dy·(float)(rstd·w) without the ReLU's output: a float mask and one
        // rounding of an exact double product, so the reference in double, rounded once, gives the expected bits
        // exactly; so does the two-pass form it replaces (ReluBackward, then Mul by the channel scale)
        var g = TestUtil.Fresh(out var seed);
        var c = shape[1];
        var count = (int)ShapeUtil.Numel(shape);
        var y = RefTensor.Random(g, shape, -1, 2).Data.Select(v => (float)v).ToArray();
        var dy = RefTensor.Random(g, shape, -3, 3).Data.Select(v => (float)v).ToArray();
        // the mask's edges: an output of exactly 0, a NaN output (masked), NaN and infinite gradients where it passes
        // and where it does not, a negative scale times a masked 0 (−0)
        if (count > 6)
        {
            (y[0], y[1], y[2], y[3]) = (0f, float.NaN, 1f, -1f);
            (dy[2], dy[3], dy[4], dy[5]) = (float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.NaN);
            (y[4], y[5]) = (0.5f, -0.5f);
        }
        var rstd = RefTensor.Random(g, [c], 0.2, 3).Data.Select(v => (float)v).ToArray();
        var w = affine ? RefTensor.Random(g, [c], -2, 2).Data.Select(v => (float)v).ToArray() : null;
        var s = count == 0 ? 0 : count / (shape[0] * c);
        using var yt = Tensor.From(y, shape);
        using var dyt = Tensor.From(dy, shape);
        using var rt = Tensor.From(rstd, c);
        using var wt = w is null ? null : Tensor.From(w, c);
        using var channelScale = w is null ? rt.Clone() : rt.Mul(wt!);
        using var broadcastScale = channelScale.View([1, c, .. Enumerable.Repeat(1, shape.Length - 2)]);
        static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();
        foreach (var masked in new[] { true, false })
        {
            var expected = new float[count];
            for (var i = 0; i < count; i++)
            {
                var ch = i / s % c;
                var scale = (float)((double)rstd[ch] * (w is null ? 1 : w[ch]));
                expected[i] = (float)((!masked || y[i] > 0 ? (double)dy[i] : 0.0) * scale);
            }
            using var dx = Tensor.Empty(shape);   // NaN-poisoned
            Backends.Cpu.BatchNormScaleBackward(dyt, masked ? yt : null, rt, wt, dx);
            var what = $"batch_norm_scale_backward {ShapeUtil.Format(shape)}{(affine ? "" : " no affine")}{(masked ? " masked" : "")} (seed {seed})";
            Assert.True(Bits(expected).SequenceEqual(Bits(dx.ToFloatArray())), what);

            using var passed = Tensor.Empty(shape);
            if (masked) Backends.Cpu.Binary(BinaryOp.ReluBackward, dyt, yt, passed);
            else passed.CopyFrom(dyt);
            using var twoPass = passed.Mul(broadcastScale);
            Assert.True(Bits(twoPass.ToFloatArray()).SequenceEqual(Bits(dx.ToFloatArray())), what + ": differs from (ReluBackward then) Mul");
        }
    }

    [Fact]
    public void BatchNormReferenceBackwardsPassGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (n, c, s, eps) in new[] { (3, 2, 4, 1e-5), (1, 3, 5, 1e-3), (4, 2, 1, 1e-5), (2, 1, 3, 0.5) })
        {
            var x = RefTensor.Random(g, [n * c * s]).Data;
            var w = RefTensor.Random(g, [c]).Data;
            var b = RefTensor.Random(g, [c]).Data;
            var train = Gradcheck.Check(
                inp => NormalizationReference.BatchNormTrainForward(inp[0], n, c, s, inp[1], inp[2], eps),
                (inp, dy) =>
                {
                    var (dx, dw, db) = NormalizationReference.BatchNormTrainBackward(inp[0], n, c, s, inp[1], eps, dy);
                    return [dx, dw, db];
                },
                [x, w, b], g);
            Assert.True(train.Passed, $"train N={n} C={c} S={s} eps={eps}: {train} (seed {seed})");

            var mean = RefTensor.Random(g, [c]).Data;
            var variance = RefTensor.Random(g, [c], 0.2, 2).Data;
            var eval = Gradcheck.Check(
                inp => NormalizationReference.BatchNormForward(inp[0], n, c, s, mean, variance, inp[1], inp[2], eps),
                (inp, dy) =>
                {
                    var (dx, dw, db) = NormalizationReference.BatchNormEvalBackward(inp[0], n, c, s, mean, variance, inp[1], eps, dy);
                    return [dx, dw, db];
                },
                [x, w, b], g);
            Assert.True(eval.Passed, $"eval N={n} C={c} S={s} eps={eps}: {eval} (seed {seed})");
        }
    }

    [Fact]
    public void BatchNormRunningStatisticsConvergeToTheDataStatistics()
    {
        // the same batch again and again: the running mean tends to the batch mean, the running variance to the
        // unbiased batch variance (geometrically, by 0.9 per step, so 200 steps leave < 1e-9 of the start)
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [4, 3, 2, 5];
        var rx = RefTensor.Random(g, shape, -3, 5);
        using var x = rx.ToTensor();
        using var runningMean = Tensor.Zeros([3]);
        using var runningVar = Tensor.Ones([3]);
        for (var step = 0; step < 200; step++)
        {
            using var y = Tensor.BatchNorm(x, runningMean, runningVar, null, null, training: true);
        }
        var (mean, variance) = NormalizationReference.BatchNormStatistics(rx.Data, 4, 3, 10);
        TestUtil.AssertClose(mean, Data(runningMean), "running_mean limit", seed, 1e-5, 1e-5);
        TestUtil.AssertClose(variance.Select(v => v * 40 / 39).ToArray(), Data(runningVar), "running_var limit (unbiased)", seed, 1e-5, 1e-5);
    }

    [Fact]
    public void BatchNormRejectsBadArguments()
    {
        using var x = Tensor.Zeros([2, 3, 4, 4]);
        using var m3 = Tensor.Zeros([3]);
        using var v3 = Tensor.Ones([3]);
        using var m4 = Tensor.Zeros([4]);
        Assert.Contains("runningMean must be a float32 (3) tensor", Assert.Throws<ArgumentException>(() => Tensor.BatchNorm(x, m4, v3, null, null, true)).Message);
        Assert.Contains("pass both runningMean and runningVar", Assert.Throws<ArgumentException>(() => Tensor.BatchNorm(x, m3, null, null, null, true)).Message);
        Assert.Contains("evaluation mode normalizes with the running statistics", Assert.Throws<ArgumentException>(() => Tensor.BatchNorm(x, null, null, null, null, false)).Message);
        using var single = Tensor.Zeros([1, 3, 1, 1]);
        Assert.Contains("more than one value per channel", Assert.Throws<ArgumentException>(() => Tensor.BatchNorm(single, m3, v3, null, null, true)).Message);
        Assert.Contains("momentum must be in [0, 1]", Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.BatchNorm(x, m3, v3, null, null, true, momentum: 2)).Message);
        using var b = Tensor.Zeros([2]);
        Assert.Contains("bias must be a float32 (3) tensor", Assert.Throws<ArgumentException>(() => Tensor.BatchNorm(x, m3, v3, null, b, true)).Message);
    }
}
