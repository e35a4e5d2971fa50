using Engine.Detection.Reference;
using Engine.Tests;

namespace Engine.Detection.Tests.Modeling;

public class MatcherTests
{
    private static (long[] Matches, long[] Labels) Match(Matcher matcher, float[] quality, int m, int n)
    {
        using var q = Tensor.From(quality, m, n);
        var (matches, labels) = matcher.Match(q);
        using (matches)
        using (labels)
            return (matches.ToInt64Array(), labels.ToInt64Array());
    }

    [Fact]
    public void RpnRulesOnAHandBuiltMatrix()
    {
        TestUtil.Fresh(out _);
        // 2 ground truths × 5 anchors. Best ground truth per anchor (first on ties) and its IoU:
        //   a0: gt1 0.25 → < 0.3 → 0;  a1: gt1 0.69 → [0.3, 0.7) → -1;  a2: gt0 0.8 → ≥ 0.7 → 1;
        //   a3: gt1 0.7 → exactly 0.7 counts as ≥ 0.7 → 1;  a4: both 0 → gt0 (first), 0.
        // Low-quality matches add nothing here: gt0's best anchor (a2) and gt1's (a3) are already positive.
        float[] q =
        [
            0.10f, 0.35f, 0.80f, 0.20f, 0.0f,
            0.25f, 0.69f, 0.50f, 0.70f, 0.0f,
        ];
        var (matches, labels) = Match(Matcher.ForRpn(), q, 2, 5);
        Assert.Equal([1L, 1L, 0L, 1L, 0L], matches);
        Assert.Equal([0L, -1L, 1L, 1L, 0L], labels);
    }

    [Fact]
    public void LowQualityMatchesIncludeTiesAndKeepTheirOwnMatch()
    {
        TestUtil.Fresh(out _);
        // a0: gt0 0.4, a1: gt0 0.5, a2: gt1 0.6 — all in the ignore band. gt0's highest IoU is 0.5, reached by a1 and a2
        // (a tie): both become positive; a2 keeps its own best match gt1. gt1's highest is 0.6 at a2. a0 stays ignored.
        float[] q =
        [
            0.4f, 0.5f, 0.5f,
            0.1f, 0.2f, 0.6f,
        ];
        var (matches, labels) = Match(Matcher.ForRpn(), q, 2, 3);
        Assert.Equal([0L, 0L, 1L], matches);
        Assert.Equal([-1L, 1L, 1L], labels);
        // without the rule they stay ignored
        var (_, plain) = Match(new Matcher([0.3, 0.7], [0, -1, 1]), q, 2, 3);
        Assert.Equal([-1L, -1L, -1L], plain);
    }

    [Fact]
    public void RoiHeadRuleAtTheThreshold()
    {
        TestUtil.Fresh(out _);
        float[] q = [0.5f, 0.49999997f, 0.0f, 0.93f];
        var (matches, labels) = Match(Matcher.ForRoiHeads(), q, 1, 4);
        Assert.Equal([0L, 0L, 0L, 0L], matches);
        Assert.Equal([1L, 0L, 0L, 1L], labels);
    }

    [Fact]
    public void NoGroundTruthMeansBackground()
    {
        TestUtil.Fresh(out _);
        var (matches, labels) = Match(Matcher.ForRpn(), [], 0, 4);
        Assert.Equal(new long[4], matches);
        Assert.Equal(new long[4], labels);
        var (m2, l2) = Match(Matcher.ForRoiHeads(), [], 3, 0);
        Assert.Empty(m2);
        Assert.Empty(l2);
    }

    [Fact]
    public void MatchesReferenceWithManyTies()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (m, n) in new[] { (1, 1), (5, 37), (17, 3000), (60, 40000) })
        {
            // qualities on a coarse grid (multiples of 1/20) so that ties and exact threshold hits are frequent
            var q = new float[m * n];
            for (var i = 0; i < q.Length; i++) q[i] = g.NextInt64(21) / 20f;
            foreach (var matcher in new[] { Matcher.ForRpn(), Matcher.ForRoiHeads(), new Matcher([0.4, 0.5], [0, -1, 1], true) })
            {
                var (matches, labels) = Match(matcher, q, m, n);
                var (em, el) = BoxReference.Match(q.Select(v => (double)v).ToArray(), m, n, matcher.Rule);
                Assert.True(em.SequenceEqual(matches), $"matches {m}×{n} (seed {seed})");
                Assert.True(el.SequenceEqual(labels), $"labels {m}×{n} (seed {seed})");
            }
        }
    }

    [Fact]
    public void BadRulesAndQualitiesAreRejected()
    {
        TestUtil.Fresh(out _);
        Assert.Throws<ArgumentException>(() => new Matcher([0.0, 0.5], [0, -1, 1]));
        Assert.Throws<ArgumentException>(() => new Matcher([0.7, 0.3], [0, -1, 1]));
        var e = Assert.Throws<ArgumentException>(() => new Matcher([0.5], [0, 1, 1]));
        Assert.Contains("2 values", e.Message);
        Assert.Throws<ArgumentException>(() => new Matcher([0.5], [0, 2]));
        using var q = Tensor.From(new float[] { 0.3f, -0.1f }, 1, 2);
        e = Assert.Throws<ArgumentException>(() => Matcher.ForRpn().Match(q));
        Assert.Contains("[0, 1] = -0.1", e.Message);
    }
}
