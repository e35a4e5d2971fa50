// "How to verify" items of long-tail-methods.md checked on the engine's losses themselves rather than on the double
// references: FCBL's margins (4.5) read back from the engine's gradient are antisymmetric and vanish for a symmetric
// confusion matrix, and BAGS's "others" subsampling (6.2, 6.6) keeps every "others" RoI when there are at most
// floor(β·in-group) of them, the branch of min(all, floor(β·in-group)) that GroupSoftmaxLossTests does not reach.
using Engine.LongTail.Reference;
using static Engine.LongTail.Reference.SigmoidLossReference;

namespace Engine.LongTail.Tests.Losses;

public class SpecMatrixLossTests
{
    private static void LoadFcblState(FcblLoss loss, double[] confusion, double[] counts, int c)
    {
        using var state = new Engine.Nn.StateDict();
        state.Add("confusion", TestUtil.Float(confusion, c, c));
        state.Add("counts", TestUtil.Float(counts, c));
        loss.LoadStateDict(state);
    }

    [Fact]
    public void FcblMarginsReadFromTheEngineAreAntisymmetric()
    {
        // one RoI per ordered pair (p, q), p ≠ q, labelled p with every logit 0: with re-weighting off the engine's
        // gradient at column q is σ(0 + δ_{p→q})/N, so δ_{p→q} = −δ_{q→p} ⇔ σ(δ_{p→q}) + σ(δ_{q→p}) = 1
        var g = TestUtil.Fresh(out var seed);
        const int c = 7;
        const double alpha = 0.85;
        var pairs = Enumerable.Range(0, c).SelectMany(p => Enumerable.Range(0, c).Where(q => q != p).Select(q => (p, q))).ToArray();
        var n = pairs.Length;
        var y = pairs.Select(t => (long)t.p).ToArray();
        var z = new double[n * (c + 1)];
        var row = pairs.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i);

        // a cumulative confusion as FCBL accumulates it: row i is counts_i softmax vectors summed, so K's rows are
        // probability vectors; a fifth of the entries fall below the 1e-3 clamp; per-class counts uneven
        var counts = Enumerable.Range(0, c).Select(_ => (double)(1 + g.NextInt64(9))).ToArray();
        var a = new double[c * c];
        for (var i = 0; i < c; i++)
        {
            var v = TestUtil.Uniform(g, c, 0.05, 1).Select(x => g.NextDouble() < 0.2 ? 1e-6 : x).ToArray();
            var s = v.Sum();
            for (var j = 0; j < c; j++) a[i * c + j] = (float)(counts[i] * v[j] / s);
        }
        using (var loss = new FcblLoss(c, alpha, reweight: false))
        {
            LoadFcblState(loss, a, counts, c);
            var (_, grad) = TestUtil.LossAndGrad(loss, z, y, LossContext.Frozen);
            var k = Confusion(a, counts);
            foreach (var (p, q) in pairs)
            {
                if (p > q) continue;
                var forward = grad[row[(p, q)] * (c + 1) + q] * n;
                var backward = grad[row[(q, p)] * (c + 1) + p] * n;
                // float32 σ of margins ≤ α·ln 1000 = 5.9: a few ulps of values ≤ 1
                TestUtil.AssertClose(1.0, forward + backward, $"σ(δ_{p}→{q}) + σ(δ_{q}→{p})", seed, 1e-6, 0);
                // and the margin itself is the formula's, bounded by α·ln 1000
                var delta = Math.Log(forward / (1 - forward));
                var expected = alpha * Math.Log(Math.Max(k[p * c + q], 1e-3) / Math.Max(k[q * c + p], 1e-3));
                TestUtil.AssertClose(expected, delta, $"δ_{p}→{q}", seed, 1e-4, 1e-4);
                Assert.True(Math.Abs(delta) <= alpha * Math.Log(1000) + 1e-4, $"|δ_{p}→{q}| = {Math.Abs(delta)} above α·ln 1000 (seed {seed})");
            }
        }

