// Softmax CE (1.1), the re-weighting baselines (1.3) and Seesaw (1.6) against the double reference on every batch
// shape of TestUtil.Cases, with each section's "Verify" items and the Seesaw row of the section 8 matrix.
using Engine.LongTail.Reference;
using static Engine.LongTail.Reference.SoftmaxLossReference;

namespace Engine.LongTail.Tests.Losses;

public class SoftmaxLossTests
{
    // float32 kernels against double: log-sum-exp over ≤ 1204 columns and gradients ≤ 1/N
    private const double LossAtol = 1e-5, LossRtol = 1e-4, GradAtol = 1e-6, GradRtol = 1e-4;

    [Fact]
    public void CrossEntropyAndReweightingMatchReference()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (name, n, c, bg, range) in TestUtil.Cases())
        {
            var counts = Enumerable.Range(0, c).Select(_ => 1 + g.NextInt64(5000)).ToArray();
            foreach (var weights in new[] { null, ClassWeights.InverseFrequency(counts), ClassWeights.ClassBalanced(counts) })
            {
                using var loss = new SoftmaxCrossEntropyLoss(c, weights);
                var z = TestUtil.Logits(g, n, c + 1, -range, range);
                var y = TestUtil.Labels(g, n, c, bg);
                var (value, grad) = TestUtil.LossAndGrad(loss, z, y);
                var what = $"{(weights is null ? "CE" : "re-weighted CE")}, {name}";
                TestUtil.AssertClose(CrossEntropy(z, y, c + 1, weights), value, what, seed, LossAtol, LossRtol);
                TestUtil.AssertClose(CrossEntropyGradient(z, y, c + 1, weights), grad, what + " gradient", seed, GradAtol, GradRtol);
            }
        }
    }

    [Fact]
    public void ReweightingVerifyItems()
    {
        // 1.3: equal counts give weights 1 and the loss of 1.1; weights are normalized to foreground mean 1, then clipped
        var g = TestUtil.Fresh(out var seed);
        const int c = 6;
        var equal = Enumerable.Repeat(37L, c).ToArray();
        Assert.All(ClassWeights.InverseFrequency(equal), w => Assert.Equal(1.0, w, 12));
        Assert.All(ClassWeights.ClassBalanced(equal), w => Assert.Equal(1.0, w, 12));
        var z = TestUtil.Logits(g, 17, c + 1);
        var y = TestUtil.Labels(g, 17, c);
        using var plain = new SoftmaxCrossEntropyLoss(c);
        using var weighted = new SoftmaxCrossEntropyLoss(c, ClassWeights.ClassBalanced(equal));
        // Both are float32 means over 17 rows, the weighted one as Σ w·l / Σ w: they differ only by rounding, a few
        // float ulps of a loss near 2 (≈ 2.4e-7 seen), so the bound is relative, not a fixed number of decimals.
        var plainLoss = TestUtil.LossAndGrad(plain, z, y).Loss;
        var weightedLoss = TestUtil.LossAndGrad(weighted, z, y).Loss;
        Assert.True(Math.Abs(plainLoss - weightedLoss) <= 1e-6 * Math.Max(1, Math.Abs(plainLoss)),
                    $"seed {seed}: unit weights give {weightedLoss}, plain softmax CE {plainLoss}");

        long[] counts = [1, 2, 1000, 1000, 1000, 1000];
        var inv = ClassWeights.InverseFrequency(counts);
        var mean = counts.Average(v => 1.0 / v);
        for (var j = 0; j < c; j++) Assert.Equal(Math.Clamp(1.0 / counts[j] / mean, 0.1, 5), inv[j], 12);
        Assert.Equal(1.0, inv[c]);
        Assert.Equal(0.1, inv[3]); // clipped below
        var cb = ClassWeights.ClassBalanced(counts);
        var raw = counts.Select(v => (1 - 0.999) / (1 - Math.Pow(0.999, v))).ToArray();
        for (var j = 0; j < c; j++) Assert.Equal(Math.Clamp(raw[j] / raw.Average(), 0.1, 5), cb[j], 12);
        Assert.Throws<ArgumentException>(() => ClassWeights.InverseFrequency([3, 0]));
    }

    [Fact]
    public void CrossEntropyScoresSumToOneMinusBackground()
    {
        // 1.1 Verify: the class scores of a row sum to 1 − p_bg
        var g = TestUtil.Fresh(out var seed);
        const int n = 9, c = 1203;
        using var loss = new SoftmaxCrossEntropyLoss(c);
        using var z = TestUtil.Float(TestUtil.Logits(g, n, c + 1, -8, 8), n, c + 1);
        using var s = loss.Scores(z);
        var v = s.ToDoubleArray();
        for (var i = 0; i < n; i++)
            TestUtil.AssertClose(1 - v[i * (c + 1) + c], v.Skip(i * (c + 1)).Take(c).Sum(), $"row {i}", seed, 1e-5, 0);
    }

    [Fact]
    public void SeesawMatchesReferenceAcrossIterations()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (name, n, c, bg, range) in TestUtil.Cases())
        {
            using var loss = new SeesawLoss(c);
            var counts = new long[c + 1];
            for (var it = 0; it < 3; it++)
            {
                var z = TestUtil.Logits(g, n, c + 2, -range, range);
                var y = TestUtil.Labels(g, n, c, bg);
                foreach (var l in y) counts[l]++; // counts grow before the loss (1.6)
                var s = SeesawFactors(z, y, c, counts, 0.8, 2, 0.01);
                var (value, grad) = TestUtil.LossAndGrad(loss, z, y);
                Assert.Equal(counts, loss.Counts);
                var what = $"Seesaw, {name}, iteration {it}";
                TestUtil.AssertClose(Seesaw(z, y, c, s), value, what, seed, LossAtol, LossRtol);
                TestUtil.AssertClose(SeesawGradient(z, y, c, s), grad, what + " gradient", seed, GradAtol, GradRtol);
            }
        }
    }

    [Fact]
    public void SeesawVerifyItems()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 27, c = 8;
        var z = TestUtil.Logits(g, n, c + 2);
        var y = TestUtil.Labels(g, n, c, 0.3);
        // p = q = 0 (and equal counts with q = 0): CE on positives + objectness CE (section 8)
        var expected = ReferenceCeOnPositivesPlusObjectness(z, y, c);
        using (var pq0 = new SeesawLoss(c, p: 0, q: 0))
            TestUtil.AssertClose(expected, TestUtil.LossAndGrad(pq0, z, y).Loss, "Seesaw p = q = 0", seed, LossAtol, LossRtol);
        using (var equal = new SeesawLoss(c, q: 0))
        {
            using var state = equal.StateDict();
            using (GradMode.NoGrad()) state["cum_samples"].Fill(1000);
            equal.LoadStateDict(state);
            TestUtil.AssertClose(expected, TestUtil.LossAndGrad(equal, z, y, LossContext.Frozen).Loss, "Seesaw equal counts, q = 0", seed, LossAtol, LossRtol);
        }
        // M ≤ 1 ≤ C elementwise, and dL/du_j = (S_yj e^{u_j}/Z)/N for j ≠ y (the gradient test above uses that formula)
        var counts = Enumerable.Range(0, c + 1).Select(_ => g.NextInt64(100)).ToArray();
        var mOnly = SeesawFactors(z, y, c, counts, 0.8, 0, 0.01);
        var cOnly = SeesawFactors(z, y, c, counts, 0, 2, 0.01);
        Assert.All(mOnly, v => Assert.True(v <= 1));
        Assert.All(cOnly, v => Assert.True(v >= 1));
        // counts increase by exactly the batch's label histogram
        using var loss = new SeesawLoss(c);
        TestUtil.LossAndGrad(loss, z, y);
        var before = loss.Counts;
        var y2 = TestUtil.Labels(g, n, c);
        TestUtil.LossAndGrad(loss, TestUtil.Logits(g, n, c + 2), y2);
        var after = loss.Counts;
        for (var j = 0; j <= c; j++) Assert.Equal(y2.Count(l => l == j), after[j] - before[j]);
        // resume: the counts state reproduces the next iteration bit for bit
        using var saved = loss.StateDict();
        var z3 = TestUtil.Logits(g, n, c + 2);
        var y3 = TestUtil.Labels(g, n, c);
        var next = TestUtil.LossAndGrad(loss, z3, y3);
        using var resumed = new SeesawLoss(c);
        resumed.LoadStateDict(saved);
        var again = TestUtil.LossAndGrad(resumed, z3, y3);
        Assert.Equal(next.Loss, again.Loss);
        Assert.Equal(next.Grad, again.Grad);
    }

    private static double ReferenceCeOnPositivesPlusObjectness(double[] z, long[] y, int c)
    {
        var k = c + 2;
        double sum = 0;
        for (var i = 0; i < y.Length; i++)
        {
            if (y[i] < c) sum += -LogSoftmax(z, i * k, c)[y[i]];
            sum += -LogSoftmax(z, i * k + c, 2)[y[i] < c ? 0 : 1];
        }
        return sum / y.Length;
    }

    [Fact]
    public void SeesawScores()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 4, c = 5;
        var z = TestUtil.Logits(g, n, c + 2);
        using var loss = new SeesawLoss(c);
        using var zt = TestUtil.Float(z, n, c + 2);
        using var s = loss.Scores(zt);
        var expected = new double[n * (c + 1)];
        for (var i = 0; i < n; i++)
        {
            var u = LogSoftmax(z, i * (c + 2), c);
            var o = LogSoftmax(z, i * (c + 2) + c, 2);
            for (var j = 0; j < c; j++) expected[i * (c + 1) + j] = Math.Exp(u[j] + o[0]);
            expected[i * (c + 1) + c] = Math.Exp(o[1]);
        }
        TestUtil.AssertClose(expected, s.ToDoubleArray(), "Seesaw scores softmax(u)·softmax(o)_fg", seed, 1e-6, 1e-5);
    }
}
