using Engine.Tests;

namespace Engine.Detection.Tests.Modeling;

public class BalancedPositiveNegativeSamplerTests
{
    private static (long[] Pos, long[] Neg) Sample(BalancedPositiveNegativeSampler s, long[] labels, long background, Generator g)
    {
        using var l = Tensor.From(labels);
        var (pos, neg) = s.Sample(l, background, g);
        using (pos)
        using (neg)
            return (pos.ToInt64Array(), neg.ToInt64Array());
    }

    /// <summary>labels: positives 1, negatives 0, ignored -1, shuffled.</summary>
    private static long[] Labels(Generator g, int pos, int neg, int ignored)
    {
        var l = Enumerable.Repeat(1L, pos).Concat(Enumerable.Repeat(0L, neg)).Concat(Enumerable.Repeat(-1L, ignored)).ToArray();
        var p = g.Permutation(l.Length);
        return p.Select(i => l[i]).ToArray();
    }

    [Theory]
    // positives, negatives, ignored, batch, fraction, expected positives, expected negatives
    [InlineData(100, 1000, 50, 256, 0.25, 64, 192)] // both plentiful: 256·0.25 positives, the rest negatives
    [InlineData(10, 1000, 50, 256, 0.25, 10, 246)] // few positives: negatives fill the batch
    [InlineData(100, 20, 5, 256, 0.5, 100, 20)] // not enough of either: everything, short batch
    [InlineData(0, 7, 3, 512, 0.25, 0, 7)]
    [InlineData(300, 0, 0, 128, 0.5, 64, 0)]
    [InlineData(5, 5, 0, 0, 0.5, 0, 0)]
    public void CountsFollowTheRule(int pos, int neg, int ignored, int batch, double fraction, int expectPos, int expectNeg)
    {
        var g = TestUtil.Fresh(out var seed);
        var labels = Labels(g, pos, neg, ignored);
        var (p, n) = Sample(new BalancedPositiveNegativeSampler(batch, fraction), labels, 0, g);
        Assert.Equal(expectPos, p.Length);
        Assert.Equal(expectNeg, n.Length);
        Assert.All(p, i => Assert.Equal(1L, labels[i]));
        Assert.All(n, i => Assert.Equal(0L, labels[i]));
        Assert.Equal(p.Length, p.Distinct().Count());
        Assert.Equal(n.Length, n.Distinct().Count());
        _ = seed;
    }

    [Fact]
    public void RoiHeadLabelsUseTheBackgroundClass()
    {
        var g = TestUtil.Fresh(out _);
        // class ids 0..9 are foreground, 10 is background, -1 ignored
        long[] labels = [10, 3, 10, 0, -1, 9, 10, 10, 5];
        var (p, n) = Sample(new BalancedPositiveNegativeSampler(6, 0.5), labels, 10, g);
        // four foreground boxes (1, 3, 5, 8) but room for 6·0.5 = 3; four background boxes for the other 3 places
        Assert.Equal(3, p.Length);
        Assert.All(p, i => Assert.Contains(i, new long[] { 1, 3, 5, 8 }));
        Assert.Equal(3, n.Length);
        Assert.All(n, i => Assert.Equal(10L, labels[i]));
    }

    [Fact]
    public void DrawsDependOnlyOnTheGenerator()
    {
        var g = TestUtil.Fresh(out var seed);
        var labels = Labels(g, 400, 3000, 100);
        var sampler = new BalancedPositiveNegativeSampler(512, 0.25);
        var a = Sample(sampler, labels, 0, new Generator(seed));
        var b = Sample(sampler, labels, 0, new Generator(seed));
        Assert.Equal(a.Pos, b.Pos);
        Assert.Equal(a.Neg, b.Neg);
        var c = Sample(sampler, labels, 0, new Generator(seed + 1));
        Assert.NotEqual(a.Pos, c.Pos);
    }

    [Fact]
    public void SubsetsAreUniform()
    {
        var g = TestUtil.Fresh(out var seed);
        // 10 positives, 3 drawn per call: over 3000 calls each positive is drawn 900 times on average (binomial sd ≈ 25);
        // ±150 (6 sd) fails only for a biased draw
        long[] labels = [.. Enumerable.Repeat(1L, 10), .. Enumerable.Repeat(0L, 10)];
        var sampler = new BalancedPositiveNegativeSampler(6, 0.5);
        var counts = new int[10];
        for (var k = 0; k < 3000; k++)
            foreach (var i in Sample(sampler, labels, 0, g).Pos) counts[i]++;
        Assert.All(counts, c => Assert.InRange(c, 750, 1050));
        _ = seed;
    }
}
