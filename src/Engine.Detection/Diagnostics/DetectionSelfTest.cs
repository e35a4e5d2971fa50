// `engine selftest` rows of the detection ops: multi-level ROIAlign (forward and the gradient of every level), the
// FPN level of each RoI, class-aware NMS, pairwise IoU, the R-CNN box coder (encode, and decode with class-specific
// deltas and the scale clamp) and the proposal matcher (RPN and RoI-head rules), on the device asked for, against
// the double references (RoiAlignReference, BoxReference).
// The CLI registers them with SelfTest.Register; on cuda:N they run the CUDA detection backend's kernels.
using Engine.Detection.Reference;
using Engine.Diagnostics;
using Engine.Reference;

namespace Engine.Detection.Diagnostics;

public static class DetectionSelfTest
{
    // ROIAlign forward: a weighted sum of at most a few dozen float taps per output, weights rounded to float: 1e-5 of
    // the largest output. Backward: the same taps scattered, up to a few hundred additions per pixel (atomics on the
    // GPU, in any order): 1e-4.
    private const double ForwardTolerance = 1e-5, BackwardTolerance = 1e-4;

    // The box coder: float32 centres, ratios and logs (encode) or exps (decode) of coordinates up to ~100, a few
    // roundings each, relative to the largest delta or coordinate: 1e-5.
    private const double CoderTolerance = 1e-5;

    /// <summary>Adds these checks to <see cref="SelfTest"/> (family "detection").</summary>
    public static void Register() => SelfTest.Register("detection", Checks);

    public static IEnumerable<SelfTestCheck> Checks()
    {
        yield return new SelfTestCheck("roi_align", RoiAlignCheck);
        yield return new SelfTestCheck("fpn_levels", FpnLevelsCheck);
        yield return new SelfTestCheck("batched_nms", BatchedNmsCheck);
        yield return new SelfTestCheck("box_iou", BoxIouCheck);
        yield return new SelfTestCheck("box_coder", BoxCoderCheck);
        yield return new SelfTestCheck("match_proposals", MatchProposalsCheck);
    }

    /// <summary>count random float32-exact boxes in a 48 × 48 square with sides 1..21 (overlapping and disjoint pairs).</summary>
    private static double[] RandomBoxes(Generator g, int count)
    {
        var boxes = new double[count * 4];
        for (var i = 0; i < count; i++)
        {
            var (x1, y1) = (g.NextDouble() * 40, g.NextDouble() * 40);
            boxes[i * 4] = x1;
            boxes[i * 4 + 1] = y1;
            boxes[i * 4 + 2] = x1 + 1 + g.NextDouble() * 20;
            boxes[i * 4 + 3] = y1 + 1 + g.NextDouble() * 20;
        }
        return SelfTest.AsFloat32(boxes);
    }

    private static IEnumerable<SelfTestResult> BoxIouCheck(Device device, Generator g)
    {
        // odd counts; b repeats a's first box (IoU 1) and holds a zero-width box (IoU 0 with everything)
        var (n, m) = (1 + 2 * (int)g.NextInt64(20), 3 + 2 * (int)g.NextInt64(30));
        var a = RandomBoxes(g, n);
        var b = RandomBoxes(g, m);
        Array.Copy(a, 0, b, 0, 4);
        b[6] = b[4];
        using var at = SelfTest.Upload(new RefTensor([n, 4], a), device);
        using var bt = SelfTest.Upload(new RefTensor([m, 4], b), device);
        using var iou = Tensor.Full([n, m], double.NaN, DType.Float32, device);
        DetectionBackends.For(device).PairwiseIou(at, bt, iou);
        yield return SelfTest.Compare("box_iou", "forward", device, new RefTensor([n, m], BoxReference.PairwiseIou(a, b)), iou, ForwardTolerance);
    }

