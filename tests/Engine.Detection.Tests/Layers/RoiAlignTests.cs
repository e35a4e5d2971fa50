using Engine.Detection.Reference;
using Engine.Reference;
using Engine.Tests;

namespace Engine.Detection.Tests.Layers;

public class RoiAlignTests
{
    // float32 kernel vs double reference: each output is a weighted mean of ≤ 4·gh·gw float32 inputs of magnitude ≤ 1 with
    // weights rounded to float32 (relative error ~1e-7 each), so errors stay near 1e-6; 2e-5 + 1e-4·|ref| leaves margin.
    private const double Atol = 2e-5, Rtol = 1e-4;

    /// <summary>The 5×5 map 0..24 (value 5y + x at row y, column x), one image, one channel.</summary>
    private static Tensor Arange5x5(float add = 0)
    {
        var v = Enumerable.Range(0, 25).Select(i => i + add).ToArray();
        return Tensor.From(v, 1, 1, 5, 5);
    }

    private static float[] Pool(Tensor features, float[] box, int ph, int pw, bool aligned, int samplingRatio = 0)
    {
        using var rois = Tensor.From(new[] { 0f, box[0], box[1], box[2], box[3] }, 1, 5);
        using var y = DetectionOps.RoiAlign(features, rois, (ph, pw), 1.0, samplingRatio, aligned);
        return y.ToFloatArray();
    }

    [Fact]
    public void HandWorkedInteriorBoxAlignedAndNot()
    {
        TestUtil.Fresh(out _);
        using var f = Arange5x5();
        // Box (1, 1)-(3, 3), 4×4 bins, scale 1: the RoI is 2 px wide, so each bin is 0.5 px and adaptive sampling takes
        // ceil(2/4) = 1 sample per bin, at the bin centre. The map is linear (5y + x), so bilinear sampling is exact.
        // aligned: start 1 - 0.5 = 0.5, centres 0.75, 1.25, 1.75, 2.25 → out[i, j] = 5·c_i + c_j:
        //   5·0.75 + 0.75 = 4.5, 5·0.75 + 1.25 = 5, ... (an upsampling of [[6, 7], [11, 12]])
        float[] aligned =
        [
            4.5f, 5.0f, 5.5f, 6.0f,
            7.0f, 7.5f, 8.0f, 8.5f,
            9.5f, 10.0f, 10.5f, 11.0f,
            12.0f, 12.5f, 13.0f, 13.5f,
        ];
        Assert.Equal(aligned, Pool(f, [1, 1, 3, 3], 4, 4, aligned: true));
        // not aligned: start 1, centres 1.25, 1.75, 2.25, 2.75 → 5·1.25 + 1.25 = 7.5, ...
        float[] legacy =
        [
            7.5f, 8.0f, 8.5f, 9.0f,
            10.0f, 10.5f, 11.0f, 11.5f,
            12.5f, 13.0f, 13.5f, 14.0f,
            15.0f, 15.5f, 16.0f, 16.5f,
        ];
        Assert.Equal(legacy, Pool(f, [1, 1, 3, 3], 4, 4, aligned: false));
    }

    [Fact]
    public void HandWorkedBoxOverTheBottomRightBorder()
    {
        TestUtil.Fresh(out _);
        using var f = Arange5x5();
        // Box (3, 3)-(7, 7), aligned, 2×2 bins: start 2.5, size 4, bins of 2 px, ceil(4/2) = 2 samples per bin and axis at
        // 2.5 + 2·p + (i + 0.5)·1 → bin 0: 3, 4; bin 1: 5, 6. Coordinate 4 is the last row (kept), 5 ≤ H = 5 is clamped
        // to row 4, 6 > 5 lies outside and contributes 0. Every bin divides by 4 samples.
        //   bin (0,0): rows {3,4} × cols {3,4}: 18 + 19 + 23 + 24 = 84 → 21
        //   bin (0,1): rows {3,4} × cols {5→4, 6 out}: 19 + 24 = 43 → 10.75
        //   bin (1,0): rows {5→4, 6 out} × cols {3,4}: 23 + 24 = 47 → 11.75
        //   bin (1,1): only (5→4, 5→4): 24 → 6
        Assert.Equal([21f, 10.75f, 11.75f, 6f], Pool(f, [3, 3, 7, 7], 2, 2, aligned: true));
    }

