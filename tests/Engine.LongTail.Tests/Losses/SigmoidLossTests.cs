// Plain BCE, EQL (1.4), EQLv2 (1.5) and the Federated loss (1.7) against the double reference, on every batch shape
// of TestUtil.Cases (classes absent from the batch, one RoI, all background, empty, extreme logits, LVIS width),
// plus each section's "Verify" items and the section 8 reductions.
using Engine.LongTail.Reference;
using static Engine.LongTail.Reference.SigmoidLossReference;

namespace Engine.LongTail.Tests.Losses;

public class SigmoidLossTests
{
    // float32 kernel vs double reference: per-row sums of up to 1204 float terms (relative rounding ~1e-6) and
    // gradients of size ≤ 1/N; 1e-4 relative leaves two orders of margin
    private const double LossAtol = 1e-5, LossRtol = 1e-4, GradAtol = 1e-6, GradRtol = 1e-4;

    private static long[] ImageCounts(Generator g, int c) => Enumerable.Range(0, c).Select(_ => 1 + g.NextInt64(2000)).ToArray();

    [Fact]
    public void SigmoidBceMatchesReference()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (name, n, c, bg, range) in TestUtil.Cases())
        {
            using var loss = new SigmoidBceLoss(c);
            var z = TestUtil.Logits(g, n, c + 1, -range, range);
            var y = TestUtil.Labels(g, n, c, bg);
            var t = Targets(y, c + 1);
            var w = Enumerable.Repeat(1.0, z.Length).ToArray();
            var (value, grad) = TestUtil.LossAndGrad(loss, z, y);
            var scale = 1.0 / Math.Max(n, 1);
            TestUtil.AssertClose(Loss(z, t, w, null, scale), value, $"BCE loss, {name}", seed, LossAtol, LossRtol);
            TestUtil.AssertClose(Gradient(z, t, w, null, scale), grad, $"BCE gradient, {name}", seed, GradAtol, GradRtol);
        }
    }

    [Fact]
    public void EqlMatchesReference()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (name, n, c, bg, range) in TestUtil.Cases())
        {
            var m = ImageCounts(g, c);
            const long images = 1_000_000;
            using var loss = new EqlLoss(m, images, lambda: 0.0011);
            Assert.Equal(c, loss.LogitCount);
            var tail = m.Select(v => (double)v / images < 0.0011).ToArray();
            var z = TestUtil.Logits(g, n, c, -range, range);
            var y = TestUtil.Labels(g, n, c, bg);
            var w = EqlWeights(y, c, tail);
            var (value, grad) = TestUtil.LossAndGrad(loss, z, y);
            var scale = 1.0 / Math.Max(n, 1);
            TestUtil.AssertClose(Loss(z, Targets(y, c), w, null, scale), value, $"EQL loss, {name}", seed, LossAtol, LossRtol);
            TestUtil.AssertClose(Gradient(z, Targets(y, c), w, null, scale), grad, $"EQL gradient, {name}", seed, GradAtol, GradRtol);
        }
    }

    [Fact]
    public void EqlVerifyItems()
    {
        // 1.4 Verify and section 8: λ = 0 gives plain BCE over C classes; background rows have all weights 1; for a
        // foreground RoI of class y, w_iy = 1 and w_ij = 0 exactly for tail j ≠ y (gradient exactly 0 there)
        var g = TestUtil.Fresh(out var seed);
        const int n = 29, c = 11;
        var m = ImageCounts(g, c);
        var z = TestUtil.Logits(g, n, c);
        var y = TestUtil.Labels(g, n, c);
        using (var plain = new EqlLoss(m, 1000, lambda: 0))
        {
            Assert.All(plain.IsTail, t => Assert.False(t));
            var (value, grad) = TestUtil.LossAndGrad(plain, z, y);
            var ones = Enumerable.Repeat(1.0, z.Length).ToArray();
            TestUtil.AssertClose(Loss(z, Targets(y, c), ones, null, 1.0 / n), value, "EQL λ = 0 vs BCE over C", seed, LossAtol, LossRtol);
            TestUtil.AssertClose(Gradient(z, Targets(y, c), ones, null, 1.0 / n), grad, "EQL λ = 0 gradient", seed, GradAtol, GradRtol);
        }
        using var eql = new EqlLoss(m, 1000, lambda: 0.9); // most classes tail
        var (_, g2) = TestUtil.LossAndGrad(eql, z, y);
        for (var i = 0; i < n; i++)
            for (var j = 0; j < c; j++)
            {
                var fg = y[i] < c;
                var zero = fg && eql.IsTail[j] && j != y[i];
                Assert.True(zero ? g2[i * c + j] == 0 : g2[i * c + j] != 0, $"EQL weight of ({i}, {j}), label {y[i]}, tail {eql.IsTail[j]} (seed {seed})");
            }
    }

    [Fact]
    public void Eqlv2MatchesReferenceAcrossIterations()
    {
        // weights from the state before each batch, statistics Σ w·|σ − y| added after (1.5), for three iterations
        var g = TestUtil.Fresh(out var seed);
        foreach (var (name, n, c, bg, range) in TestUtil.Cases())
        {
            using var loss = new Eqlv2Loss(c);
            var gPos = new double[c];
            var gNeg = new double[c];
            var ratio = Enumerable.Repeat(100.0, c).ToArray();
            for (var it = 0; it < 3; it++)
            {
                var z = TestUtil.Logits(g, n, c + 1, -range, range);
                var y = TestUtil.Labels(g, n, c, bg);
                var (p, q) = Eqlv2ColumnWeights(ratio, 12, 0.8, 4);
                var w = Eqlv2Weights(y, p, q);
                var (value, grad) = TestUtil.LossAndGrad(loss, z, y);
                var scale = 1.0 / Math.Max(n, 1);
                var t = Targets(y, c + 1);
                TestUtil.AssertClose(Loss(z, t, w, null, scale), value, $"EQLv2 loss, {name}, iteration {it}", seed, LossAtol, LossRtol);
                TestUtil.AssertClose(Gradient(z, t, w, null, scale), grad, $"EQLv2 gradient, {name}, iteration {it}", seed, GradAtol, GradRtol);
                var (sp, sn) = Eqlv2Statistics(z, y, w, c);
                for (var j = 0; j < c; j++)
                {
                    gPos[j] += sp[j];
                    gNeg[j] += sn[j];
                    ratio[j] = gPos[j] / (gNeg[j] + 1e-10);
                }
                using var state = loss.StateDict();
                // accumulated sums: float32 state, float per-chunk partials
                TestUtil.AssertClose(gPos, state["pos_grad"].ToDoubleArray(), $"EQLv2 G+, {name}, iteration {it}", seed, 1e-5, 1e-4);
                TestUtil.AssertClose(gNeg, state["neg_grad"].ToDoubleArray(), $"EQLv2 G-, {name}, iteration {it}", seed, 1e-5, 1e-4);
                // r = G+/(G- + 1e-10) amplifies the relative error of a tiny G-; compare where G- is not tiny
                var r = state["pos_neg"].ToDoubleArray();
                for (var j = 0; j < c; j++)
                    if (gNeg[j] > 1e-3) TestUtil.AssertClose(ratio[j], r[j], $"EQLv2 r[{j}], {name}", seed, 1e-5, 1e-3);
                    else ratio[j] = r[j]; // follow the engine's state where the ratio is ill-conditioned
            }
        }
    }

    [Fact]
    public void Eqlv2VerifyItems()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 31, c = 7;
        var z = TestUtil.Logits(g, n, c + 1);
        var y = TestUtil.Labels(g, n, c);
        using var loss = new Eqlv2Loss(c);
        // initial state r = 100: every weight is 1 and the loss is BCE over C+1 outputs (section 8)
        var (p0, q0) = loss.Weights(Device.Cpu);
        Assert.All(p0.ToDoubleArray(), v => Assert.Equal(1.0, v));
        Assert.All(q0.ToDoubleArray(), v => Assert.Equal(1.0, v));
        p0.Dispose();
        q0.Dispose();
        var ones = Enumerable.Repeat(1.0, z.Length).ToArray();
        var (value, _) = TestUtil.LossAndGrad(loss, z, y, LossContext.Frozen);
        TestUtil.AssertClose(Loss(z, Targets(y, c + 1), ones, null, 1.0 / n), value, "EQLv2 at r = 100 vs BCE", seed, LossAtol, LossRtol);

        // r = μ gives q = 0.5 and p = 1 + α/2
        using (var state = loss.StateDict())
        {
            using (GradMode.NoGrad()) state["pos_neg"].Fill(0.8);
            loss.LoadStateDict(state);
        }
        var (p, q) = loss.Weights(Device.Cpu);
        Assert.All(q.ToDoubleArray().Take(c), v => Assert.Equal(0.5, v, 6));
        Assert.All(p.ToDoubleArray().Take(c), v => Assert.Equal(3.0, v, 6));
        p.Dispose();
        q.Dispose();

        // G+ and G- never decrease; weights of an iteration do not depend on that iteration's batch
        double[] lastPos = new double[c], lastNeg = new double[c];
        for (var it = 0; it < 4; it++)
        {
            var zi = TestUtil.Logits(g, n, c + 1);
            var yi = TestUtil.Labels(g, n, c);
            var (vFrozen, _) = TestUtil.LossAndGrad(loss, zi, yi, LossContext.Frozen);
            var (vTrain, _) = TestUtil.LossAndGrad(loss, zi, yi);
            Assert.Equal(vFrozen, vTrain); // same weights whether or not this batch is then added
            using var state = loss.StateDict();
            var pos = state["pos_grad"].ToDoubleArray();
            var neg = state["neg_grad"].ToDoubleArray();
            for (var j = 0; j < c; j++) Assert.True(pos[j] >= lastPos[j] && neg[j] >= lastNeg[j], $"G± decreased at class {j} (seed {seed})");
            (lastPos, lastNeg) = (pos, neg);
        }
        // edge case of 1.5: a class that had negatives but never a positive has r = 0, q = σ(−9.6), p ≈ 5
        using var fresh = new Eqlv2Loss(c);
        var allBg = Enumerable.Repeat((long)c, n).ToArray();
        TestUtil.LossAndGrad(fresh, z, allBg);
        var (pe, qe) = fresh.Weights(Device.Cpu);
        var expectedQ = 1 / (1 + Math.Exp(9.6));
        Assert.All(qe.ToDoubleArray().Take(c), v => Assert.Equal(expectedQ, v, 7));
        Assert.All(pe.ToDoubleArray().Take(c), v => Assert.Equal(1 + 4 * (1 - expectedQ), v, 5));
        pe.Dispose();
        qe.Dispose();
    }

    [Fact]
    public void FederatedMatchesReference()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (name, n, c, bg, range) in TestUtil.Cases())
        {
            var m = ImageCounts(g, c);
            using var loss = new FederatedLoss(m, new Generator(seed ^ 0x5bd1e995UL), numSampled: Math.Min(50, c / 2 + 1));
            var z = TestUtil.Logits(g, n, c + 1, -range, range);
            var y = TestUtil.Labels(g, n, c, bg);
            var (value, grad) = TestUtil.LossAndGrad(loss, z, y);
            var set = loss.LastClassSet;
            // F = the batch's foreground labels plus sampled classes; |U| counts background, so |F| = K − [bg present] when enough classes exist
            var labelsFg = y.Where(l => l < c).Select(l => (int)l).Distinct().ToArray();
            Assert.True(labelsFg.All(set.Contains), $"Federated set misses a batch label, {name} (seed {seed})");
            var u = y.Distinct().Count();
            Assert.Equal(Math.Max(loss.NumSampled - u, 0) + labelsFg.Length, set.Count);
            var w = FederatedWeights(n, c, set);
            var scale = 1.0 / Math.Max(n, 1);
            TestUtil.AssertClose(Loss(z, Targets(y, c + 1), w, null, scale), value, $"Federated loss, {name}", seed, LossAtol, LossRtol);
            TestUtil.AssertClose(Gradient(z, Targets(y, c + 1), w, null, scale), grad, $"Federated gradient, {name}", seed, GradAtol, GradRtol);
            for (var i = 0; i < n; i++) Assert.Equal(0.0, grad[i * (c + 1) + c]); // background logit untrained
        }
    }

    [Fact]
    public void FederatedVerifyItems()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 23, c = 8;
        var m = ImageCounts(g, c);
        var z = TestUtil.Logits(g, n, c + 1);
        var y = TestUtil.Labels(g, n, c);
        // section 8: K > C (sample count clamped) penalizes every class: plain BCE over C classes
        using (var all = new FederatedLoss(m, new Generator(seed), numSampled: c + 5))
        {
            var (value, grad) = TestUtil.LossAndGrad(all, z, y);
            Assert.Equal(Enumerable.Range(0, c), all.LastClassSet);
            var w = FederatedWeights(n, c, Enumerable.Range(0, c));
            TestUtil.AssertClose(Loss(z, Targets(y, c + 1), w, null, 1.0 / n), value, "Federated K > C vs BCE over C", seed, LossAtol, LossRtol);
            TestUtil.AssertClose(Gradient(z, Targets(y, c + 1), w, null, 1.0 / n), grad, "Federated K > C gradient", seed, GradAtol, GradRtol);
        }
        // the sampling histogram over many draws follows m_c^0.5 (one sample per draw: one class when the batch is all background)
        long[] counts = [1, 4, 9, 16, 25, 36, 49, 64];
        using var one = new FederatedLoss(counts, new Generator(seed), numSampled: 2);
        var hist = new double[c];
        const int draws = 40_000;
        var bgOnly = new long[] { c };
        for (var d = 0; d < draws; d++)
            foreach (var cls in one.SampleClassSet(bgOnly)) hist[cls]++;
        var total = counts.Sum(v => Math.Sqrt(v));
        for (var j = 0; j < c; j++)
        {
            var expected = Math.Sqrt(counts[j]) / total;
            var sd = Math.Sqrt(expected * (1 - expected) / draws);
            Assert.True(Math.Abs(hist[j] / draws - expected) < 5 * sd, $"class {j}: frequency {hist[j] / draws:F4}, expected {expected:F4} (seed {seed})");
        }
        // classes with m_c = 0 are never drawn, and the draw count is clamped to the classes available
        using var sparse = new FederatedLoss([0, 5, 0, 7], new Generator(seed), numSampled: 10);
        Assert.Equal([1, 3], sparse.SampleClassSet(bgOnly));
    }

    [Fact]
    public void StateRoundTripsAndResumesBitIdentically()
    {
        // EQLv2 statistics and the Federated generator: save after 2 iterations, run 2 more; a fresh loss loaded from
        // the saved state must reproduce those 2 iterations exactly
        var g = TestUtil.Fresh(out var seed);
        const int n = 41, c = 13;
        var batches = Enumerable.Range(0, 4).Select(_ => (TestUtil.Logits(g, n, c + 1), TestUtil.Labels(g, n, c))).ToArray();
        var m = ImageCounts(g, c);
        Func<IClassificationLoss>[] makers = [() => new Eqlv2Loss(c), () => new FederatedLoss(m, new Generator(seed), numSampled: 5)];
        foreach (var make in makers)
        {
            using var a = make();
            TestUtil.LossAndGrad(a, batches[0].Item1, batches[0].Item2);
            TestUtil.LossAndGrad(a, batches[1].Item1, batches[1].Item2);
            using var saved = a.StateDict();
            var expected = batches.Skip(2).Select(b => TestUtil.LossAndGrad(a, b.Item1, b.Item2)).ToArray();
            using var b = make();
            b.LoadStateDict(saved);
            var actual = batches.Skip(2).Select(bt => TestUtil.LossAndGrad(b, bt.Item1, bt.Item2)).ToArray();
            for (var i = 0; i < 2; i++)
            {
                Assert.Equal(expected[i].Loss, actual[i].Loss);
                Assert.Equal(expected[i].Grad, actual[i].Grad);
            }
            using var s1 = a.StateDict();
            using var s2 = b.StateDict();
            foreach (var key in s1.Keys) Assert.Equal(s1[key].ToDoubleArray(), s2[key].ToDoubleArray());
        }
    }

    [Fact]
    public void ScoresFollowEachMethodsTestRule()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 5, c = 6;
        var z = TestUtil.Logits(g, n, c + 1);
        using var zt = TestUtil.Float(z, n, c + 1);
        using var eqlv2 = new Eqlv2Loss(c);
        using var s = eqlv2.Scores(zt);
        var expected = new double[n * (c + 1)];
        for (var i = 0; i < n; i++)
        {
            var bg = Sigmoid(z[i * (c + 1) + c]);
            for (var j = 0; j < c; j++) expected[i * (c + 1) + j] = Sigmoid(z[i * (c + 1) + j]) * (1 - bg);
            expected[i * (c + 1) + c] = bg;
        }
        TestUtil.AssertClose(expected, s.ToDoubleArray(), "EQLv2 scores σ(z_c)(1 − σ(z_C))", seed, 1e-6, 1e-5);
        using var eql = new EqlLoss(Enumerable.Repeat(5L, c).ToArray(), 100);
        using var zc = TestUtil.Float(z.Take(n * c).ToArray(), n, c);
        using var se = eql.Scores(zc);
        var e2 = new double[n * (c + 1)];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < c; j++) e2[i * (c + 1) + j] = Sigmoid(z[i * c + j]);
        TestUtil.AssertClose(e2, se.ToDoubleArray(), "EQL scores σ(z_c), background 0", seed, 1e-6, 1e-5);
    }

    [Fact]
    public void BadInputsGiveClearErrors()
    {
        using var loss = new Eqlv2Loss(5);
        using var z = Tensor.Zeros([3, 5]);
        using var y = Tensor.From(new long[] { 0, 1, 5 }, 3);
        var e = Assert.Throws<ArgumentException>(() => loss.Loss(z, y));
        Assert.Contains("[N, 6]", e.Message);
        using var z6 = Tensor.Zeros([3, 6]);
        using var bad = Tensor.From(new long[] { 0, 7, 5 }, 3);
        e = Assert.Throws<ArgumentException>(() => loss.Loss(z6, bad));
        Assert.Contains("label 7 of RoI 1", e.Message);
        using var wrongType = Tensor.Zeros([3]);
        Assert.Throws<ArgumentException>(() => loss.Loss(z6, wrongType));
        using var other = new Eqlv2Loss(4);
        using var state = other.StateDict();
        var le = Assert.Throws<InvalidOperationException>(() => loss.LoadStateDict(state));
        Assert.Contains("pos_grad", le.Message);
    }
}
