// CRAT (section 3): the Fisher update, the weights (both query modes) and the transfused regressor gradient against
// the double reference over several iterations (odd sizes, absent classes, one positive, LVIS width); the "How to
// verify" items of 3.7, the CRAT row of section 8, the no-positive edge case of 3.6, state round trip with a
// bit-identical resume, and the error messages.
using Engine.LongTail.Reference;
using Engine.Reference;

namespace Engine.LongTail.Tests.Transfusion;

public class CratTransfuserTests
{
    private sealed record Batch(double[] X, double[] Deltas, double[] Targets, long[] Labels, int R, int D, int C, int N);

    /// <summary>Embeddings ≥ 0 (after ReLU), deltas and targets in float32, positives among the first half of the classes.</summary>
    private static Batch MakeBatch(Generator g, int r, int d, int c, double background = 0.5, int extraRows = 0)
    {
        var x = TestUtil.Uniform(g, r * d, 0, 2).Select(v => (double)(float)v).ToArray();
        var deltas = TestUtil.Logits(g, r, 4 * c, -2, 2);
        var targets = TestUtil.Logits(g, r, 4, -2, 2);
        return new Batch(x, deltas, targets, TestUtil.Labels(g, r, c, background), r, d, c, r + extraRows);
    }

    private static (double[] Grad, double Extra, double[] Weights) RunEngine(CratTransfuser crat, Batch b, double[] incoming)
    {
        using var scope = DisposeScope.Begin();
        var deltas = TestUtil.Float(b.Deltas, b.R, 4 * b.C).RequireGrad();
        using var result = crat.Transfuse(deltas, TestUtil.Float(b.X, b.R, b.D), TestUtil.Float(b.Targets, b.R, 4), TestUtil.Long(b.Labels), b.N);
        Assert.Equal(b.Deltas, result.BoxDeltas.ToDoubleArray());
        result.BoxDeltas.Backward(TestUtil.Float(incoming, b.R, 4 * b.C));
        return (deltas.Grad!.ToDoubleArray(), result.ExtraLoss, crat.LastWeights!);
    }