    [Fact]
    public void HandWorkedBoxOverTheTopLeftBorder()
    {
        TestUtil.Fresh(out _);
        using var f = Arange5x5(add: 1); // 5y + x + 1, so that pixel (0, 0) is not 0
        // Box (-3, -3)-(1, 1), aligned: start -3.5, size 4, 2 samples per bin at -3, -2 (bin 0, both < -1: outside) and
        // -1, 0 (bin 1: -1 is still inside [-1, H] and clamps to 0). Only bin (1,1) has samples: 4 at pixel (0, 0) = 1.
        Assert.Equal([0f, 0f, 0f, 1f], Pool(f, [-3, -3, 1, 1], 2, 2, aligned: true));
    }

    [Fact]
    public void HandWorkedDegenerateBoxes()
    {
        TestUtil.Fresh(out _);
        using var f = Arange5x5();
        // A zero-size box has ceil(0) = 0 samples per bin when aligned: every bin is 0.
        Assert.Equal([0f, 0f, 0f, 0f], Pool(f, [2, 2, 2, 2], 2, 2, aligned: true));
        // Not aligned, the RoI is widened to 1×1 px: one bin, one sample at (2.5, 2.5) → 5·2.5 + 2.5 = 15.
        Assert.Equal([15f], Pool(f, [2, 2, 2, 2], 1, 1, aligned: false));
        // An inverted box (x2 < x1) has a negative size and, aligned, no samples either.
        Assert.Equal([0f, 0f, 0f, 0f], Pool(f, [3, 3, 1, 1], 2, 2, aligned: true));
    }

    [Fact]
    public void HandWorkedFixedSamplingRatio()
    {
        TestUtil.Fresh(out _);
        using var f = Arange5x5();
        // Box (0, 0)-(4, 4), aligned, one bin, sampling ratio 2: start -0.5, bin 4, samples at -0.5 + (i + 0.5)·2 = 0.5, 2.5
        // on each axis; the mean of 5y + x over those four points is 5·1.5 + 1.5 = 9.
        Assert.Equal([9f], Pool(f, [0, 0, 4, 4], 1, 1, aligned: true, samplingRatio: 2));
    }

    internal static double[] RandomRois(Generator g, int r, int n, double imageH, double imageW, bool withDegenerate = true)
    {
        var rois = new double[r * 5];
        for (var i = 0; i < r; i++)
        {
            rois[i * 5] = g.NextInt64(n);
            // boxes from well inside to well outside the image, some degenerate or inverted
            var kind = g.NextInt64(10);
            double x1 = (g.NextDouble() * 1.4 - 0.2) * imageW, y1 = (g.NextDouble() * 1.4 - 0.2) * imageH;
            double w = g.NextDouble() * imageW * 0.8, h = g.NextDouble() * imageH * 0.8;
            if (withDegenerate && kind == 0) w = 0;
            if (withDegenerate && kind == 1) h = -h * 0.1;
            rois[i * 5 + 1] = (float)x1;
            rois[i * 5 + 2] = (float)y1;
            rois[i * 5 + 3] = (float)(x1 + w);
            rois[i * 5 + 4] = (float)(y1 + h);
        }
        return rois;
    }

