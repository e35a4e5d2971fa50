using Engine.Detection.Reference;
using Engine.Tests;

namespace Engine.Detection.Tests.Layers;

public class NmsTests
{
    private static long[] RunNms(float[] boxes, float[] scores, double threshold, long[]? classes = null)
    {
        using var b = Tensor.From(boxes, scores.Length, 4);
        using var s = Tensor.From(scores, scores.Length);
        if (classes is null)
        {
            using var keep = DetectionOps.Nms(b, s, threshold);
            Assert.Equal(DType.Int64, keep.DType);
            return keep.ToInt64Array();
        }
        using var c = Tensor.From(classes, classes.Length);
        using var kept = DetectionOps.BatchedNms(b, s, c, threshold);
        return kept.ToInt64Array();
    }

    [Fact]
    public void IouJustAboveExactlyAtAndJustBelowTheThreshold()
    {
        TestUtil.Fresh(out _);
        // A = (0,0)-(3,1) and B = (1,0)-(4,1): areas 3 and 3, intersection 2, union 4 → IoU exactly 0.5 (exact in float32).
        // Shifting B left by 1/64 gives (2 + 1/64) / (4 - 1/64) > 0.5; right by 1/64 gives (2 - 1/64) / (4 + 1/64) < 0.5.
        const float e = 1f / 64;
        float[] a = [0, 0, 3, 1];
        float[] scores = [0.9f, 0.8f];
        Assert.Equal([0L, 1L], RunNms([.. a, 1, 0, 4, 1], scores, 0.5)); // at the threshold: not strictly above, kept
        Assert.Equal([0L], RunNms([.. a, 1 - e, 0, 4 - e, 1], scores, 0.5)); // just above: suppressed
        Assert.Equal([0L, 1L], RunNms([.. a, 1 + e, 0, 4 + e, 1], scores, 0.5)); // just below: kept
        Assert.Equal([0L], RunNms([.. a, 1, 0, 4, 1], scores, 0.4999)); // a lower threshold suppresses the exact 0.5
    }