    private static IEnumerable<SelfTestResult> BoxCoderCheck(Device device, Generator g)
    {
        // the RoI heads' weights (10, 10, 5, 5); decode with K = 3 class-specific deltas per box, one dw past the clamp
        var weights = new BoxCoderWeights(10, 10, 5, 5);
        var (r, k) = (1 + 2 * (int)g.NextInt64(30), 3);
        var src = RandomBoxes(g, r);
        var target = RandomBoxes(g, r);
        using var st = SelfTest.Upload(new RefTensor([r, 4], src), device);
        using var tt = SelfTest.Upload(new RefTensor([r, 4], target), device);
        using var deltas = Tensor.Full([r, 4], double.NaN, DType.Float32, device);
        DetectionBackends.For(device).EncodeBoxes(st, tt, weights, deltas);
        yield return SelfTest.Compare("box_coder", "encode", device, new RefTensor([r, 4], BoxReference.Encode(src, target, weights)), deltas, CoderTolerance);

        var d = SelfTest.AsFloat32(Enumerable.Range(0, r * k * 4).Select(_ => 2 * g.NextNormal()));
        d[2] = 40;   // dw / 5 = 8 > ln(1000 / 16): clamped
        using var dt = SelfTest.Upload(new RefTensor([r, k * 4], d), device);
        using var decoded = Tensor.Full([r, k * 4], double.NaN, DType.Float32, device);
        DetectionBackends.For(device).DecodeBoxes(dt, st, weights, Box2BoxTransform.DefaultScaleClamp, decoded);
        yield return SelfTest.Compare("box_coder", "decode", device,
                                      new RefTensor([r, k * 4], BoxReference.Decode(d, src, weights, Box2BoxTransform.DefaultScaleClamp)), decoded, CoderTolerance);
    }

    private static IEnumerable<SelfTestResult> MatchProposalsCheck(Device device, Generator g)
    {
        // qualities on a grid of 1/20 so that ties (the first ground truth wins) and exact threshold hits are common;
        // the RPN rule (two thresholds, an ignore band, low-quality matches) and the RoI heads' (one threshold)
        var (m, n) = (1 + 2 * (int)g.NextInt64(8), 1 + 2 * (int)g.NextInt64(100));
        var quality = Enumerable.Range(0, m * n).Select(_ => g.NextInt64(21) / 20.0).ToArray();
        var q = SelfTest.AsFloat32(quality);
        using var qt = SelfTest.Upload(new RefTensor([m, n], q), device);
        foreach (var (name, matcher) in new[] { ("rpn", Matcher.ForRpn()), ("roi heads", Matcher.ForRoiHeads()) })
        {
            using var matches = Tensor.Full([n], -7, DType.Int64, device);
            using var labels = Tensor.Full([n], -7, DType.Int64, device);
            DetectionBackends.For(device).MatchProposals(qt, matcher.Rule, matches, labels);
            var (em, el) = BoxReference.Match(q, m, n, matcher.Rule);
            yield return SelfTest.Exact("match_proposals", $"matches ({name})", device, Doubles(em), matches.ToDoubleArray(), "proposal");
            yield return SelfTest.Exact("match_proposals", $"labels ({name})", device, Doubles(el), labels.ToDoubleArray(), "proposal");
        }
    }

    private static IEnumerable<SelfTestResult> RoiAlignCheck(Device device, Generator g)
    {
        // three levels of a 68 × 52 image pair (strides 4, 8, 16), an odd channel count, RoIs spread over the levels
        int[][] shapes = [[2, 5, 13, 17], [2, 5, 7, 9], [2, 5, 4, 5]];
        double[] scales = [1.0 / 4, 1.0 / 8, 1.0 / 16];
        const int rois = 23, ph = 3, pw = 4;
        var levels = shapes.Select(s => RefTensor.Random(g, s)).ToList();
        var boxes = new double[rois * 5];
        var levelOf = new long[rois];
        for (var i = 0; i < rois; i++)
        {
            var (x1, y1) = (g.NextDouble() * 60, g.NextDouble() * 44);
            boxes[i * 5] = g.NextInt64(2);
            boxes[i * 5 + 1] = x1;
            boxes[i * 5 + 2] = y1;
            boxes[i * 5 + 3] = x1 + 1 + g.NextDouble() * 40;
            boxes[i * 5 + 4] = y1 + 1 + g.NextDouble() * 30;
            levelOf[i] = g.NextInt64(shapes.Length);
        }
        // the reference sees the float32 coordinates the engine sees (the adaptive grid is ceil(size / bins))
        boxes = SelfTest.AsFloat32(boxes);
        var features = levels.Select(l => SelfTest.Upload(l, device, requiresGrad: true)).ToList();
        try
        {
            using var r = SelfTest.Upload(new RefTensor([rois, 5], boxes), device);
            using var hostLevels = Tensor.From(levelOf, [rois]);
            using var level = hostLevels.To(device);
            using var y = DetectionOps.MultiLevelRoiAlign(features, scales, r, level, (ph, pw), samplingRatio: 0, aligned: true);
            var expected = RoiAlignReference.Forward(levels, scales, boxes, levelOf, ph, pw, 0, true);
            yield return SelfTest.Compare("roi_align", "forward", device, expected, y, ForwardTolerance);
            var u = RefTensor.Random(g, [rois, shapes[0][1], ph, pw]);
            using var gy = SelfTest.Upload(u, device);
            y.Backward(gy);
            var grads = RoiAlignReference.Backward(shapes, scales, boxes, levelOf, ph, pw, 0, true, u);
            for (var l = 0; l < shapes.Length; l++)
                yield return SelfTest.Compare("roi_align", $"grad level {l}", device, grads[l], features[l].Grad!, BackwardTolerance);
        }
        finally
        {
            foreach (var f in features) f.Dispose();
        }
    }

