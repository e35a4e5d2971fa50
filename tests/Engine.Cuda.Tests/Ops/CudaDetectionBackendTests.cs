// Every member of CudaDetectionBackend against CpuDetectionBackend on fresh random inputs (seed in every failure
// message), odd and empty sizes, outputs poisoned before the call. Tolerances, per member: IoU and the matcher are
// the same IEEE operations in the same order, so exact; the box coder differs only in expf / logf (within 2 ulp of
// the CPU's MathF), scaled by the weights and coordinates as noted at each call; ROIAlign sums the same float
// bilinear terms in the same order in the forward (1e-5 abs + 1e-5 rel for the float rounding of the weights), and
// the backward adds them with atomics in a varying order (1e-4 abs: up to a few hundred additions of terms ≤ 1);
// NMS keeps exactly the same indices (the kernel uses the CPU's float IoU expression and tie order).
using Engine.Detection;
using Engine.Tests;
using static Engine.Cuda.Tests.Ops.OpsParity;

namespace Engine.Cuda.Tests.Ops;

public sealed class CudaDetectionBackendTests
{
    private static IDetectionBackend On(Device d) => DetectionBackends.For(d);

    [CudaFact]
    public void RegistrationMakesTheCudaBackendsTheOnesOfCudaDevices()
    {
        _ = GpuBackend;
        Assert.IsType<Engine.Cuda.Ops.CudaDetectionBackend>(DetectionBackends.For(GpuDevice));
        Assert.IsType<Engine.Cuda.Ops.CudaLongTailBackend>(Engine.LongTail.LongTailBackends.For(GpuDevice));
    }

    [CudaTheory]
    [InlineData(0, 5)]
    [InlineData(7, 0)]
    [InlineData(13, 29)]
    [InlineData(257, 130)]
    public void PairwiseIou(int n, int m)
    {
        var g = Fresh(out var seed);
        // sides from 0 include empty boxes
        using var a = Tensor.From<float>(Boxes(g, n, 100, 0, 40), [n, 4]);
        using var b = Tensor.From<float>(Boxes(g, m, 100, 0, 40), [m, 4]);
        Check($"PairwiseIou {n}×{m}", seed, [a, b], (d, x) =>
        {
            var iou = Tensor.Empty([n, m], DType.Float32, d);
            On(d).PairwiseIou(x[0], x[1], iou);
            return [iou];
        }, 0, 0);
    }

