using Engine.Detection.Reference;
using Engine.Reference;
using Engine.Tests;

namespace Engine.Detection.Tests.Modeling;

public class PoolersTests
{
    private static long[] Levels(params float[][] boxes)
    {
        using var t = Tensor.From(boxes.SelectMany(b => b).ToArray(), boxes.Length, 4);
        using var l = RoiPooler.AssignBoxesToLevels([t], 2, 5);
        return l.ToInt64Array();
    }

    [Fact]
    public void FpnLevelsByHand()
    {
        TestUtil.Fresh(out _);
        // k = floor(4 + log2(sqrt(area) / 224)), clamped to [2, 5], reported relative to level 2:
        //   224×224 → 4 → 2;  112×112 → 3 → 1;  448×448 → 5 → 3;  111×112 (just under 112) → log2 < -1 → 2 → 0;
        //   56×56 → 2 → 0;  10×10 → -0.5 → clamped 2 → 0;  2000×2000 → 7.1 → clamped 5 → 3;  100×400 (sqrt 200) → 3 → 1
        Assert.Equal([2L, 1L, 3L, 0L, 0L, 0L, 3L, 1L], Levels(
            [0, 0, 224, 224], [10, 10, 122, 122], [0, 0, 448, 448], [0, 0, 111, 112],
            [0, 0, 56, 56], [5, 5, 15, 15], [0, 0, 2000, 2000], [0, 0, 100, 400]));
    }

    [Fact]
    public void BoxesOfNoSizeGoToTheFinestLevelAndInfiniteOnesToTheCoarsest()
    {
        TestUtil.Fresh(out _);
        // empty (size 0: log2(1e-8) ≈ −26.6, clamped), inverted (negative area: NaN size), a NaN coordinate (NaN size),
        // an infinite box (+∞, clamped)
        Assert.Equal([0L, 0L, 0L, 3L], Levels([5, 5, 5, 9], [9, 9, 3, 12], [float.NaN, 1, 4, 4], [0, 0, float.PositiveInfinity, 8]));
    }

    [Fact]
    public void LevelAssignmentRejectsBadRoisAndRules()
    {
        TestUtil.Fresh(out _);
        using var boxes = Tensor.From(new float[8], 2, 4);
        var e = Assert.Throws<ArgumentException>(() => RoiPooler.AssignRoisToLevels(boxes, new FpnLevelRule(2, 5)));
        Assert.Contains("rois must be float32 (R, 5)", e.Message);
        using var rois = Tensor.From(new float[5], 1, 5);
        e = Assert.Throws<ArgumentException>(() => RoiPooler.AssignRoisToLevels(rois, new FpnLevelRule(5, 2)));
        Assert.Contains("maxLevel 2 is below minLevel 5", e.Message);
        e = Assert.Throws<ArgumentException>(() => RoiPooler.AssignRoisToLevels(rois, new FpnLevelRule(2, 5, 0)));
        Assert.Contains("canonical box size 0", e.Message);
    }

    [Fact]
    public void LevelsMatchTheFormulaOnRandomBoxes()
    {
        var g = TestUtil.Fresh(out var seed);
        var boxes = new List<float[]>();
        while (boxes.Count < 500)
        {
            var w = (float)Math.Exp(g.NextDouble() * 7);
            var h = (float)Math.Exp(g.NextDouble() * 7);
            var k = 4 + Math.Log2(Math.Sqrt((double)w * h) / 224);
            if (Math.Abs(k - Math.Round(k)) < 1e-4) continue; // float32 and double may round a level boundary differently
            boxes.Add([0, 0, w, h]);
        }
        var expected = boxes.Select(b => BoxReference.FpnLevel(b.Select(v => (double)v).ToArray(), 2, 5)).ToArray();
        Assert.True(expected.SequenceEqual(Levels([.. boxes])), $"seed {seed}");
    }

    [Fact]
    public void PoolerConcatenatesImagesAndPoolsEachBoxFromItsLevel()
    {
        var g = TestUtil.Fresh(out var seed);
        double[] scales = [1 / 4.0, 1 / 8.0, 1 / 16.0, 1 / 32.0];
        var pooler = new RoiPooler((7, 7), scales);
        Assert.Equal((2, 5), (pooler.MinLevel, pooler.MaxLevel));
        const int imageH = 96, imageW = 128, c = 2;
        var feats = scales.Select(s => RefTensor.Random(g, [2, c, (int)(imageH * s), (int)(imageW * s)])).ToArray();
        // image 0: 3 boxes, image 1: 2 boxes, sizes spread over all levels (≥ 448 px goes to P5)
        float[][] b0 = [[4, 4, 40, 30], [10, 20, 120, 90], [0, 0, 128, 96]];
        float[][] b1 = [[50, 40, 60, 52], [1, 1, 127, 95]];
        using var t0 = Tensor.From(b0.SelectMany(x => x).ToArray(), 3, 4);
        using var t1 = Tensor.From(b1.SelectMany(x => x).ToArray(), 2, 4);
        var xs = feats.Select(f => f.ToTensor()).ToArray();
        using var pooled = pooler.Forward(xs, [t0, t1]);
        Assert.Equal([5, c, 7, 7], pooled.ShapeArray());

        var rois = b0.Select(b => new double[] { 0, b[0], b[1], b[2], b[3] }).Concat(b1.Select(b => new double[] { 1, b[0], b[1], b[2], b[3] }))
            .SelectMany(x => x).ToArray();
        var levels = b0.Concat(b1).Select(b => BoxReference.FpnLevel(b.Select(v => (double)v).ToArray(), 2, 5)).ToArray();
        var expected = RoiAlignReference.Forward(feats, scales, rois, levels, 7, 7, 0, true);
        TestUtil.AssertClose(expected, pooled, "pooler", seed, 2e-5, 1e-4);
        foreach (var x in xs) x.Dispose();

        using var fmt = RoiPooler.ConvertBoxesToPoolerFormat([t0, t1]);
        Assert.Equal(rois.Select(v => (float)v).ToArray(), fmt.ToFloatArray());
    }

    [Fact]
    public void ScalesMustBeConsecutivePowersOfTwo()
    {
        TestUtil.Fresh(out _);
        Assert.Throws<ArgumentException>(() => new RoiPooler((7, 7), [1 / 3.0]));
        var e = Assert.Throws<ArgumentException>(() => new RoiPooler((7, 7), [1 / 4.0, 1 / 16.0]));
        Assert.Contains("consecutive", e.Message);
    }
}
