// BAGS (section 6): group layout from instance counts (with the LVIS fixtures of 0.4), the loss against the double
// reference on every batch shape, the "others" subsampling, the score identity (6.6, section 8) and the
// reduction to softmax CE with one foreground group and β = ∞.
using Engine.LongTail.Reference;
using static Engine.LongTail.Reference.SoftmaxLossReference;

namespace Engine.LongTail.Tests.Losses;

public class GroupSoftmaxLossTests
{
    private const double LossAtol = 1e-5, LossRtol = 1e-4, GradAtol = 1e-6, GradRtol = 1e-4;

    /// <summary>Instance counts with exactly the given number of classes in each BAGS bin (&lt;10, 10–99, 100–999, ≥1000), shuffled.</summary>
    private static long[] CountsWithBins(Generator g, params int[] sizes)
    {
        long[][] ranges = [[1, 10], [10, 100], [100, 1000], [1000, 50000]];
        var list = new List<long>();
        for (var b = 0; b < sizes.Length; b++)
            for (var i = 0; i < sizes[b]; i++) list.Add(ranges[b][0] + g.NextInt64(ranges[b][1] - ranges[b][0]));
        var perm = g.Permutation(list.Count);
        return perm.Select(p => list[p]).ToArray();
    }

    private static (long[] Columns, double[] Omega) ReferenceTargets(GroupSoftmaxLoss loss, long[] y, double[] engineWeights)
    {
        var c = loss.NumClasses;
        var groupOf = Enumerable.Range(0, c).Select(loss.GroupOf).ToArray();
        var columnOf = Enumerable.Range(0, c).Select(loss.ColumnOf).ToArray();
        var cols = GroupColumns(y, c, groupOf, columnOf, loss.Offsets.ToArray());
        return (cols, engineWeights.Select(w => w > 0 ? 1.0 : 0.0).ToArray());
    }

    [Fact]
    public void LayoutMatchesTheLvisFixtures()
    {
        // 6.6: logit count C + 6, each class in exactly one group; group sizes of section 0.4 (v1 and v0.5)
        var g = TestUtil.Fresh(out var seed);
        foreach (var (sizes, c) in new[] { (new[] { 200, 412, 334, 257 }, 1203), (new[] { 294, 453, 302, 181 }, 1230) })
        {
            using var loss = new GroupSoftmaxLoss(CountsWithBins(g, sizes), new Generator(seed));
            Assert.Equal(c + 6, loss.LogitCount);
            Assert.Equal(sizes, loss.ForegroundGroupSizes());
            var columns = Enumerable.Range(0, c).Select(loss.ColumnOf).ToArray();
            Assert.Equal(c, columns.Distinct().Count());
            var others = loss.Offsets.Take(loss.GroupCount).ToArray();
            Assert.All(columns, col => Assert.True(col >= 2 && !others.Contains(col)));
            for (var cls = 0; cls < c; cls++)
            {
                var k = loss.GroupOf(cls);
                Assert.InRange(loss.ColumnOf(cls), loss.Offsets[k] + 1, loss.Offsets[k + 1] - 1);
            }
        }
    }

