// BACL FHM (section 4.3, 4.4, 4.5): the statistics update against the double reference (odd sizes, absent classes,
// single embeddings, LVIS width), hallucinated features with the stored mean and variance over 10^5 draws, the class
// histogram following (1 − K[c][c]) normalized, the uniform fallback and exact draw counts, jittered boxes within 1/6
// of the box size, classes without statistics skipped, the inactive stage, constant appended rows, state round trip
// with a bit-identical resume, and the error messages.
using Engine.LongTail.Reference;

namespace Engine.LongTail.Tests.Augmenters;

public class FeatureHallucinationTests
{
    [Fact]
    public void StatisticsUpdateMatchesReference()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (m, d, c) in new[] { (37, 5, 9), (1, 3, 4), (0, 3, 4), (160, 7, 1203) })
        {
            using var fhm = new FeatureHallucination(c, d, decay: 0.3);
            var (mean, variance, has) = (new double[c * d], new double[c * d], new bool[c]);
            for (var it = 0; it < 4; it++)
            {
                var x = TestUtil.Uniform(g, m * d, 0, 4).Select(v => (double)(float)v).ToArray();
                // classes from the first half only, so the second half stays absent
                var y = Enumerable.Range(0, m).Select(_ => g.NextInt64(Math.Max(1, c / 2))).ToArray();
                using (var xt = TestUtil.Float(x, m, d)) using (var yt = TestUtil.Long(y)) fhm.UpdateStatistics(xt, yt);
                FhmReference.UpdateStatistics(mean, variance, has, x, y, d, 0.3);
                var (mt, vt, h) = fhm.Statistics();
                using (mt) using (vt)
                {
                    // float32 state, double accumulation: a few ulps of values of order 4
                    TestUtil.AssertClose(mean, mt.ToDoubleArray(), $"mean M={m} D={d} C={c} it {it}", seed, 1e-6, 1e-6);
                    TestUtil.AssertClose(variance, vt.ToDoubleArray(), $"variance M={m} D={d} C={c} it {it}", seed, 1e-6, 1e-5);
                }
                Assert.Equal(has, h);
            }
        }
    }

    private static void SetState(FeatureHallucination fhm, double[] mean, double[] variance, bool[] has)
    {
        using var state = new Engine.Nn.StateDict();
        state.Add("mean", TestUtil.Float(mean, fhm.NumClasses, fhm.EmbeddingDim));
        state.Add("variance", TestUtil.Float(variance, fhm.NumClasses, fhm.EmbeddingDim));
        state.Add("has_statistics", Tensor.From<byte>(has.Select(b => (byte)(b ? 1 : 0)).ToArray(), has.Length));
        fhm.LoadStateDict(state);
    }

    private static RoiAugmentation Augment(FeatureHallucination fhm, int r, Generator g)
    {
        using var x = Tensor.Zeros([r, fhm.EmbeddingDim]);
        using var y = Tensor.Full([r], fhm.NumClasses, DType.Int64);
        return fhm.Augment(new RoiBatch(x, y), g);
    }

    [Fact]
    public void HallucinatedFeaturesHaveTheStoredMomentsAndClassesFollowTheConfusion()
    {
        var g = TestUtil.Fresh(out var seed);
        const int c = 3, d = 4, perClass = 100, classes = 100, steps = 10;
        var mean = TestUtil.Uniform(g, c * d, -2, 2);
        var variance = TestUtil.Uniform(g, c * d, 0.1, 3);
        var k = new double[c * c];
        var diag = new[] { 0.2, 0.5, 0.9 };
        for (var j = 0; j < c; j++) k[j * c + j] = diag[j];
        using var confusion = TestUtil.Float(k, c, c);
        using var fhm = new FeatureHallucination(c, d, () => confusion.Clone(), classes, perClass);
        SetState(fhm, mean, variance, [true, true, true]);
        var p = FhmReference.ClassProbabilities(k, c);
        TestUtil.AssertClose(p, fhm.ClassProbabilities(), "class probabilities", seed, 1e-7, 1e-6);
        var rows = new List<(long Label, double[] X)>();
        for (var s = 0; s < steps; s++)
        {
            using var a = Augment(fhm, 2, g);
            Assert.Equal(2 + classes * perClass, a.Rows);
            Assert.False(a.AppendedRowsRegress);
            var x = a.Embeddings.ToDoubleArray();
            var y = a.Labels.ToInt64Array();
            for (var i = 2; i < a.Rows; i++) rows.Add((y[i], x.Skip(i * d).Take(d).ToArray()));
        }
        var draws = classes * steps;
        for (var j = 0; j < c; j++)
        {
            var mine = rows.Where(t => t.Label == j).ToArray();
            // draws per class ~ Binomial(1000, p_j): within 5 standard deviations
            var n = mine.Length / perClass;
            Assert.True(Math.Abs(n - draws * p[j]) <= 5 * Math.Sqrt(draws * p[j] * (1 - p[j])), $"class {j}: {n} draws, expected {draws * p[j]:F1} (seed {seed})");
            for (var f = 0; f < d; f++)
            {
                var v = mine.Select(t => t.X[f]).ToArray();
                var m = v.Average();
                var s2 = v.Sum(t => (t - m) * (t - m)) / (v.Length - 1);
                var (mu, var) = (mean[j * d + f], variance[j * d + f]);
                // sample mean: sd sqrt(v/n); sample variance of a Gaussian: sd v·sqrt(2/(n−1)); 5 sd bounds
                Assert.True(Math.Abs(m - mu) <= 5 * Math.Sqrt(var / v.Length), $"class {j} feature {f}: mean {m}, expected {mu} (seed {seed})");
                Assert.True(Math.Abs(s2 - var) <= 5 * var * Math.Sqrt(2.0 / (v.Length - 1)), $"class {j} feature {f}: variance {s2}, expected {var} (seed {seed})");
            }
        }
    }

    [Fact]
    public void UniformFallbackDrawsExactlyTheRequestedCountAndSkipsClassesWithoutStatistics()
    {
        var g = TestUtil.Fresh(out var seed);
        const int c = 1203, d = 3;
        // every class perfectly classified: 1 − K[c][c] = 0 everywhere, so sampling falls back to uniform
        using var confusion = TestUtil.Float(Enumerable.Range(0, c * c).Select(i => i % (c + 1) == 0 ? 1.0 : 0).ToArray(), c, c);
        using var fhm = new FeatureHallucination(c, d, () => confusion.Clone());
        var p = fhm.ClassProbabilities();
        Assert.All(p, v => Assert.Equal(1.0 / c, v));
        // no statistics yet: nothing appended
        using (var a = Augment(fhm, 5, g)) Assert.Equal(5, a.Rows);
        SetState(fhm, new double[c * d], new double[c * d], Enumerable.Repeat(true, c).ToArray());
        using (var a = Augment(fhm, 5, g)) Assert.Equal(5 + 8 * 12, a.Rows);
        // mass only on the two end classes: every draw comes back, none from a class of probability 0
        var skewed = new double[c];
        skewed[0] = 0.3;
        skewed[c - 1] = 0.7;
        var drawn = FeatureHallucination.Draw(skewed, 4000, g);
        Assert.Equal(4000, drawn.Length);
        Assert.All(drawn, j => Assert.True(j == 0 || j == c - 1, $"drew class {j} of probability 0 (seed {seed})"));
        // half the classes without statistics: exactly their draws are skipped
        var has = Enumerable.Range(0, c).Select(j => j % 2 == 0).ToArray();
        SetState(fhm, new double[c * d], new double[c * d], has);
        var replay = new Generator(seed ^ 0xF00D);
        var expected = FeatureHallucination.Draw(fhm.ClassProbabilities(), 8, new Generator(replay.Seed) { Position = replay.Position }).Where(j => has[j]).ToArray();
        using (var a = Augment(fhm, 5, replay))
            Assert.Equal(expected.SelectMany(j => Enumerable.Repeat((long)j, 12)).ToArray(), a.Labels.ToInt64Array().Skip(5).ToArray());
    }

    [Fact]
    public void JitteredBoxesStayWithinASixthOfTheBoxAndFollowTheirSignPattern()
    {
        var g = TestUtil.Fresh(out var seed);
        const int boxes = 13;
        const double width = 640, height = 480;
        var gt = new double[boxes * 4];
        for (var b = 0; b < boxes; b++)
        {
            var (x1, y1) = (g.NextDouble() * 600, g.NextDouble() * 440);
            gt[b * 4] = (float)x1;
            gt[b * 4 + 1] = (float)y1;
            gt[b * 4 + 2] = (float)Math.Min(width, x1 + 1 + g.NextDouble() * 200);
            gt[b * 4 + 3] = (float)Math.Min(height, y1 + 1 + g.NextDouble() * 200);
        }
        using var gtT = TestUtil.Float(gt, boxes, 4);
        using var jittered = FeatureHallucination.JitterBoxes(gtT, width, height, g);
        Assert.Equal([boxes * 16, 4], jittered.ShapeArray());
        var o = jittered.ToDoubleArray();
        for (var b = 0; b < boxes; b++)
        {
            var size = new[] { gt[b * 4 + 2] - gt[b * 4], gt[b * 4 + 3] - gt[b * 4 + 1] };
            for (var p = 0; p < 16; p++)
                for (var k = 0; k < 4; k++)
                {
                    var v = o[(b * 16 + p) * 4 + k];
                    var moved = v - gt[b * 4 + k];
                    // float32 rounding of the output coordinate (values below 1000): 1e-4 slack
                    Assert.True(Math.Abs(moved) <= size[k % 2] / 6 + 1e-4, $"box {b} pattern {p} coordinate {k} moved {moved} (seed {seed})");
                    var sign = (p >> k & 1) == 1 ? 1 : -1;
                    Assert.True(moved * sign >= -1e-4, $"box {b} pattern {p} coordinate {k} moved against its sign (seed {seed})");
                    Assert.True(v >= 0 && v <= (k % 2 == 0 ? width : height), $"box {b} pattern {p} coordinate {k} = {v} outside the image (seed {seed})");
                }
        }
        // u is shared by the boxes of the image: offsets are the same fraction of every box's size
        for (var p = 0; p < 16; p++)
        {
            var f0 = (o[p * 4] - gt[0]) / (gt[2] - gt[0]);
            var f1 = (o[(16 + p) * 4] - gt[4]) / (gt[6] - gt[4]);
            if (o[p * 4] > 0 && o[(16 + p) * 4] > 0) TestUtil.AssertClose(f0, f1, $"shared u of pattern {p}", seed, 1e-4, 1e-3);
        }
    }

    [Fact]
    public void InactiveStagePassesRowsThroughAndAppendedRowsAreConstants()
    {
        var g = TestUtil.Fresh(out var seed);
        const int c = 5, d = 4, r = 7;
        using var fhm = new FeatureHallucination(c, d, active: false);
        SetState(fhm, TestUtil.Uniform(g, c * d, -1, 1), TestUtil.Uniform(g, c * d, 0, 1), Enumerable.Repeat(true, c).ToArray());
        using var scope = DisposeScope.Begin();
        var x = TestUtil.Float(TestUtil.Uniform(g, r * d, 0, 1), r, d).RequireGrad();
        var y = TestUtil.Long(TestUtil.Labels(g, r, c));
        using (var a = fhm.Augment(new RoiBatch(x, y), g))
        {
            Assert.Equal(r, a.Rows);
            Assert.Equal(x.ToDoubleArray(), a.Embeddings.ToDoubleArray());
        }
        fhm.Active = true;
        using var b = fhm.Augment(new RoiBatch(x, y), g);
        Assert.Equal(r + 8 * 12, b.Rows);
        // d(sum of all rows)/dx = 1 on the current rows: the appended rows add no path into x
        b.Embeddings.Sum().Backward();
        Assert.All(x.Grad!.ToDoubleArray(), v => Assert.Equal(1, v));
        Assert.Equal(y.ToInt64Array(), b.Labels.ToInt64Array().Take(r).ToArray());
    }

    [Fact]
    public void StateRoundTripResumesBitIdentically()
    {
        var g = TestUtil.Fresh(out _);
        const int c = 11, d = 5;
        using var a = new FeatureHallucination(c, d);
        using var b = new FeatureHallucination(c, d);
        var batches = Enumerable.Range(0, 6).Select(_ =>
        {
            var m = 32;
            return (TestUtil.Uniform(g, m * d, 0, 2), Enumerable.Range(0, m).Select(_ => g.NextInt64(c)).ToArray());
        }).ToArray();
        var ga = new Generator(g.NextUInt64());
        void Step(FeatureHallucination f, int i, Generator gen, out double[] x, out long[] y)
        {
            using (var xt = TestUtil.Float(batches[i].Item1, 32, d)) using (var yt = TestUtil.Long(batches[i].Item2)) f.UpdateStatistics(xt, yt);
            using var aug = Augment(f, 3, gen);
            (x, y) = (aug.Embeddings.ToDoubleArray(), aug.Labels.ToInt64Array());
        }
        for (var i = 0; i < 3; i++) Step(a, i, ga, out _, out _);
        using (var state = a.StateDict()) b.LoadStateDict(state);
        var gb = new Generator(ga.Seed) { Position = ga.Position };
        for (var i = 3; i < 6; i++)
        {
            Step(a, i, ga, out var xa, out var ya);
            Step(b, i, gb, out var xb, out var yb);
            Assert.Equal(xa, xb);
            Assert.Equal(ya, yb);
        }
    }

    [Fact]
    public void BadInputsNameTheCallAndTheFix()
    {
        using var fhm = new FeatureHallucination(4, 3);
        using var scope = DisposeScope.Begin();
        Assert.Contains("label 4", Assert.Throws<ArgumentException>(() => fhm.UpdateStatistics(Tensor.Zeros([2, 3]), Tensor.Full([2], 4, DType.Int64))).Message);
        Assert.Contains("D = 3", Assert.Throws<ArgumentException>(() => fhm.Augment(new RoiBatch(Tensor.Zeros([2, 5]), Tensor.Zeros([2], DType.Int64)), new Generator(1))).Message);
        Assert.Contains("(G, 4)", Assert.Throws<ArgumentException>(() => FeatureHallucination.JitterBoxes(Tensor.Zeros([2, 3]), 10, 10, new Generator(1))).Message);
        using var bad = new FeatureHallucination(4, 3, () => Tensor.Zeros([3, 3]));
        Assert.Contains("(C, C)", Assert.Throws<InvalidOperationException>(() => bad.ClassProbabilities()).Message);
    }
}