    [Theory]
    [InlineData(CratQuery.FirstSample)]
    [InlineData(CratQuery.PerSample)]
    public void IterationsMatchReference(CratQuery query)
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (r, d, c, bg) in new[] { (37, 13, 9, 0.5), (1, 7, 5, 0.0), (23, 5, 1203, 0.3), (11, 3, 1, 0.4) })
        {
            using var crat = new CratTransfuser(c, d, query, fisherRate: 0.3, boxWeight: 0.05);
            var fisher = new double[c * 4 * d];
            for (var it = 0; it < 3; it++)
            {
                var b = MakeBatch(g, r, d, c, bg, extraRows: it);
                var baseGrad = CratReference.BoxLossGradient(b.Deltas, b.Targets, b.Labels, c, b.N);
                var (grad, extra, weights) = RunEngine(crat, b, baseGrad);
                CratReference.FisherUpdate(fisher, b.X, b.Deltas, b.Targets, b.Labels, d, c, b.N, 0.3);
                var w = CratReference.Weights(query, fisher, b.X, b.Deltas, b.Targets, b.Labels, d, c, b.N, CratTransfuser.DefaultTemperature);
                var what = $"{query} R={r} D={d} C={c} iteration {it}";
                using var f = crat.Fisher();
                // float32 state of double-accumulated values: relative rounding 6e-8 per update
                TestUtil.AssertClose(fisher, f.ToDoubleArray(), $"{what}: Fisher", seed, 1e-12, 1e-6);
                // cosines from float32 state (≈1e-7 relative) divided by T = 0.05 move the softmax by ≈ 2e-6 relative
                TestUtil.AssertClose(w, weights, $"{what}: weights", seed, 1e-7, 1e-4);
                var trans = CratReference.TransfusionGradient(w, b.Deltas, b.Targets, b.Labels, c, 0.05);
                TestUtil.AssertClose(baseGrad.Zip(trans, (p, q) => p + q).ToArray(), grad, $"{what}: transfused gradient", seed, 1e-8, 1e-4);
                TestUtil.AssertClose(CratReference.TransfusionLoss(w, b.Deltas, b.Targets, b.Labels, c, 0.05), extra, $"{what}: extra loss", seed, 1e-9, 1e-4);
            }
        }
    }

    [Fact]
    public void WeightRowsSumToOneAndExcludeTheLabel()
    {
        var g = TestUtil.Fresh(out var seed);
        const int r = 29, d = 6, c = 11;
        using var crat = new CratTransfuser(c, d, CratQuery.PerSample);
        // every class seen once (gate open everywhere), then a batch whose rows of w are checked
        var all = MakeBatch(g, c, d, c, 0);
        Array.Copy(Enumerable.Range(0, c).Select(i => (long)i).ToArray(), all.Labels, c);
        RunEngine(crat, all, new double[c * 4 * c]);
        var b = MakeBatch(g, r, d, c);
        RunEngine(crat, b, new double[r * 4 * c]);
        var w = crat.LastWeights!;
        for (var n = 0; n < r; n++)
        {
            var sum = Enumerable.Range(0, c).Sum(j => w[n * c + j]);
            if (b.Labels[n] == c) { Assert.Equal(0, sum); continue; }
            Assert.Equal(0, w[n * c + b.Labels[n]]);
            TestUtil.AssertClose(1, sum, $"row {n} of w", seed, 1e-12, 1e-12);
        }
    }

    [Theory]
    [InlineData(CratQuery.FirstSample)]
    [InlineData(CratQuery.PerSample)]
    public void EqualFisherRowsGiveUniformWeightsAndScalingARowChangesNothing(CratQuery query)
    {
        var g = TestUtil.Fresh(out var seed);
        const int r = 17, d = 5, c = 8;
        using var crat = new CratTransfuser(c, d, query);
        var b = MakeBatch(g, r, d, c);
        var row = TestUtil.Uniform(g, 4 * d, 0.1, 1);
        var equal = Enumerable.Range(0, c).SelectMany(_ => row).ToArray();
        using (var state = new Engine.Nn.StateDict()) { state.Add("fisher_box", TestUtil.Float(equal, c, 4 * d)); crat.LoadStateDict(state); }
        using (var w = Weights(crat, b))
        {
            var values = w.ToDoubleArray();
            for (var n = 0; n < r; n++)
                for (var j = 0; j < c; j++)
                    if (b.Labels[n] < c && j != b.Labels[n]) TestUtil.AssertClose(1.0 / (c - 1), values[n * c + j], $"uniform w[{n},{j}]", seed, 1e-7, 1e-6);
        }
        // distinct rows, then each row scaled by its own positive factor: cosines, hence w, unchanged
        var distinct = TestUtil.Uniform(g, c * 4 * d, 0, 1);
        var scaled = distinct.Select((v, i) => v * Math.Pow(10, i / (4 * d) % 5 - 2)).ToArray();
        double[] before, after;
        using (var state = new Engine.Nn.StateDict()) { state.Add("fisher_box", TestUtil.Float(distinct, c, 4 * d)); crat.LoadStateDict(state); }
        using (var w = Weights(crat, b)) before = w.ToDoubleArray();
        using (var state = new Engine.Nn.StateDict()) { state.Add("fisher_box", TestUtil.Float(scaled, c, 4 * d)); crat.LoadStateDict(state); }
        using (var w = Weights(crat, b)) after = w.ToDoubleArray();
        // float32 rounding of the scaled rows changes cosines by ≈1e-7, amplified 20× by 1/T
        TestUtil.AssertClose(before, after, "w after scaling Fisher rows", seed, 1e-7, 1e-4);
    }

    private static Tensor Weights(CratTransfuser crat, Batch b)
    {
        using var scope = DisposeScope.Begin();
        var w = crat.Weights(TestUtil.Float(b.Deltas, b.R, 4 * b.C), TestUtil.Float(b.X, b.R, b.D), TestUtil.Float(b.Targets, b.R, 4), TestUtil.Long(b.Labels), b.N);
        return w.MoveToOuterScope();
    }

    [Fact]
    public void ZeroBoxWeightGivesTheBaselineGradientExactly()
    {
        // section 8: λ_b = λ_m = 0 reproduces the baseline gradients bit for bit (the bank still updates)
        var g = TestUtil.Fresh(out _);
        const int r = 31, d = 7, c = 13;
        using var crat = new CratTransfuser(c, d, boxWeight: 0);
        for (var it = 0; it < 2; it++)
        {
            var b = MakeBatch(g, r, d, c);
            var incoming = TestUtil.Logits(g, r, 4 * c);
            var (grad, extra, _) = RunEngine(crat, b, incoming);
            Assert.Equal(incoming, grad);
            Assert.Equal(0, extra);
        }
        using var f = crat.Fisher();
        Assert.Contains(f.ToDoubleArray(), v => v > 0);
    }

    [Fact]
    public void ClosedFormBatchGradientMatchesFiniteDifferencesAndTheBank()
    {
        var g = TestUtil.Fresh(out var seed);
        const int r = 9, d = 4, c = 3;
        var b = MakeBatch(g, r, d, c, 0.3);
        var w0 = TestUtil.Uniform(g, 4 * c * d, -1, 1);
        var b0 = TestUtil.Uniform(g, 4 * c, -1, 1);
        double[] Forward(double[][] p) => [CratReference.BoxLoss(CratReference.Deltas(b.X, p[0], p[1], r, d, c), b.Targets, b.Labels, c, b.N)];
        double[][] Vjp(double[][] p, double[] up)
        {
            var deltas = CratReference.Deltas(b.X, p[0], p[1], r, d, c);
            var blocks = CratReference.BatchGradient(b.X, deltas, b.Targets, b.Labels, d, c, b.N);
            var gw = new double[4 * c * d];
            for (var j = 0; j < c; j++)
                for (var f = 0; f < d; f++)
                    for (var k = 0; k < 4; k++) gw[(4 * j + k) * d + f] = up[0] * blocks[j * 4 * d + 4 * f + k];
            var gb = CratReference.BoxLossGradient(deltas, b.Targets, b.Labels, c, b.N);
            var sumB = new double[4 * c];
            for (var n = 0; n < r; n++) for (var j = 0; j < 4 * c; j++) sumB[j] += up[0] * gb[n * 4 * c + j];
            return [gw, sumB];
        }
        var check = Gradcheck.Check(Forward, Vjp, [w0, b0], g);
        Assert.True(check.Passed, $"closed-form G vs finite differences: {check} (seed {seed})");

        // the engine's bank with a = 1 holds exactly g_c² of the batch's classes
        var deltasNow = CratReference.Deltas(b.X, w0, b0, r, d, c).Select(v => (double)(float)v).ToArray();
        var bb = b with { Deltas = deltasNow };
        using var crat = new CratTransfuser(c, d, fisherRate: 1);
        RunEngine(crat, bb, new double[r * 4 * c]);
        var blocks = CratReference.BatchGradient(bb.X, bb.Deltas, bb.Targets, bb.Labels, d, c, bb.N);
        using var fisher = crat.Fisher();
        TestUtil.AssertClose(blocks.Select(v => v * v).ToArray(), fisher.ToDoubleArray(), "bank with a = 1", seed, 1e-12, 1e-6);
    }

    [Fact]
    public void TransfusedRegressorGradientIsTheWeightedSignedEmbeddingSum()
    {
        // 3.7: dL_trans/dW_c (row k) = λ_b·Σ_n u_c·w_{n,c}·sign(r_{n,c,k})·x_n, through the engine's matmul and the transform
        var g = TestUtil.Fresh(out var seed);
        const int r = 21, d = 6, c = 7;
        const double lambda = 0.5;
        var b = MakeBatch(g, r, d, c, 0.4);
        var wt = TestUtil.Uniform(g, d * 4 * c, -1, 1).Select(v => (double)(float)v).ToArray();
        using var crat = new CratTransfuser(c, d, CratQuery.PerSample, boxWeight: lambda);
        // one earlier batch opens the gate of some classes
        RunEngine(crat, MakeBatch(g, r, d, c, 0.4), new double[r * 4 * c]);
        double[] gradW, deltas;
        using (var scope = DisposeScope.Begin())
        {
            var x = TestUtil.Float(b.X, r, d);
            var wtT = TestUtil.Float(wt, d, 4 * c).RequireGrad();
            var dl = x.Matmul(wtT);
            deltas = dl.ToDoubleArray();
            using var result = crat.Transfuse(dl, x, TestUtil.Float(b.Targets, r, 4), TestUtil.Long(b.Labels), b.N);
            result.BoxDeltas.Backward(Tensor.Zeros([r, 4 * c]));
            gradW = wtT.Grad!.ToDoubleArray();
        }
        var w = crat.LastWeights!;
        var expected = new double[d * 4 * c];
        for (var n = 0; n < r; n++)
            for (var j = 0; j < c; j++)
                for (var k = 0; k < 4; k++)
                {
                    var s = Math.Sign(deltas[n * 4 * c + 4 * j + k] - b.Targets[n * 4 + k]);
                    for (var f = 0; f < d; f++) expected[f * 4 * c + 4 * j + k] += lambda * w[n * c + j] * s * b.X[n * d + f];
                }
        // float32 matmul of the float32 extra gradient: ≈ 1e-7 relative per term over 21 terms
        TestUtil.AssertClose(expected, gradW, "∂L_trans/∂W", seed, 1e-6, 1e-4);
    }

    [Fact]
    public void RepeatedBatchFollowsTheClosedFormAndUnseenClassesGetNoTransfusion()
    {
        var g = TestUtil.Fresh(out var seed);
        const int r = 19, d = 5, c = 10, k = 7;
        const double a = 0.2;
        var b = MakeBatch(g, r, d, c, 0.3);
        using var crat = new CratTransfuser(c, d, fisherRate: a, boxWeight: 1);
        double[] grad = [];
        for (var it = 0; it < k; it++) grad = RunEngine(crat, b, new double[r * 4 * c]).Grad;
        var blocks = CratReference.BatchGradient(b.X, b.Deltas, b.Targets, b.Labels, d, c, b.N);
        using var fisher = crat.Fisher();
        // k float32 EMA steps: ≈ k·6e-8 relative
        TestUtil.AssertClose(blocks.Select(v => (1 - Math.Pow(1 - a, k)) * v * v).ToArray(), fisher.ToDoubleArray(), "F after k equal batches", seed, 1e-12, 1e-5);
        // TestUtil.Labels draws positives from the first half only: the second half never had a positive
        var seen = b.Labels.Where(l => l < c).Distinct().ToHashSet();
        for (var n = 0; n < r; n++)
            for (var j = 0; j < c; j++)
                for (var q = 0; q < 4; q++)
                {
                    var v = grad[n * 4 * c + 4 * j + q];
                    if (!seen.Contains(j)) Assert.True(v == 0, $"class {j} never seen got gradient {v} (seed {seed})");
                }
        Assert.Contains(grad, v => v != 0);
    }

    [Fact]
    public void BatchWithoutPositivesSkipsUpdateAndExtraLoss()
    {
        var g = TestUtil.Fresh(out _);
        const int r = 12, d = 4, c = 6;
        using var crat = new CratTransfuser(c, d, boxWeight: 1);
        RunEngine(crat, MakeBatch(g, r, d, c, 0.2), new double[r * 4 * c]);
        using var before = crat.Fisher();
        var b = MakeBatch(g, r, d, c, 1.0);
        var incoming = TestUtil.Logits(g, r, 4 * c);
        var (grad, extra, _) = RunEngine(crat, b, incoming);
        Assert.Equal(incoming, grad);
        Assert.Equal(0, extra);
        using var after = crat.Fisher();
        Assert.Equal(before.ToDoubleArray(), after.ToDoubleArray());
        // the empty batch too
        var empty = new Batch([], [], [], [], 0, d, c, 1);
        Assert.Empty(RunEngine(crat, empty, []).Grad);
    }

    [Fact]
    public void StateRoundTripResumesBitIdentically()
    {
        var g = TestUtil.Fresh(out _);
        const int r = 15, d = 6, c = 9;
        var batches = Enumerable.Range(0, 5).Select(_ => MakeBatch(g, r, d, c)).ToArray();
        using var a = new CratTransfuser(c, d, CratQuery.PerSample, boxWeight: 0.01);
        for (var i = 0; i < 3; i++) RunEngine(a, batches[i], new double[r * 4 * c]);
        using var b = new CratTransfuser(c, d, CratQuery.PerSample, boxWeight: 0.01);
        using (var state = a.StateDict()) b.LoadStateDict(state);
        for (var i = 3; i < 5; i++)
        {
            var incoming = CratReference.BoxLossGradient(batches[i].Deltas, batches[i].Targets, batches[i].Labels, c, r);
            var ra = RunEngine(a, batches[i], incoming);
            var rb = RunEngine(b, batches[i], incoming);
            Assert.Equal(ra.Grad, rb.Grad);
            Assert.Equal(ra.Weights, rb.Weights);
            Assert.Equal(ra.Extra, rb.Extra);
        }
        using var fa = a.Fisher();
        using var fb = b.Fisher();
        Assert.Equal(fa.ToDoubleArray(), fb.ToDoubleArray());
    }

    [Fact]
    public void BadInputsNameTheCallAndTheFix()
    {
        using var crat = new CratTransfuser(4, 3);
        using var scope = DisposeScope.Begin();
        var e = Assert.Throws<ArgumentException>(() => crat.Transfuse(Tensor.Zeros([5, 15]), Tensor.Zeros([5, 3]), Tensor.Zeros([5, 4]), Tensor.Zeros([5], DType.Int64), 5));
        Assert.Contains("(R, 16)", e.Message);
        e = Assert.Throws<ArgumentException>(() => crat.Transfuse(Tensor.Zeros([5, 16]), Tensor.Zeros([5, 3]), Tensor.Zeros([5, 4]), Tensor.Full([5], 5, DType.Int64), 5));
        Assert.Contains("label 5", e.Message);
        e = Assert.Throws<ArgumentException>(() => crat.Transfuse(Tensor.Zeros([5, 16]), Tensor.Zeros([5, 3]), Tensor.Zeros([5, 4]), Tensor.Zeros([5], DType.Int64), 4));
        Assert.Contains("normalizer", e.Message);
        using var state = new Engine.Nn.StateDict();
        state.Add("fisher_box", Tensor.Zeros([3, 12]));
        e = Assert.Throws<ArgumentException>(() => crat.LoadStateDict(state));
        Assert.Contains("fisher_box", e.Message);
    }

    [Fact]
    public void MaskTransfusionMatchesReferenceAndIsUngated()
    {
        var g = TestUtil.Fresh(out var seed);
        const int r = 17, d = 5, c = 9, h = 5, w = 3;
        const double lambda = 0.7;
        // reference backward against finite differences
        {
            const int p = 2, cc = 3, hw = 4;
            var wts = TestUtil.Uniform(g, p * cc, 0, 1);
            var tgt = TestUtil.Uniform(g, p * hw, 0, 1).Select(v => v < 0.5 ? 0.0 : 1.0).ToArray();
            var check = Gradcheck.Check(
                x => [CratReference.MaskTransfusionLoss(wts, x[0], tgt, p, cc, hw, lambda)],
                (x, up) => [CratReference.MaskTransfusionGradient(wts, x[0], tgt, p, cc, hw, lambda).Select(v => v * up[0]).ToArray()],
                [TestUtil.Uniform(g, p * cc * hw, -3, 3)], g);
            Assert.True(check.Passed, $"mask transfusion gradient vs finite differences: {check} (seed {seed})");
        }
        foreach (var query in new[] { CratQuery.FirstSample, CratQuery.PerSample })
        {
            using var crat = new CratTransfuser(c, d, query, fisherRate: 0.5, maskWeight: lambda);
            var fisher = new double[c * 4 * d];
            for (var it = 0; it < 2; it++)
            {
                var b = MakeBatch(g, r, d, c, 0.4);
                RunEngine(crat, b, new double[r * 4 * c]);
                CratReference.FisherUpdate(fisher, b.X, b.Deltas, b.Targets, b.Labels, d, c, b.N, 0.5);
                var ungated = CratReference.UngatedWeights(query, fisher, b.X, b.Deltas, b.Targets, b.Labels, d, c, b.N, CratTransfuser.DefaultTemperature);
                var p = b.Labels.Count(l => l < c);
                var m = TestUtil.Logits(g, p, c * h * w, -6, 6);
                var t = TestUtil.Uniform(g, p * h * w, 0, 1).Select(v => v < 0.4 ? 0.0 : 1.0).ToArray();
                using var scope = DisposeScope.Begin();
                var mt = TestUtil.Float(m, p, c, h, w).RequireGrad();
                var loss = crat.MaskTransfusionLoss(mt, TestUtil.Float(t, p, h, w));
                loss.Backward();
                var what = $"{query} iteration {it}";
                // double accumulation of float32 logits: summation order only
                TestUtil.AssertClose(CratReference.MaskTransfusionLoss(ungated, m, t, p, c, h * w, lambda), loss.Item(), $"{what}: mask loss", seed, 1e-6, 1e-5);
                TestUtil.AssertClose(CratReference.MaskTransfusionGradient(ungated, m, t, p, c, h * w, lambda), mt.Grad!.ToDoubleArray(), $"{what}: mask gradient", seed, 1e-8, 1e-4);
                // classes never seen (second half) still receive mask transfusion
                var grad = mt.Grad!.ToDoubleArray();
                Assert.Contains(Enumerable.Range(0, p * c * h * w).Where(k => k / (h * w) % c >= c / 2 + 1), k => grad[k] != 0);
            }
        }
    }

    [Fact]
    public void ZeroMaskWeightAndNoPositivesGiveNoMaskTerm()
    {
        var g = TestUtil.Fresh(out _);
        const int r = 9, d = 3, c = 5;
        using var off = new CratTransfuser(c, d, maskWeight: 0);
        var b = MakeBatch(g, r, d, c, 0.3);
        RunEngine(off, b, new double[r * 4 * c]);
        var p = b.Labels.Count(l => l < c);
        using (var scope = DisposeScope.Begin())
        {
            var mt = TestUtil.Float(TestUtil.Logits(g, p, c * 4), p, c, 2, 2).RequireGrad();
            var loss = off.MaskTransfusionLoss(mt, Tensor.Zeros([p, 2, 2]));
            Assert.Equal(0, loss.Item());
            Assert.False(loss.RequiresGrad);
        }
        using var crat = new CratTransfuser(c, d);
        Assert.Throws<InvalidOperationException>(() => crat.MaskTransfusionLoss(Tensor.Zeros([0, c, 2, 2]), Tensor.Zeros([0, 2, 2])));
        RunEngine(crat, MakeBatch(g, r, d, c, 1.0), new double[r * 4 * c]);
        using (var scope = DisposeScope.Begin())
        {
            Assert.Equal(0, crat.MaskTransfusionLoss(Tensor.Zeros([0, c, 2, 2]), Tensor.Zeros([0, 2, 2])).Item());
            var e = Assert.Throws<ArgumentException>(() => crat.MaskTransfusionLoss(Tensor.Zeros([1, c, 2, 2]), Tensor.Zeros([1, 2, 2])));
            Assert.Contains("P = 0", e.Message);
        }
    }

    [Fact]
    public void ClosedFormBatchGradientMatchesAutograd()
    {
        // 3.7: G = ∂L_box/∂W from the engine's autograd (matmul, abs, masked sum) equals the closed form, for an odd
        // batch with absent classes and for the LVIS width
        var g = TestUtil.Fresh(out var seed);
        foreach (var (r, d, c) in new[] { (27, 7, 11), (13, 3, 1203) })
        {
            var b = MakeBatch(g, r, d, c, 0.4, extraRows: 5);
            var wt = TestUtil.Uniform(g, d * 4 * c, -1, 1).Select(v => (double)(float)v).ToArray();
            var tiled = new double[r * 4 * c];
            var mask = new double[r * 4 * c];
            for (var n = 0; n < r; n++)
                for (var j = 0; j < 4 * c; j++)
                {
                    tiled[n * 4 * c + j] = b.Targets[n * 4 + j % 4];
                    mask[n * 4 * c + j] = b.Labels[n] < c && j / 4 == b.Labels[n] ? 1 : 0;
                }
            double[] grad, deltas;
            using (var scope = DisposeScope.Begin())
            {
                var x = TestUtil.Float(b.X, r, d);
                var w = TestUtil.Float(wt, d, 4 * c).RequireGrad();
                var dl = x.Matmul(w);
                deltas = dl.ToDoubleArray();
                var loss = dl.Sub(TestUtil.Float(tiled, r, 4 * c)).Abs().Mul(TestUtil.Float(mask, r, 4 * c)).Sum().Div(b.N);
                loss.Backward();
                grad = w.Grad!.ToDoubleArray();
            }
            var blocks = CratReference.BatchGradient(b.X, deltas, b.Targets, b.Labels, d, c, b.N);
            var expected = new double[d * 4 * c];
            for (var j = 0; j < c; j++)
                for (var f = 0; f < d; f++)
                    for (var k = 0; k < 4; k++) expected[f * 4 * c + 4 * j + k] = blocks[j * 4 * d + 4 * f + k];
            // float32 matmul of ±1/N over ≤ 27 rows
            TestUtil.AssertClose(expected, grad, $"∂L_box/∂W R={r} D={d} C={c}", seed, 1e-6, 1e-4);
        }
    }
}