    [CudaTheory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1001)]
    public void EncodeBoxes(int r)
    {
        var g = Fresh(out var seed);
        using var src = Tensor.From<float>(Boxes(g, r, 200, 0.5, 60), [r, 4]);
        using var target = Tensor.From<float>(Boxes(g, r, 200, 0.5, 60), [r, 4]);
        var weights = new BoxCoderWeights(10, 10, 5, 5);
        // dx, dy exact; dw, dh = 5·log(ratio) with |log| ≤ ~5: 2 ulp of logf ≈ 1e-6, times 5
        Check($"EncodeBoxes R={r}", seed, [src, target], (d, x) =>
        {
            var deltas = Tensor.Empty([r, 4], DType.Float32, d);
            On(d).EncodeBoxes(x[0], x[1], weights, deltas);
            return [deltas];
        }, 1e-5, 1e-6);
    }

    [CudaFact]
    public void EncodeBoxesRaisesANonPositiveSourceBoxAtTheNextWait()
    {
        using var src = Tensor.From<float>([0, 0, 4, 4, 1, 1, 2, 2, 5, 5, 5, 9], [3, 4], GpuDevice);
        using var target = Tensor.From<float>(new float[12], [3, 4], GpuDevice);
        using var deltas = Tensor.Empty([3, 4], DType.Float32, GpuDevice);
        On(GpuDevice).EncodeBoxes(src, target, new BoxCoderWeights(1, 1, 1, 1), deltas);
        var e = Assert.Throws<ArgumentException>(() => GpuBackend.Synchronize());
        Assert.StartsWith("GetDeltas: source box 2 = [5, 5, 5, 9] has width 0 and height 4", e.Message);
    }

    [CudaTheory]
    [InlineData(0, 3)]
    [InlineData(5, 1)]
    [InlineData(129, 7)]
    public void DecodeBoxes(int r, int k)
    {
        var g = Fresh(out var seed);
        using var deltas = Tensor.From<float>(Normal(g, r * k * 4, 1.5), [r, k * 4]);
        using var boxes = Tensor.From<float>(Boxes(g, r, 200, 1, 60), [r, 4]);
        var weights = new BoxCoderWeights(10, 10, 5, 5);
        // dw = d/5 with d ~ N(0, 1.5²), so |dw| < 1.5 in practice and pw = expf(dw)·w < e^1.5·61 < 300: 2 ulp of expf
        // (2.4e-7 relative) is < 1e-4 absolute, plus a rounding of coordinates below ~600 (3e-5 each)
        Check($"DecodeBoxes R={r} K={k}", seed, [deltas, boxes], (d, x) =>
        {
            var output = Tensor.Empty([r, k * 4], DType.Float32, d);
            On(d).DecodeBoxes(x[0], x[1], weights, Math.Log(1000.0 / 16), output);
            return [output];
        }, 5e-4, 1e-6);
    }

    [CudaTheory]
    [InlineData(0, 2, 5)]
    [InlineData(1, 2, 5)]
    [InlineData(3001, 2, 5)]
    [InlineData(515, 3, 7)]
    public void AssignFpnLevels(int r, int minLevel, int maxLevel)
    {
        var g = Fresh(out var seed);
        // sides log-uniform from 1 to about 3000 px (every level and both clamps), and after them the boxes the rule
        // treats apart: empty (level of size 0: the finest), inverted and NaN (NaN size: the finest), infinite (the coarsest)
        var values = new float[r * 5];
        for (var i = 0; i < r; i++)
        {
            var (x, y) = ((float)(g.NextDouble() * 500), (float)(g.NextDouble() * 500));
            values[i * 5] = g.Next(2);
            values[i * 5 + 1] = x;
            values[i * 5 + 2] = y;
            values[i * 5 + 3] = x + (float)Math.Exp(g.NextDouble() * 8);
            values[i * 5 + 4] = y + (float)Math.Exp(g.NextDouble() * 8);
        }
        float[][] special = [[0, 5, 5, 5, 9], [0, 9, 9, 3, 12], [0, float.NaN, 1, 4, 4], [0, 0, 0, float.PositiveInfinity, 8]];
        for (var i = 0; i < Math.Min(r / 100, special.Length); i++) special[i].CopyTo(values, (r - 1 - i) * 5);
        using var rois = Tensor.From<float>(values, [r, 5]);
        var rule = new FpnLevelRule(minLevel, maxLevel);
        // exact: the same float expression (sqrtf and the division are IEEE; log2f and MathF.Log2 agree at the powers of
        // two where a level changes, and a random size lands within an ulp of one with negligible probability)
        Check($"AssignFpnLevels R={r} levels {minLevel}..{maxLevel}", seed, [rois], (d, x) =>
        {
            var levels = Tensor.Empty([r], DType.Int64, d);
            On(d).AssignFpnLevels(x[0], rule, levels);
            return [levels];
        }, 0, 0);
    }

    public static TheoryData<int, int, int, bool> RoiAlignCases => new()
    {
        // levels, rois, sampling ratio, aligned; levels = -2: two feature maps, no level tensor (all on level 0)
        { 1, 0, 2, true },
        { 1, 17, 0, true },
        { 3, 23, 2, false },
        { 3, 1, 0, true },
        { -2, 9, 0, false },
    };

    [CudaTheory]
    [MemberData(nameof(RoiAlignCases))]
    public void RoiAlignForwardAndBackward(int levelCount, int r, int samplingRatio, bool aligned)
    {
        var g = Fresh(out var seed);
        var withLevels = levelCount > 0;
        var l = Math.Abs(levelCount);
        const int n = 2, c = 3, ph = 3, pw = 4;
        int[][] sizes = [[13, 11], [7, 6], [4, 3]];
        var scales = new[] { 1 / 8.0, 1 / 16.0, 1 / 32.0 }.Take(l).ToArray();
        var geometry = new RoiAlignGeometry(ph, pw, scales, samplingRatio, aligned);
        var features = Enumerable.Range(0, l).Select(i => Tensor.From<float>(Normal(g, n * c * sizes[i][0] * sizes[i][1], 1), [n, c, sizes[i][0], sizes[i][1]])).ToArray();
        var roiValues = new float[r * 5];
        var boxes = Boxes(g, r, 90, 0, 50);
        for (var i = 0; i < r; i++)
        {
            roiValues[i * 5] = g.Next(n);
            for (var q = 0; q < 4; q++) roiValues[i * 5 + 1 + q] = boxes[i * 4 + q];
        }
        using var rois = Tensor.From<float>(roiValues, [r, 5]);
        using var levels = Tensor.From<long>(Integers(g, r, 0, l), [r]);
        using var gradOut = Tensor.From<float>(Normal(g, r * c * ph * pw, 1), [r, c, ph, pw]);
        Tensor[] inputs = [rois, levels, gradOut, .. features];
        Check($"RoiAlign L={levelCount} R={r} ratio={samplingRatio} aligned={aligned}", seed, inputs, (d, x) =>
        {
            var feats = x[3..];
            var level = withLevels ? x[1] : null;
            var output = Tensor.Empty([r, c, ph, pw], DType.Float32, d);
            On(d).RoiAlignForward(geometry, feats, x[0], level, output);
            var grads = feats.Select(f => (Tensor?)Tensor.Empty(f.ShapeArray(), DType.Float32, d)).ToArray();
            On(d).RoiAlignBackward(geometry, x[2], x[0], level, grads);
            return [output, .. grads.Select(t => t!)];
        }, 1e-4, 1e-5);
        foreach (var f in features) f.Dispose();
    }

    [CudaTheory]
    [InlineData(0, 0)]
    [InlineData(1, 0)]
    [InlineData(300, 0)]
    [InlineData(300, 5)]
    [InlineData(2001, 40)]
    public void Nms(int r, int classes)
    {
        var g = Fresh(out var seed);
        using var boxes = Tensor.From<float>(Boxes(g, r, 100, 1, 40), [r, 4]);
        // scores on a grid of 1/64 so that ties occur and their index order is checked
        using var scores = Tensor.From<float>(Enumerable.Range(0, r).Select(_ => g.Next(64) / 64f).ToArray(), [r]);
        using var classIds = Tensor.From<long>(Integers(g, r, 0, Math.Max(classes, 1)), [r]);
        Check($"Nms R={r} classes={classes}", seed, [boxes, scores, classIds], (d, x) =>
        {
            var keep = Tensor.Empty([r], DType.Int64, d);
            var count = On(d).Nms(x[0], x[1], classes > 0 ? x[2] : null, 0.5, keep);
            long[] kept = [count, .. keep.ToArray<long>().Take(count)];
            keep.Dispose();
            return [Tensor.From<long>(kept, [count + 1], d)];
        }, 0, 0);
    }

    [CudaTheory]
    [InlineData(0, 7, true)]
    [InlineData(5, 0, true)]
    [InlineData(6, 131, true)]
    [InlineData(13, 300, false)]
    [InlineData(7, 40001, true)]
    public void MatchProposals(int m, int n, bool lowQuality)
    {
        var g = Fresh(out var seed);
        // qualities on a grid of 1/8 so that ties (first match wins, every tied best prediction is promoted) occur;
        // even ground truths at most 1/2, so their highest quality lies below the positive threshold and promotes
        using var quality = Tensor.From<float>(Enumerable.Range(0, m * n).Select(i => g.Next(9) / 8f * ((i / n) % 2 == 0 ? 0.5f : 1f)).ToArray(), [m, n]);
        var rule = new MatcherRule([0.3, 0.7], [0, -1, 1], lowQuality);
        Check($"MatchProposals M={m} N={n} lowQuality={lowQuality}", seed, [quality], (d, x) =>
        {
            var matches = Tensor.Empty([n], DType.Int64, d);
            var labels = Tensor.Empty([n], DType.Int64, d);
            On(d).MatchProposals(x[0], rule, matches, labels);
            return [matches, labels];
        }, 0, 0);
    }

    [CudaFact]
    public void MatchProposalsRaisesANegativeQualityAtTheNextWait()
    {
        using var quality = Tensor.From<float>([0.5f, 0.2f, 0.1f, -0.25f, 0.3f, 0.9f], [2, 3], GpuDevice);
        using var matches = Tensor.Empty([3], DType.Int64, GpuDevice);
        using var labels = Tensor.Empty([3], DType.Int64, GpuDevice);
        On(GpuDevice).MatchProposals(quality, new MatcherRule([0.5], [0, 1], false), matches, labels);
        var e = Assert.Throws<ArgumentException>(() => GpuBackend.Synchronize());
        Assert.StartsWith("Matcher: match quality [1, 0] = -0.25", e.Message);
    }
}