    private static IEnumerable<SelfTestResult> FpnLevelsCheck(Device device, Generator g)
    {
        // 97 boxes with sides from 2 to about 2200 px, so P2 to P5 and both clamps are reached; a box whose level
        // lies within 1e-4 of a boundary is drawn again (float32 and the double definition may round it apart)
        const int count = 97, minLevel = 2, maxLevel = 5;
        var rois = new double[count * 5];
        var expected = new long[count];
        for (var i = 0; i < count; i++)
        {
            double[] box;
            double k;
            do
            {
                var (x1, y1) = (g.NextDouble() * 100, g.NextDouble() * 100);
                box = SelfTest.AsFloat32([x1, y1, x1 + Math.Exp(0.7 + g.NextDouble() * 7), y1 + Math.Exp(0.7 + g.NextDouble() * 7)]);
                k = 4 + Math.Log2(Math.Sqrt((box[2] - box[0]) * (box[3] - box[1])) / 224);
            } while (Math.Abs(k - Math.Round(k)) < 1e-4);
            rois[i * 5] = 0;
            box.CopyTo(rois, i * 5 + 1);
            expected[i] = BoxReference.FpnLevel(box, minLevel, maxLevel);
        }
        using var r = SelfTest.Upload(new RefTensor([count, 5], rois), device);
        using var levels = RoiPooler.AssignRoisToLevels(r, new FpnLevelRule(minLevel, maxLevel));
        // levels relative to P2 (0 = P2)
        yield return SelfTest.Exact("fpn_levels", "levels", device, Doubles(expected), levels.ToDoubleArray(), "RoI");
    }

    private static IEnumerable<SelfTestResult> BatchedNmsCheck(Device device, Generator g)
    {
        // 61 overlapping boxes of 5 classes: the kept indices must equal the definition's, in the same order
        const int count = 61, classes = 5;
        var boxes = new double[count * 4];
        var scores = new double[count];
        var ids = new long[count];
        for (var i = 0; i < count; i++)
        {
            var (cx, cy, w, h) = (g.NextDouble() * 40, g.NextDouble() * 40, 4 + g.NextDouble() * 16, 4 + g.NextDouble() * 16);
            boxes[i * 4] = cx - w / 2;
            boxes[i * 4 + 1] = cy - h / 2;
            boxes[i * 4 + 2] = cx + w / 2;
            boxes[i * 4 + 3] = cy + h / 2;
            scores[i] = g.NextDouble();
            ids[i] = g.NextInt64(classes);
        }
        // the reference sees the float32 values the engine sees
        var floatBoxes = SelfTest.AsFloat32(boxes);
        var floatScores = SelfTest.AsFloat32(scores);
        var expected = BoxReference.Nms(floatBoxes, floatScores, ids, 0.5);
        using var b = SelfTest.Upload(new RefTensor([count, 4], floatBoxes), device);
        using var s = SelfTest.Upload(new RefTensor([count], floatScores), device);
        using var hostIds = Tensor.From(ids, [count]);
        using var c = hostIds.To(device);
        using var keep = DetectionOps.BatchedNms(b, s, c, 0.5);
        yield return SelfTest.Exact("batched_nms", "kept indices", device, Doubles(expected), keep.ToDoubleArray(), "kept position");
    }

    private static double[] Doubles(long[] values) => [.. values.Select(v => (double)v)];
}