    [Fact]
    public void LossMatchesReference()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (name, n, c, bg, range) in TestUtil.Cases())
        {
            // an empty bin gives a group with only its "others" logit (a group of size one)
            var counts = c == 1203 ? CountsWithBins(g, 200, 412, 334, 257) : CountsWithBins(g, 4, 0, 3, c - 7);
            using var loss = new GroupSoftmaxLoss(counts, new Generator(seed), beta: 2);
            var k = loss.LogitCount;
            var z = TestUtil.Logits(g, n, k, -range, range);
            var y = TestUtil.Labels(g, n, c, bg);
            var probe = new Generator(loss.Generator.Seed) { Position = loss.Generator.Position };
            using var twin = new GroupSoftmaxLoss(counts, probe, beta: 2);
            var (_, weights) = twin.Targets(y); // the same draws the loss will make
            var (cols, omega) = ReferenceTargets(loss, y, weights);
            var (value, grad) = TestUtil.LossAndGrad(loss, z, y);
            var offsets = loss.Offsets.ToArray();
            TestUtil.AssertClose(GroupSoftmaxLoss(z, n, k, offsets, cols, omega), value, $"BAGS loss, {name}", seed, LossAtol, LossRtol);
            TestUtil.AssertClose(GroupSoftmaxLossGradient(z, n, k, offsets, cols, omega), grad, $"BAGS gradient, {name}", seed, GradAtol, GradRtol);
        }
    }

    [Fact]
    public void OthersSubsamplingAndAbsentGroups()
    {
        // 6.2 / 6.6: others kept = min(all, floor(β·in-group)); a group without in-group RoIs has all ω = 0 and gets no gradient
        var g = TestUtil.Fresh(out var seed);
        var counts = CountsWithBins(g, 3, 3, 3, 3);
        const int c = 12;
        using var loss = new GroupSoftmaxLoss(counts, new Generator(seed), beta: 1.5);
        var inG1 = Enumerable.Range(0, c).First(cls => loss.GroupOf(cls) == 1);
        var inG3 = Enumerable.Range(0, c).First(cls => loss.GroupOf(cls) == 3);
        // 3 RoIs of a G1 class, 1 of a G3 class, 20 background; no RoI of G2 or G4
        var y = Enumerable.Repeat((long)inG1, 3).Append(inG3).Concat(Enumerable.Repeat((long)c, 20)).ToArray();
        var (_, w) = loss.Targets(y);
        int Kept(int group) => Enumerable.Range(0, y.Length).Count(i => w[i * 5 + group] > 0);
        Assert.Equal(3 + (int)Math.Floor(1.5 * 3), Kept(1));
        Assert.Equal(1 + 1, Kept(3));
        Assert.Equal(0, Kept(2));
        Assert.Equal(0, Kept(4));
        Assert.Equal(y.Length, Kept(0));
        // in-group RoIs are always kept, and the kept weights are 1 / (kept count)
        for (var i = 0; i < 3; i++) Assert.Equal(1.0 / 7, w[i * 5 + 1], 12);

        var z = TestUtil.Logits(g, y.Length, loss.LogitCount);
        var (_, grad) = TestUtil.LossAndGrad(loss, z, y);
        foreach (var group in new[] { 2, 4 })
            for (var i = 0; i < y.Length; i++)
                for (var col = loss.Offsets[group]; col < loss.Offsets[group + 1]; col++)
                    Assert.Equal(0.0, grad[i * loss.LogitCount + col]);

        // uniformity of the subsample: each of 20 background RoIs is kept in G1 with probability 4/21 ≈ (7 − 3)/(20 + 1)
        var hits = new double[y.Length];
        const int draws = 20_000;
        for (var d = 0; d < draws; d++)
        {
            var (_, wd) = loss.Targets(y);
            for (var i = 0; i < y.Length; i++)
                if (wd[i * 5 + 1] > 0) hits[i]++;
        }
        const double p = 4.0 / 21; // 4 kept among the 21 others (20 background + the G3 RoI)
        var sd = Math.Sqrt(p * (1 - p) / draws);
        for (var i = 3; i < y.Length; i++) Assert.True(Math.Abs(hits[i] / draws - p) < 5 * sd, $"RoI {i}: kept {hits[i] / draws:F4}, expected {p:F4} (seed {seed})");
    }

    [Fact]
    public void ScoreIdentityAndReference()
    {
        // 6.6 / section 8: Σ_{c ∈ Gk} score_c + q^k_others·q^0_fg = q^0_fg for every RoI and group
        var g = TestUtil.Fresh(out var seed);
        var counts = CountsWithBins(g, 200, 412, 334, 257);
        using var loss = new GroupSoftmaxLoss(counts, new Generator(seed));
        const int n = 6;
        var k = loss.LogitCount;
        var z = TestUtil.Logits(g, n, k, -6, 6);
        using var zt = TestUtil.Float(z, n, k);
        using var scores = loss.Scores(zt);
        var s = scores.ToDoubleArray();
        var offsets = loss.Offsets.ToArray();
        var columnOf = Enumerable.Range(0, 1203).Select(loss.ColumnOf).ToArray();
        TestUtil.AssertClose(GroupSoftmaxScores(z, n, k, offsets, 1203, columnOf), s, "BAGS scores", seed, 1e-7, 1e-4);
        var q = GroupSoftmax(z, n, k, offsets, log: false);
        for (var i = 0; i < n; i++)
            for (var grp = 1; grp < loss.GroupCount; grp++)
            {
                var sum = Enumerable.Range(0, 1203).Where(cls => loss.GroupOf(cls) == grp).Sum(cls => s[i * 1204 + cls]);
                var fg = q[i * k + 1];
                TestUtil.AssertClose(fg, sum + q[i * k + offsets[grp]] * fg, $"score identity, RoI {i}, group {grp}", seed, 1e-6, 1e-5);
            }
    }

    [Fact]
    public void OneGroupWithInfiniteBetaIsSoftmaxPlusBinary()
    {
        // 6.6: one foreground group holding every class and β = ∞ gives CE over (others + classes) plus the binary bg/fg CE
        var g = TestUtil.Fresh(out var seed);
        const int n = 19, c = 7;
        var counts = Enumerable.Range(0, c).Select(_ => 1 + g.NextInt64(500)).ToArray();
        using var loss = new GroupSoftmaxLoss(counts, new Generator(seed), beta: double.PositiveInfinity, binEdges: []);
        Assert.Equal(c + 3, loss.LogitCount);
        var z = TestUtil.Logits(g, n, c + 3);
        var y = TestUtil.Labels(g, n, c, 0.5);
        y[0] = 0; // at least one in-group RoI
        var (value, _) = TestUtil.LossAndGrad(loss, z, y);
        double binary = 0, multi = 0;
        for (var i = 0; i < n; i++)
        {
            binary += -LogSoftmax(z, i * (c + 3), 2)[y[i] < c ? 1 : 0];
            multi += -LogSoftmax(z, i * (c + 3) + 2, c + 1)[y[i] < c ? 1 + y[i] : 0];
        }
        TestUtil.AssertClose(binary / n + multi / n, value, "one group, β = ∞", seed, LossAtol, LossRtol);
    }

    [Fact]
    public void GeneratorStateResumesBitIdentically()
    {
        var g = TestUtil.Fresh(out var seed);
        var counts = CountsWithBins(g, 3, 4, 2, 3);
        const int n = 60, c = 12;
        var batches = Enumerable.Range(0, 3).Select(_ => (TestUtil.Logits(g, n, c + 6), TestUtil.Labels(g, n, c, 0.8))).ToArray();
        using var a = new GroupSoftmaxLoss(counts, new Generator(seed), beta: 1);
        TestUtil.LossAndGrad(a, batches[0].Item1, batches[0].Item2);
        using var saved = a.StateDict();
        var expected = batches.Skip(1).Select(b => TestUtil.LossAndGrad(a, b.Item1, b.Item2)).ToArray();
        using var b2 = new GroupSoftmaxLoss(counts, new Generator(seed + 1), beta: 1);
        b2.LoadStateDict(saved);
        var actual = batches.Skip(1).Select(b => TestUtil.LossAndGrad(b2, b.Item1, b.Item2)).ToArray();
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(expected[i].Loss, actual[i].Loss);
            Assert.Equal(expected[i].Grad, actual[i].Grad);
        }
    }
}