        // a symmetric K (symmetric A, equal counts): every margin 0, so the engine's loss and gradient are plain BCE
        var sym = new double[c * c];
        for (var p = 0; p < c; p++)
            for (var q = 0; q < c; q++) sym[p * c + q] = a[Math.Min(p, q) * c + Math.Max(p, q)];
        using (var loss = new FcblLoss(c, alpha, reweight: false))
        {
            LoadFcblState(loss, sym, Enumerable.Repeat(3.0, c).ToArray(), c);
            const int rows = 29;
            var zr = TestUtil.Logits(g, rows, c + 1);
            var yr = TestUtil.Labels(g, rows, c, 0.3);
            var (value, grad) = TestUtil.LossAndGrad(loss, zr, yr, LossContext.Frozen);
            var ones = Enumerable.Repeat(1.0, zr.Length).ToArray();
            // float32 kernel against the double reference (as FcblLossTests)
            TestUtil.AssertClose(Loss(zr, Targets(yr, c + 1), ones, null, 1.0 / rows), value, "FCBL with a symmetric K vs BCE", seed, 1e-5, 1e-4);
            TestUtil.AssertClose(Gradient(zr, Targets(yr, c + 1), ones, null, 1.0 / rows), grad, "FCBL with a symmetric K, gradient", seed, 1e-6, 1e-4);
        }
    }

    [Fact]
    public void BagsKeepsEveryOthersRoiWhenThereAreAtMostBetaTimesTheInGroupCount()
    {
        var g = TestUtil.Fresh(out var seed);
        // 12 classes, three per BAGS bin (< 10, 10–99, 100–999, ≥ 1000), in a random order
        long[] bins = [5, 50, 500, 5000];
        var counts = g.Permutation(12).Select(p => bins[p % 4]).ToArray();
        const int c = 12;
        const double beta = 1.5;
        using var loss = new GroupSoftmaxLoss(counts, new Generator(seed), beta: beta);
        var groups = loss.GroupCount;
        var inG1 = Enumerable.Range(0, c).First(cls => loss.GroupOf(cls) == 1);
        var inG2 = Enumerable.Range(0, c).First(cls => loss.GroupOf(cls) == 2);
        // 5 RoIs of a G1 class, 3 of a G2 class, 4 background: 12 RoIs
        var y = Enumerable.Repeat((long)inG1, 5).Concat(Enumerable.Repeat((long)inG2, 3)).Concat(Enumerable.Repeat((long)c, 4)).ToArray();
        // G1: 7 others ≤ floor(1.5·5) = 7 (the boundary) → all 7 kept; G2: 9 others > floor(1.5·3) = 4 → 4 kept
        int[] expectedKept = [y.Length, 5 + 7, 3 + 4, 0, 0];
        for (var draw = 0; draw < 50; draw++)
        {
            var (_, w) = loss.Targets(y);
            for (var grp = 0; grp < groups; grp++)
            {
                var kept = Enumerable.Range(0, y.Length).Where(i => w[i * groups + grp] > 0).ToArray();
                Assert.True(kept.Length == expectedKept[grp], $"group {grp}: kept {kept.Length} RoIs, expected {expectedKept[grp]} (seed {seed})");
                // kept RoIs carry ω / Σω = 1 / kept count
                Assert.All(kept, i => Assert.Equal(1.0 / kept.Length, w[i * groups + grp], 12));
            }
            // every RoI is kept in G1 (in-group or others), whatever the draw
            Assert.All(Enumerable.Range(0, y.Length), i => Assert.True(w[i * groups + 1] > 0, $"draw {draw}: RoI {i} dropped from G1 (seed {seed})"));
        }
        // the engine's loss gives every background RoI a gradient in G1's columns (it is kept as "others")
        var z = TestUtil.Logits(g, y.Length, loss.LogitCount);
        var (_, grad) = TestUtil.LossAndGrad(loss, z, y);
        for (var i = 8; i < y.Length; i++)
        {
            var any = false;
            for (var col = loss.Offsets[1]; col < loss.Offsets[2]; col++) any |= grad[i * loss.LogitCount + col] != 0;
            Assert.True(any, $"background RoI {i} has no gradient in G1 (seed {seed})");
        }
    }
}
