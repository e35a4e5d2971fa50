// FCBL (section 4.2) against the double reference across iterations (margins from the cumulative confusion, hard-negative
// mask, state update after the loss), on every batch shape, with the "How to verify" items of 4.5 that concern FCBL
// and the section 8 reduction.
using Engine.LongTail.Reference;
using static Engine.LongTail.Reference.SigmoidLossReference;

namespace Engine.LongTail.Tests.Losses;

public class FcblLossTests
{
    private const double LossAtol = 1e-5, LossRtol = 1e-4, GradAtol = 1e-6, GradRtol = 1e-4;

    [Fact]
    public void MatchesReferenceAcrossIterations()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (name, n, c, bg, range) in TestUtil.Cases())
        {
            foreach (var reweight in new[] { true, false })
            {
                using var loss = new FcblLoss(c, reweight: reweight);
                var a = new double[c * c];
                var counts = new double[c];
                for (var it = 0; it < 3; it++)
                {
                    var z = TestUtil.Logits(g, n, c + 1, -range, range);
                    var y = TestUtil.Labels(g, n, c, bg);
                    var d = FcblMargins(y, Confusion(a, counts), c, 0.85);
                    // the mask is a float32 decision in the engine (as in the code): compare with the same rounding
                    var w = reweight ? FcblMask(z, y, c, 0.7, float32: true) : Enumerable.Repeat(1.0, z.Length).ToArray();
                    var (value, grad) = TestUtil.LossAndGrad(loss, z, y);
                    if (reweight) AdoptEngineDecisionOnTies(w, z, y, c, 0.7, grad);
                    var scale = 1.0 / Math.Max(n, 1);
                    var what = $"FCBL (reweight {reweight}), {name}, iteration {it}";
                    TestUtil.AssertClose(Loss(z, Targets(y, c + 1), w, d, scale), value, what, seed, LossAtol, LossRtol);
                    TestUtil.AssertClose(Gradient(z, Targets(y, c + 1), w, d, scale), grad, what + " gradient", seed, GradAtol, GradRtol);
                    FcblAccumulate(z, y, c, a, counts);
                    using var state = loss.StateDict();
                    TestUtil.AssertClose(a, state["confusion"].ToDoubleArray(), what + " confusion", seed, 1e-5, 1e-5);
                    Assert.Equal(counts, state["counts"].ToDoubleArray());
                }
            }
        }
    }

    [Fact]
    public void ConfusionStaysFiniteForLogitsBeyondExpRange()
    {
        // |z| up to 300, past exp's float range (88.7): a softmax that does not subtract the row maximum makes ∞ / ∞ = NaN
        // rows in A, and every later margin NaN
        var g = TestUtil.Fresh(out var seed);
        const int n = 24, c = 7;
        using var loss = new FcblLoss(c);
        var z = TestUtil.Logits(g, n, c + 1, -300, 300);
        var y = TestUtil.Labels(g, n, c, 0.2);
        TestUtil.LossAndGrad(loss, z, y);
        var a = new double[c * c];
        var counts = new double[c];
        FcblAccumulate(z, y, c, a, counts);
        using var state = loss.StateDict();
        TestUtil.AssertClose(a, state["confusion"].ToDoubleArray(), "confusion with logits up to ±300", seed, 1e-5, 1e-5);
    }

    /// <summary>The mask compares probabilities; where π_j and the bar min(π_y, τ) are within float32 rounding of each
    /// other (a few ulps of σ, plus the rounding of 1 − π_C for the τ test) either decision is right, so the reference
    /// takes the engine's (gradient ≠ 0 ⇔ kept). Everywhere else the decisions must agree.</summary>
    private static void AdoptEngineDecisionOnTies(double[] mask, double[] z, long[] y, int c, double tau, double[] grad)
    {
        var k = c + 1;
        for (var i = 0; i < y.Length; i++)
        {
            if (y[i] >= c) continue;
            var notBg = 1 - Sigmoid(z[i * k + c]);
            var sy = Sigmoid(z[i * k + y[i]]);
            for (var j = 0; j < c; j++)
            {
                var sj = Sigmoid(z[i * k + j]);
                var nearY = Math.Abs(sj - sy) <= 5e-7 * Math.Max(sj, sy);
                var pj = sj * notBg;
                var nearTau = Math.Abs(pj - tau) <= tau * (5e-7 + 6e-8 / Math.Max(notBg, 1e-30));
                if (nearY || nearTau) mask[i * k + j] = grad[i * k + j] != 0 ? 1 : 0;
            }
        }
    }

    [Fact]
    public void VerifyItems()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 33, c = 9;
        var z = TestUtil.Logits(g, n, c + 1);
        var y = TestUtil.Labels(g, n, c, 0.3);
        // section 8 / 4.5: re-weighting off and an empty confusion matrix give BCE over C+1 outputs
        using (var off = new FcblLoss(c, reweight: false))
        {
            var ones = Enumerable.Repeat(1.0, z.Length).ToArray();
            var (value, grad) = TestUtil.LossAndGrad(off, z, y);
            TestUtil.AssertClose(Loss(z, Targets(y, c + 1), ones, null, 1.0 / n), value, "FCBL K = 0 vs BCE", seed, LossAtol, LossRtol);
            TestUtil.AssertClose(Gradient(z, Targets(y, c + 1), ones, null, 1.0 / n), grad, "FCBL K = 0 gradient", seed, GradAtol, GradRtol);
            // after an update every seen row of K sums to 1
            using var k = off.Confusion();
            var kv = k.ToDoubleArray();
            foreach (var cls in y.Where(l => l < c).Distinct())
                TestUtil.AssertClose(1.0, kv.Skip((int)cls * c).Take(c).Sum(), $"row {cls} of K", seed, 1e-5, 0);
        }
        // δ is antisymmetric and 0 for a symmetric K; bounded by α·ln 1000
        var a = TestUtil.Uniform(g, c * c, 0, 1);
        var cnt = Enumerable.Repeat(1.0, c).ToArray();
        var pairs = Enumerable.Range(0, c).SelectMany(i => Enumerable.Range(0, c).Select(j => (i, j))).Where(p => p.i != p.j).ToArray();
        var kk = Confusion(a, cnt);
        foreach (var (p, q) in pairs)
        {
            var dpq = FcblMargins([p], kk, c, 0.85)[q];
            var dqp = FcblMargins([q], kk, c, 0.85)[p];
            Assert.Equal(-dpq, dqp, 12);
            Assert.True(Math.Abs(dpq) <= 0.85 * Math.Log(1000) + 1e-12);
        }
        var sym = new double[c * c];
        for (var p = 0; p < c; p++)
            for (var q = 0; q < c; q++) sym[p * c + q] = a[Math.Min(p, q) * c + Math.Max(p, q)];
        Assert.All(FcblMargins(y, sym, c, 0.85), v => Assert.Equal(0.0, v, 12));
        // ω_y = 1 and ω_C = 1; with τ = 1 only classes with π_j ≥ π_y remain
        var mask = FcblMask(z, y, c, 1.0);
        for (var i = 0; i < n; i++)
        {
            Assert.Equal(1.0, mask[i * (c + 1) + c]);
            if (y[i] >= c) continue;
            Assert.Equal(1.0, mask[i * (c + 1) + y[i]]);
            var piC = Sigmoid(z[i * (c + 1) + c]);
            var piY = Sigmoid(z[i * (c + 1) + y[i]]) * (1 - piC);
            for (var jj = 0; jj < c; jj++)
                Assert.Equal(Sigmoid(z[i * (c + 1) + jj]) * (1 - piC) >= piY ? 1.0 : 0.0, mask[i * (c + 1) + jj]);
        }
        // the engine's mask with τ = 1: gradient zero exactly where ω = 0
        using var tau1 = new FcblLoss(c, probThreshold: 1.0);
        var (_, g1) = TestUtil.LossAndGrad(tau1, z, y);
        for (var e = 0; e < z.Length; e++) Assert.Equal(mask[e] == 0, g1[e] == 0);
        // a batch without positives leaves the state unchanged; the state resumes bit-identically
        using var loss = new FcblLoss(c);
        TestUtil.LossAndGrad(loss, z, y);
        using var saved = loss.StateDict();
        TestUtil.LossAndGrad(loss, TestUtil.Logits(g, 5, c + 1), Enumerable.Repeat((long)c, 5).ToArray());
        using var unchanged = loss.StateDict();
        Assert.Equal(saved["confusion"].ToDoubleArray(), unchanged["confusion"].ToDoubleArray());
        var z2 = TestUtil.Logits(g, n, c + 1);
        var y2 = TestUtil.Labels(g, n, c, 0.3);
        var next = TestUtil.LossAndGrad(loss, z2, y2);
        using var resumed = new FcblLoss(c);
        resumed.LoadStateDict(saved);
        var again = TestUtil.LossAndGrad(resumed, z2, y2);
        Assert.Equal(next.Loss, again.Loss);
        Assert.Equal(next.Grad, again.Grad);
    }
}