    public static TheoryData<int, int, int, bool> Configs => new()
    {
        // Ph, Pw, sampling ratio, aligned
        { 7, 7, 0, true }, { 3, 5, 0, true }, { 2, 9, 2, true }, { 5, 3, 0, false }, { 1, 1, 1, false }, { 14, 14, 0, true }, { 4, 17, 3, false },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void ForwardAndBackwardMatchReferenceOnRandomInputs(int ph, int pw, int samplingRatio, bool aligned)
    {
        var g = TestUtil.Fresh(out var seed);
        // channel counts below, at and across the 8-channel SIMD blocks
        var (n, c) = (1 + (int)g.NextInt64(2), new[] { 1, 3, 8, 11, 17 }[g.NextInt64(5)]);
        var (h, w) = (3 + (int)g.NextInt64(17), 3 + (int)g.NextInt64(23));
        var scale = new[] { 1.0, 0.5, 0.25 }[g.NextInt64(3)];
        var r = 1 + (int)g.NextInt64(25);
        var feat = RefTensor.Random(g, [n, c, h, w]);
        var rois = RandomRois(g, r, n, h / scale, w / scale);
        using var x = feat.ToTensor().RequireGrad();
        using var roisT = Tensor.FromDoubles(rois, [r, 5]);
        using var y = DetectionOps.RoiAlign(x, roisT, (ph, pw), scale, samplingRatio, aligned);
        var expected = RoiAlignReference.Forward([feat], [scale], rois, null, ph, pw, samplingRatio, aligned);
        var what = $"roi_align {ph}×{pw} sr={samplingRatio} aligned={aligned} feat {ShapeUtil.Format(feat.Shape)} scale {scale} R={r}";
        TestUtil.AssertClose(expected, y, what, seed, Atol, Rtol);

        var gy = RefTensor.Random(g, expected.Shape);
        using var gyT = gy.ToTensor();
        y.Backward(gyT);
        var expectedGrad = RoiAlignReference.Backward([feat.Shape], [scale], rois, null, ph, pw, samplingRatio, aligned, gy);
        TestUtil.AssertClose(expectedGrad[0], x.Grad!, what + " backward", seed, Atol, Rtol);
    }

    [Fact]
    public void ReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (aligned, sr) in new[] { (true, 0), (false, 2), (true, 3) })
        {
            int[] shape = [2, 2, 5, 6];
            var rois = RandomRois(g, 4, 2, 5, 6);
            const int ph = 2, pw = 3;
            var result = Gradcheck.Check(
                inp => RoiAlignReference.Forward([new RefTensor(shape, inp[0])], [1.0], inp[1], null, ph, pw, sr, aligned).Data,
                (inp, u) => [RoiAlignReference.Backward([shape], [1.0], inp[1], null, ph, pw, sr, aligned, new RefTensor([4, 2, ph, pw], u))[0].Data, new double[inp[1].Length]],
                [RefTensor.Random(g, shape).Data, rois], g, differentiable: [true, false]);
            Assert.True(result.Passed, $"aligned={aligned} sr={sr}: {result} (seed {seed})");
        }
    }

    [Fact]
    public void MultiLevelMatchesReferenceInOriginalOrder()
    {
        var g = TestUtil.Fresh(out var seed);
        var (n, c) = (2, 9);
        double[] scales = [1 / 4.0, 1 / 8.0, 1 / 16.0, 1 / 32.0];
        var (imageH, imageW) = (64 + 4 * (int)g.NextInt64(16), 64 + 4 * (int)g.NextInt64(16));
        var feats = scales.Select(s => RefTensor.Random(g, [n, c, (int)Math.Ceiling(imageH * s), (int)Math.Ceiling(imageW * s)])).ToArray();
        var r = 1 + (int)g.NextInt64(40);
        var rois = RandomRois(g, r, n, imageH, imageW);
        var levelOf = Enumerable.Range(0, r).Select(_ => g.NextInt64(scales.Length)).ToArray();
        var xs = feats.Select(f => f.ToTensor().RequireGrad()).ToArray();
        using var roisT = Tensor.FromDoubles(rois, [r, 5]);
        using var levelT = Tensor.From(levelOf);
        using var y = DetectionOps.MultiLevelRoiAlign(xs, scales, roisT, levelT, (7, 7));
        var expected = RoiAlignReference.Forward(feats, scales, rois, levelOf, 7, 7, 0, true);
        TestUtil.AssertClose(expected, y, $"multi-level R={r} image {imageH}×{imageW}", seed, Atol, Rtol);

        var gy = RefTensor.Random(g, expected.Shape);
        using var gyT = gy.ToTensor();
        y.Backward(gyT);
        var expectedGrads = RoiAlignReference.Backward(feats.Select(f => f.Shape).ToList(), scales, rois, levelOf, 7, 7, 0, true, gy);
        for (var l = 0; l < xs.Length; l++)
        {
            if (levelOf.Contains(l)) TestUtil.AssertClose(expectedGrads[l], xs[l].Grad!, $"multi-level backward level {l}", seed, Atol, Rtol);
            else Assert.All(xs[l].Grad!.ToFloatArray(), v => Assert.Equal(0f, v));
            xs[l].Dispose();
        }
    }

    [Fact]
    public void OnlyLevelsThatRequireGradGetOne()
    {
        var g = TestUtil.Fresh(out var seed);
        var f0 = RefTensor.Random(g, [1, 2, 8, 8]);
        var f1 = RefTensor.Random(g, [1, 2, 4, 4]);
        using var x0 = f0.ToTensor();
        using var x1 = f1.ToTensor().RequireGrad();
        var rois = RandomRois(g, 6, 1, 32, 32, withDegenerate: false);
        long[] levelOf = [0, 1, 0, 1, 1, 0];
        using var roisT = Tensor.FromDoubles(rois, [6, 5]);
        using var levelT = Tensor.From(levelOf);
        using var y = DetectionOps.MultiLevelRoiAlign([x0, x1], [0.25, 0.125], roisT, levelT, (2, 2), 2);
        using var s = y.Sum();
        s.Backward();
        Assert.Null(x0.Grad);
        var expected = RoiAlignReference.Backward([f0.Shape, f1.Shape], [0.25, 0.125], rois, levelOf, 2, 2, 2, true,
            new RefTensor([6, 2, 2, 2], Enumerable.Repeat(1.0, 48).ToArray()));
        TestUtil.AssertClose(expected[1], x1.Grad!, "level 1 gradient", seed, Atol, Rtol);
    }

    [Fact]
    public void BackwardIsBitIdenticalAcrossRuns()
    {
        var g = TestUtil.Fresh(out _);
        var feat = RefTensor.Random(g, [2, 16, 20, 30]);
        var rois = RandomRois(g, 300, 2, 40, 60); // many RoIs per plane: accumulation order matters
        using var roisT = Tensor.FromDoubles(rois, [300, 5]);
        var gy = RefTensor.Random(g, [300, 16, 7, 7]);
        float[]? first = null;
        for (var run = 0; run < 3; run++)
        {
            using var x = feat.ToTensor().RequireGrad();
            using var y = DetectionOps.RoiAlign(x, roisT, (7, 7), 0.5);
            using var gyT = gy.ToTensor();
            y.Backward(gyT);
            var grad = x.Grad!.ToFloatArray();
            if (first is null) first = grad;
            else Assert.True(first.AsSpan().SequenceEqual(grad), "the ROIAlign gradient changed between identical runs");
        }
    }

    [Fact]
    public void StridedFeaturesAndEmptyRoiSet()
    {
        var g = TestUtil.Fresh(out var seed);
        var feat = RefTensor.Random(g, [1, 3, 9, 11]);
        using var strided = TestUtil.NonContiguous(feat);
        Assert.False(strided.IsContiguous);
        var rois = RandomRois(g, 5, 1, 9, 11);
        using var roisT = Tensor.FromDoubles(rois, [5, 5]);
        using var y = DetectionOps.RoiAlign(strided, roisT, (3, 3), 1.0);
        TestUtil.AssertClose(RoiAlignReference.Forward([feat], [1.0], rois, null, 3, 3, 0, true), y, "strided features", seed, Atol, Rtol);

        using var x = feat.ToTensor().RequireGrad();
        using var none = Tensor.Zeros([0, 5]);
        using var empty = DetectionOps.RoiAlign(x, none, (7, 7), 1.0);
        Assert.Equal([0, 3, 7, 7], empty.ShapeArray());
        using var gy = Tensor.Zeros([0, 3, 7, 7]);
        empty.Backward(gy);
        Assert.All(x.Grad!.ToFloatArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void BadInputsNameTheProblem()
    {
        TestUtil.Fresh(out _);
        using var f = Tensor.Zeros([2, 3, 8, 8]);
        using var badBatch = Tensor.From(new[] { 2f, 0, 0, 4, 4 }, 1, 5);
        var e = Assert.Throws<ArgumentException>(() => DetectionOps.RoiAlign(f, badBatch, (7, 7), 1.0));
        Assert.Contains("rois[0, 0] = 2", e.Message);
        using var fractional = Tensor.From(new[] { 0.5f, 0, 0, 4, 4 }, 1, 5);
        Assert.Throws<ArgumentException>(() => DetectionOps.RoiAlign(f, fractional, (7, 7), 1.0));
        using var four = Tensor.Zeros([3, 4]);
        e = Assert.Throws<ArgumentException>(() => DetectionOps.RoiAlign(f, four, (7, 7), 1.0));
        Assert.Contains("(R, 5)", e.Message);
        using var ok = Tensor.From(new[] { 0f, 0, 0, 4, 4 }, 1, 5);
        e = Assert.Throws<ArgumentException>(() => DetectionOps.RoiAlign(f, ok, (0, 7), 1.0));
        Assert.Contains("output size", e.Message);
        e = Assert.Throws<ArgumentException>(() => DetectionOps.RoiAlign(f, ok, (7, 7), 1.0, samplingRatio: -1));
        Assert.Contains("samplingRatio", e.Message);
        using var level = Tensor.From(new long[] { 2 });
        e = Assert.Throws<ArgumentException>(() => DetectionOps.MultiLevelRoiAlign([f, f], [1.0, 0.5], ok, level, (7, 7)));
        Assert.Contains("levelOfEachRoi[0] = 2", e.Message);
        using var other = Tensor.Zeros([2, 4, 4, 4]);
        using var level0 = Tensor.From(new long[] { 0 });
        e = Assert.Throws<ArgumentException>(() => DetectionOps.MultiLevelRoiAlign([f, other], [1.0, 0.5], ok, level0, (7, 7)));
        Assert.Contains("same batch size N and channel count C", e.Message);
    }
}