    [Fact]
    public void RandomPairsAroundRandomThresholds()
    {
        // torchvision's TestNMS idea: build a partner box whose IoU with a random box is the threshold plus or minus a margin.
        // Boxes (0,0)-(w,1) and (s,0)-(s+w,1) have IoU (w - s)/(w + s), so s = w(1 - t)/(1 + t) puts the IoU at t.
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 200; trial++)
        {
            var t = 0.2 + 0.7 * g.NextDouble();
            var w = 10 + 90 * g.NextDouble();
            var above = g.NextInt64(2) == 0;
            var target = above ? t + 1e-3 : t - 1e-3;
            var s = w * (1 - target) / (1 + target);
            float[] boxes = [0, 0, (float)w, 1, (float)s, 0, (float)(s + w), 1];
            var keep = RunNms(boxes, [0.9f, 0.3f], t);
            Assert.True(above ? keep.SequenceEqual([0L]) : keep.SequenceEqual([0L, 1L]),
                $"IoU {target:F5} {(above ? "above" : "below")} threshold {t:F5} kept [{string.Join(", ", keep)}] (seed {seed})");
        }
    }

    [Fact]
    public void IdenticalBoxesAndTiedScores()
    {
        TestUtil.Fresh(out _);
        float[] same = [5, 5, 20, 30, 5, 5, 20, 30, 5, 5, 20, 30];
        // IoU 1 > 0.7: only the best survives; with equal scores the lowest index counts as best
        Assert.Equal([1L], RunNms(same, [0.2f, 0.9f, 0.5f], 0.7));
        Assert.Equal([0L], RunNms(same, [0.5f, 0.5f, 0.5f], 0.7));
        // IoU 1 is not above a threshold of 1: all kept, ties in index order
        Assert.Equal([0L, 1L, 2L], RunNms(same, [0.5f, 0.5f, 0.5f], 1.0));
        // a zero-area box has union 0 with its twin (IoU undefined, never above the threshold): both kept
        Assert.Equal([0L, 1L], RunNms([3, 3, 3, 8, 3, 3, 3, 8], [0.9f, 0.8f], 0.5));
    }

    [Fact]
    public void EmptyInputAndSingleBox()
    {
        TestUtil.Fresh(out _);
        Assert.Empty(RunNms([], [], 0.5));
        Assert.Empty(RunNms([], [], 0.5, []));
        Assert.Equal([0L], RunNms([0, 0, 1, 1], [0.1f], 0.5, [7]));
    }

    [Fact]
    public void BatchedNmsOnlySuppressesWithinAClass()
    {
        TestUtil.Fresh(out _);
        float[] same = [0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10, 1, 1, 10, 10];
        // boxes 0 and 2 share class 4, box 1 is class 9, box 3 (IoU 0.81 with box 0) is class 4 as well
        Assert.Equal([1L, 0L], RunNms(same, [0.8f, 0.9f, 0.7f, 0.6f], 0.5, [4, 9, 4, 4]));
        // class ids far apart and negative take the dictionary path: same answer
        Assert.Equal([1L, 0L], RunNms(same, [0.8f, 0.9f, 0.7f, 0.6f], 0.5, [-5_000_000_000, 1L << 40, -5_000_000_000, -5_000_000_000]));
    }

    /// <summary>Random boxes on a 1/8 px grid: their areas and intersections are exact in float32, so the float32 kernel and
    /// the double reference make the same decision at every threshold comparison.</summary>
    private static (float[] Boxes, float[] Scores, long[] Classes) RandomCase(Generator g, int n, int classes, bool distinctScores)
    {
        var boxes = new float[n * 4];
        var scores = new float[n];
        var ids = new long[n];
        var rank = g.Permutation(n);
        for (var i = 0; i < n; i++)
        {
            var w = MathF.Round((float)(1 + 60 * g.NextDouble()) * 8) / 8;
            var h = MathF.Round((float)(1 + 60 * g.NextDouble()) * 8) / 8;
            var x = MathF.Round((float)(g.NextDouble() * 120) * 8) / 8;
            var y = MathF.Round((float)(g.NextDouble() * 120) * 8) / 8;
            (boxes[i * 4], boxes[i * 4 + 1], boxes[i * 4 + 2], boxes[i * 4 + 3]) = (x, y, x + w, y + h);
            // distinct scores, or few distinct values so that ties are common
            scores[i] = distinctScores ? (rank[i] + 1f) / (n + 1) : g.NextInt64(5) / 4f;
            ids[i] = g.NextInt64(classes);
        }
        return (boxes, scores, ids);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 1)]
    [InlineData(300, 1)]
    [InlineData(1000, 3)]
    [InlineData(2000, 50)]
    [InlineData(5000, 1203)]
    public void MatchesTheReference(int n, int classes)
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var distinct in new[] { true, false })
        {
            var (boxes, scores, ids) = RandomCase(g, n, classes, distinct);
            // thresholds that float32 holds exactly: the boxes lie on a 1/8 grid, so an IoU of exactly 3/10 or 7/10 occurs,
            // and the engine's float IoU and the reference's double IoU round such a tie to opposite sides of 0.3 / 0.7
            var threshold = new[] { 0.25, 0.5, 0.75 }[g.NextInt64(3)];
            var bd = boxes.Select(v => (double)v).ToArray();
            var sd = scores.Select(v => (double)v).ToArray();
            // the reference breaks score ties by index like the engine, so even tied cases must agree exactly
            var expected = BoxReference.Nms(bd, sd, classes == 1 ? null : ids, threshold);
            var actual = RunNms(boxes, scores, threshold, classes == 1 ? null : ids);
            Assert.True(expected.SequenceEqual(actual),
                $"n={n} classes={classes} thr={threshold} distinct={distinct}: engine kept {actual.Length}, reference {expected.Length} (seed {seed})");
            // batched NMS with every box in one class is plain NMS
            if (classes == 1)
                Assert.Equal(expected, RunNms(boxes, scores, threshold, new long[n]));
        }
    }

    /// <summary>Long kept lists, as in the RPN's NMS: a candidate is compared with several kept boxes at a time, so the
    /// suppressing box must count wherever it sits (first or last lane, a middle lane, the tail after the last full
    /// vector), and a NaN coordinate in any lane must not suppress, at a negative threshold too (where an IoU of 0
    /// would).</summary>
    [Theory]
    [InlineData(0.5)]
    [InlineData(0.75)]
    [InlineData(-0.5)]
    public void LongKeptListsMatchTheReferenceWhereverTheSuppressorSits(double threshold)
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var grid in new[] { 37, 64, 101 })
        {
            // `grid` disjoint 12×12 cells, all kept; NaN boxes among them; then shifted copies of random cells with lower
            // scores, each overlapping its own cell only (1/8 px shifts: float and double IoUs agree)
            // below 0 every finite IoU suppresses, so the best 19 cells are NaN boxes: the first finite box then meets
            // kept lists of NaN boxes only (two full vectors and a tail), and must survive them
            var nanLead = threshold < 0 ? 19 : 0;
            var boxes = new List<float>();
            var scores = new List<float>();
            var nanBoxes = 0;
            for (var k = 0; k < grid; k++)
            {
                float x = 16 * (k % 10), y = 16 * (k / 10);
                if (k < nanLead || g.NextInt64(9) == 0)
                {
                    float[] box = [x, y, x + 12, y + 12];
                    box[g.NextInt64(4)] = float.NaN;
                    boxes.AddRange(box);
                    nanBoxes++;
                }
                else boxes.AddRange([x, y, x + 12, y + 12]);
                scores.Add(1f - k / 1024f);
            }
            var copies = 3 * grid;
            for (var k = 0; k < copies; k++)
            {
                var cell = (int)g.NextInt64(grid);
                var dx = g.NextInt64(33) / 8f;
                var dy = g.NextInt64(9) / 8f;
                float x = 16 * (cell % 10) + dx, y = 16 * (cell / 10) + dy;
                boxes.AddRange([x, y, x + 12, y + 12]);
                scores.Add(0.5f - k / (4f * copies));
            }
            var expected = BoxReference.Nms(boxes.Select(v => (double)v).ToArray(), scores.Select(v => (double)v).ToArray(), null, threshold);
            var actual = RunNms([.. boxes], [.. scores], threshold);
            Assert.True(expected.SequenceEqual(actual),
                $"{grid} cells, threshold {threshold}: engine kept {actual.Length} [{string.Join(", ", actual.Take(12))} …], " +
                $"reference {expected.Length} [{string.Join(", ", expected.Take(12))} …] (seed {seed})");
            if (threshold >= 0) Assert.True(actual.Length > grid / 2, $"only {actual.Length} boxes kept of {grid} disjoint cells");
            else Assert.True(actual.Length == nanBoxes + 1, $"threshold {threshold}: {actual.Length} boxes kept, expected the {nanBoxes} NaN boxes and the best finite one");
        }
    }

    /// <summary>The CPU pass compares float IoUs with the largest float ≤ the double threshold; for every float f that
    /// must decide f &gt; threshold exactly as the double comparison does, thresholds that float cannot hold included.</summary>
    [Fact]
    public void FloatComparisonDecidesAsTheDoubleThreshold()
    {
        var g = TestUtil.Fresh(out var seed);
        var thresholds = new List<double> { 0.5, 0.7, 0.3, 1.0 / 3, 0, -0.0, -0.5, 1, 1e-45, -1e-45, 1e40, -1e40,
                                            double.PositiveInfinity, double.NegativeInfinity, float.MaxValue, float.Epsilon };
        for (var i = 0; i < 2000; i++) thresholds.Add((g.NextDouble() * 2 - 1) * Math.Pow(10, g.NextInt64(9) - 6));
        foreach (var t in thresholds)
        {
            var limit = CpuDetectionBackend.LargestFloatNotAbove(t);
            Assert.True(limit <= t, $"threshold {t:R}: limit {limit:R} is above it (seed {seed})");
            var f = (float)t;
            foreach (var candidate in new[] { f, MathF.BitDecrement(f), MathF.BitIncrement(f), MathF.BitDecrement(MathF.BitDecrement(f)),
                                              MathF.BitIncrement(MathF.BitIncrement(f)), float.NaN, 0f, -0f })
                Assert.True(candidate > t == candidate > limit,
                            $"threshold {t:R}, IoU {candidate:R}: double says {candidate > t}, float limit {limit:R} says {candidate > limit} (seed {seed})");
        }
    }

    [Fact]
    public void BadInputsNameTheProblem()
    {
        TestUtil.Fresh(out _);
        using var boxes = Tensor.Zeros([3, 4]);
        using var scores2 = Tensor.Zeros([2]);
        var e = Assert.Throws<ArgumentException>(() => DetectionOps.Nms(boxes, scores2, 0.5));
        Assert.Contains("scores must be float32 of shape (3)", e.Message);
        using var boxes5 = Tensor.Zeros([3, 5]);
        using var scores3 = Tensor.Zeros([3]);
        e = Assert.Throws<ArgumentException>(() => DetectionOps.Nms(boxes5, scores3, 0.5));
        Assert.Contains("(R, 4)", e.Message);
        using var floatIds = Tensor.Zeros([3]);
        e = Assert.Throws<ArgumentException>(() => DetectionOps.BatchedNms(boxes, scores3, floatIds, 0.5));
        Assert.Contains("classIds must be int64", e.Message);
        e = Assert.Throws<ArgumentException>(() => DetectionOps.Nms(boxes, scores3, double.NaN));
        Assert.Contains("NaN", e.Message);
    }
}
