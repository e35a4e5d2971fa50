// Self-test checks of convolution, matrix products, softmax and losses, pooling, indexing, sorting and
// concatenation: each op's forward and gradients against the double references of its family.
using Engine.Native;
using Engine.Reference;

namespace Engine.Diagnostics;

public static partial class SelfTest
{
    // Sums of K float32 products: error grows like sqrt(K)·eps relative to the largest output; 1e-4 leaves a
    // wide margin for K up to a few thousand while catching any indexing mistake (errors of order 1).
    private const double AccumulationTolerance = 1e-4;

    private static partial IEnumerable<SelfTestCheck> MoreChecks()
    {
        yield return new SelfTestCheck("conv2d", Conv2dCheck);
        yield return new SelfTestCheck("matmul", MatmulCheck);
        yield return new SelfTestCheck("softmax", (d, g) => SoftmaxCheck(d, g, log: false));
        yield return new SelfTestCheck("log_softmax", (d, g) => SoftmaxCheck(d, g, log: true));
        yield return new SelfTestCheck("cross_entropy", CrossEntropyCheck);
        yield return new SelfTestCheck("bce_with_logits", BceCheck);
        yield return new SelfTestCheck("smooth_l1", SmoothL1Check);
        yield return new SelfTestCheck("max_pool2d", MaxPoolCheck);
        yield return new SelfTestCheck("upsample_nearest2d", UpsampleCheck);
        yield return new SelfTestCheck("index_select", IndexSelectCheck);
        yield return new SelfTestCheck("gather", GatherCheck);
        yield return new SelfTestCheck("topk", TopKCheck);
        yield return new SelfTestCheck("sort", SortCheck);
        yield return new SelfTestCheck("nonzero", NonzeroCheck);
        yield return new SelfTestCheck("cat", CatCheck);
    }

    private static IEnumerable<SelfTestResult> Conv2dCheck(Device device, Generator g)
    {
        var geo = new Conv2dGeometry(2, 6, 11, 9, 4, 3, 3, strideH: 2, strideW: 1, padH: 1, padW: 2, dilationH: 1, dilationW: 2, groups: 2);
        var rx = RefTensor.Random(g, [geo.N, geo.CIn, geo.H, geo.W]);
        var rw = RefTensor.Random(g, [geo.COut, geo.CInPerGroup, geo.KernelH, geo.KernelW]);
        var rb = RefTensor.Random(g, [geo.COut]);
        using var x = Upload(rx, device, true);
        using var w = Upload(rw, device, true);
        using var b = Upload(rb, device, true);
        using var y = Tensor.Conv2d(x, w, b, (geo.StrideH, geo.StrideW), (geo.PadH, geo.PadW), (geo.DilationH, geo.DilationW), geo.Groups);
        var outShape = new[] { geo.N, geo.COut, geo.OutH, geo.OutW };
        yield return Compare("conv2d", "forward", device, new RefTensor(outShape, ConvolutionReference.Forward(geo, rx.Data, rw.Data, rb.Data)), y, AccumulationTolerance);
        var u = RefTensor.Random(g, outShape);
        using var gy = Upload(u, device);
        y.Backward(gy);
        yield return Compare("conv2d", "grad x", device, new RefTensor(rx.Shape, ConvolutionReference.BackwardData(geo, u.Data, rw.Data)), x.Grad!, AccumulationTolerance);
        yield return Compare("conv2d", "grad w", device, new RefTensor(rw.Shape, ConvolutionReference.BackwardWeights(geo, rx.Data, u.Data)), w.Grad!, AccumulationTolerance);
        yield return Compare("conv2d", "grad bias", device, new RefTensor(rb.Shape, ConvolutionReference.BiasGrad(geo, u.Data)), b.Grad!, AccumulationTolerance);
    }

    private static IEnumerable<SelfTestResult> MatmulCheck(Device device, Generator g)
    {
        var (batch, m, k, n) = (3, 1 + 2 * (int)g.NextInt64(20), 1 + 2 * (int)g.NextInt64(40), 1 + 2 * (int)g.NextInt64(20));
        var ra = RefTensor.Random(g, [batch, m, k]);
        var rb = RefTensor.Random(g, [k, n]); // broadcast over the batch
        using var a = Upload(ra, device, true);
        using var b = Upload(rb, device, true);
        using var c = a.Matmul(b);
        var geo = new MatmulGeometry(batch, m, n, k, false, false, k, n, n, (long)m * k, 0, (long)m * n);
        yield return Compare("matmul", "forward", device, new RefTensor([batch, m, n], MatmulReference.Forward(geo, ra.Data, rb.Data)), c, AccumulationTolerance);
        var u = RefTensor.Random(g, [batch, m, n]);
        using var gu = Upload(u, device);
        c.Backward(gu);
        var (da, db) = MatmulReference.Backward(geo, ra.Data, rb.Data, u.Data);
        yield return Compare("matmul", "grad a", device, new RefTensor(ra.Shape, da), a.Grad!, AccumulationTolerance);
        yield return Compare("matmul", "grad b", device, new RefTensor(rb.Shape, db), b.Grad!, AccumulationTolerance);
    }

    private static IEnumerable<SelfTestResult> SoftmaxCheck(Device device, Generator g, bool log)
    {
        var name = log ? "log_softmax" : "softmax";
        var r = RefTensor.Random(g, OddShape(g, 17, 1205), -8, 8);
        using var x = Upload(r, device, true);
        using var y = log ? x.LogSoftmax(1) : x.Softmax(1);
        yield return Compare(name, "forward", device, log ? SoftmaxReference.LogSoftmax(r, 1) : SoftmaxReference.Softmax(r, 1), y, ElementwiseTolerance);
        var u = RefTensor.Random(g, r.Shape);
        using var gu = Upload(u, device);
        y.Backward(gu);
        yield return Compare(name, "grad x", device, log ? SoftmaxReference.LogSoftmaxBackward(r, u, 1) : SoftmaxReference.SoftmaxBackward(r, u, 1), x.Grad!, AccumulationTolerance);
    }

    private static IEnumerable<SelfTestResult> CrossEntropyCheck(Device device, Generator g)
    {
        var (n, c) = (1 + 2 * (int)g.NextInt64(100), 1 + 2 * (int)g.NextInt64(300));
        var r = RefTensor.Random(g, [n, c], -6, 6);
        var target = new long[n];
        for (var i = 0; i < n; i++) target[i] = i % 7 == 3 ? -100 : g.NextInt64(c);
        var weight = RefTensor.Random(g, [c], 0.2, 2);
        using var x = Upload(r, device, true);
        using var t = Tensor.From<long>(target, [n], device);
        using var w = Upload(weight, device);
        using var loss = Losses.CrossEntropy(x, t, w, labelSmoothing: 0.1);
        var expected = LossReference.CrossEntropy(r.Data, n, c, target, weight.Data, -100, Reduction.Mean, 0.1);
        yield return Compare("cross_entropy", "forward", device, new RefTensor([], expected), loss, ElementwiseTolerance);
        loss.Backward();
        var grad = LossReference.CrossEntropyBackward(r.Data, n, c, target, weight.Data, -100, Reduction.Mean, 0.1, [1.0]);
        yield return Compare("cross_entropy", "grad logits", device, new RefTensor(r.Shape, grad), x.Grad!, AccumulationTolerance);
    }

    private static IEnumerable<SelfTestResult> BceCheck(Device device, Generator g)
    {
        var r = RefTensor.Random(g, OddShape(g, 65, 33), -10, 10);
        var t = RefTensor.Random(g, r.Shape).Map(v => v > 0 ? 1 : 0);
        using var x = Upload(r, device, true);
        using var tt = Upload(t, device);
        using var loss = Losses.BinaryCrossEntropyWithLogits(x, tt, reduction: Reduction.Sum);
        var perElement = LossReference.BinaryCrossEntropyWithLogits(r, t, null);
        yield return Compare("bce_with_logits", "forward", device, new RefTensor([], LossReference.Reduce(perElement, Reduction.Sum)), loss, AccumulationTolerance);
        loss.Backward();
        // d/dx = sigmoid(x) - t
        yield return Compare("bce_with_logits", "grad x", device, RefTensor.Zip(r, t, (v, y) => 1 / (1 + Math.Exp(-v)) - y), x.Grad!, ElementwiseTolerance);
    }

    private static IEnumerable<SelfTestResult> SmoothL1Check(Device device, Generator g)
    {
        var ri = RefTensor.Random(g, OddShape(g, 129, 5), -2, 2);
        var rt = RefTensor.Random(g, ri.Shape, -2, 2);
        using var input = Upload(ri, device, true);
        using var target = Upload(rt, device);
        using var loss = Losses.SmoothL1(input, target, beta: 1.0 / 9, reduction: Reduction.Sum);
        yield return Compare("smooth_l1", "forward", device, new RefTensor([], LossReference.Reduce(LossReference.SmoothL1(ri, rt, 1.0 / 9), Reduction.Sum)), loss, AccumulationTolerance);
        loss.Backward();
        yield return Compare("smooth_l1", "grad input", device, LossReference.SmoothL1Derivative(ri, rt, 1.0 / 9), input.Grad!, ElementwiseTolerance);
    }

    private static IEnumerable<SelfTestResult> MaxPoolCheck(Device device, Generator g)
    {
        var r = RefTensor.Random(g, [2, 3, 1 + 2 * (int)g.NextInt64(20), 1 + 2 * (int)g.NextInt64(20) + 2]);
        var win = new Pool2dWindow(3, 3, 2, 2, 1, 1);
        using var x = Upload(r, device, true);
        using var y = x.MaxPool2d(3, 2, 1);
        var (expected, indices) = PoolingReference.MaxPool2d(r, win);
        yield return Compare("max_pool2d", "forward", device, expected, y, 0);
        var u = RefTensor.Random(g, expected.Shape);
        using var gu = Upload(u, device);
        y.Backward(gu);
        yield return Compare("max_pool2d", "grad x", device, PoolingReference.MaxPool2dBackward(u, indices, r.Shape), x.Grad!, ElementwiseTolerance);
    }

    private static IEnumerable<SelfTestResult> UpsampleCheck(Device device, Generator g)
    {
        var r = RefTensor.Random(g, [2, 3, 1 + 2 * (int)g.NextInt64(10), 1 + 2 * (int)g.NextInt64(10)]);
        using var x = Upload(r, device, true);
        using var y = x.UpsampleNearest2d(2);
        var expected = PoolingReference.UpsampleNearest2d(r, 2 * r.Shape[2], 2 * r.Shape[3]);
        yield return Compare("upsample_nearest2d", "forward", device, expected, y, 0);
        var u = RefTensor.Random(g, expected.Shape);
        using var gu = Upload(u, device);
        y.Backward(gu);
        yield return Compare("upsample_nearest2d", "grad x", device, PoolingReference.UpsampleNearest2dBackward(u, r.Shape), x.Grad!, ElementwiseTolerance);
    }

    private static RefTensor RandomIndex(Generator g, int[] shape, int bound)
    {
        var d = new double[ShapeUtil.Numel(shape)];
        for (var i = 0; i < d.Length; i++) d[i] = g.NextInt64(bound);
        return new RefTensor(shape, d);
    }

    private static IEnumerable<SelfTestResult> IndexSelectCheck(Device device, Generator g)
    {
        var r = RefTensor.Random(g, OddShape(g, 33, 17));
        var idx = RandomIndex(g, [2 * r.Shape[0]], r.Shape[0]); // repeats accumulate in backward
        using var x = Upload(r, device, true);
        using var i = Upload(idx, device).To(DType.Int64);
        using var y = x.IndexSelect(0, i);
        yield return Compare("index_select", "forward", device, IndexingReference.IndexSelect(r, 0, idx), y, 0);
        var u = RefTensor.Random(g, y.ShapeArray());
        using var gu = Upload(u, device);
        y.Backward(gu);
        yield return Compare("index_select", "grad x", device, IndexingReference.IndexSelectBackward(u, r.Shape, 0, idx), x.Grad!, ElementwiseTolerance);
    }

    private static IEnumerable<SelfTestResult> GatherCheck(Device device, Generator g)
    {
        var r = RefTensor.Random(g, OddShape(g, 33, 17));
        var idx = RandomIndex(g, [r.Shape[0], 5], r.Shape[1]);
        using var x = Upload(r, device, true);
        using var i = Upload(idx, device).To(DType.Int64);
        using var y = x.Gather(1, i);
        yield return Compare("gather", "forward", device, IndexingReference.Gather(r, 1, idx), y, 0);
        var u = RefTensor.Random(g, y.ShapeArray());
        using var gu = Upload(u, device);
        y.Backward(gu);
        yield return Compare("gather", "grad x", device, IndexingReference.GatherBackward(u, r.Shape, 1, idx), x.Grad!, ElementwiseTolerance);
    }

    private static IEnumerable<SelfTestResult> TopKCheck(Device device, Generator g)
    {
        var r = RefTensor.Random(g, OddShape(g, 9, 2001)).Map(v => (float)(Math.Round(v * 50) / 50)); // many ties, float-exact
        var k = 1 + (int)g.NextInt64(r.Shape[1]);
        using var x = Upload(r, device, true);
        var (values, indices) = x.TopK(k, 1);
        using (values)
        using (indices)
        {
            var (ev, ei) = SortingReference.TopK(r, k, 1, largest: true);
            yield return Compare("topk", "values", device, ev, values, 0);
            yield return Compare("topk", "indices", device, ei, indices, 0);
            var u = RefTensor.Random(g, ev.Shape);
            using var gu = Upload(u, device);
            values.Backward(gu);
            yield return Compare("topk", "grad x", device, SortingReference.SelectionBackward(u, r.Shape, 1, ei), x.Grad!, 0);
        }
    }

    private static IEnumerable<SelfTestResult> SortCheck(Device device, Generator g)
    {
        // float32 lines with many ties (a stable sort must keep their order), NaNs (after every number) and −0 next to +0,
        // along the inner or the outer dim (strided lines), in either direction; lines of up to ~5000, so a GPU sorts
        // some in one block and some in tiles; then int64 keys beyond float32's integers
        var r = RefTensor.Random(g, OddShape(g, 7, 5001)).Map(v => (float)(Math.Round(v * 20) / 20));
        for (var i = 0; i < r.Data.Length; i += 1 + (int)g.NextInt64(97)) r.Data[i] = g.NextInt64(3) switch { 0 => double.NaN, 1 => -0.0, _ => 0.0 };
        var dim = (int)g.NextInt64(2);
        var descending = g.NextInt64(2) == 0;
        using var x = Upload(r, device, true);
        var (values, indices) = x.Sort(dim, descending);
        using (values)
        using (indices)
        {
            var (ev, ei) = SortingReference.Sort(r, dim, descending);
            yield return Compare("sort", "values", device, ev, values, 0);
            yield return Compare("sort", "indices", device, ei, indices, 0);
            var u = RefTensor.Random(g, ev.Shape);
            using var gu = Upload(u, device);
            values.Backward(gu);
            yield return Compare("sort", "grad x", device, SortingReference.SelectionBackward(u, r.Shape, dim, ei), x.Grad!, 0);
        }
        var keyShape = OddShape(g, 5, 301);
        var keys = new RefTensor(keyShape, new double[ShapeUtil.Numel(keyShape)]);
        for (var i = 0; i < keys.Data.Length; i++) keys.Data[i] = g.NextInt64(41) * (1L << 40) - (20L << 40) + g.NextInt64(3);
        using var hostKeys = Tensor.From(keys.Data.Select(v => (long)v).ToArray(), keys.Shape);
        using var k = hostKeys.To(device);
        var (kv, ki) = k.Sort(1, descending: true);
        using (kv)
        using (ki)
        {
            var (ev, ei) = SortingReference.Sort(keys, 1, descending: true);
            yield return Compare("sort", "int64 values", device, ev, kv, 0);
            yield return Compare("sort", "int64 indices", device, ei, ki, 0);
        }
    }

    private static IEnumerable<SelfTestResult> NonzeroCheck(Device device, Generator g)
    {
        // a 3-D float32 tensor, about a third nonzero, with NaNs (nonzero) and −0 (zero): the coordinates in row-major order
        var shape = OddShape(g, 9, 13, 41);
        var r = new RefTensor(shape, new double[ShapeUtil.Numel(shape)]);
        for (var i = 0; i < r.Data.Length; i++)
            r.Data[i] = g.NextInt64(3) != 0 ? (g.NextInt64(2) == 0 ? 0.0 : -0.0) : g.NextInt64(9) == 0 ? double.NaN : g.NextDouble() - 0.5;
        var expected = new List<double>();
        for (var i = 0; i < r.Data.Length; i++)
            if (r.Data[i] != 0)
            {
                var (rest, at) = (i, new double[shape.Length]);
                for (var d = shape.Length - 1; d >= 0; d--)
                {
                    at[d] = rest % shape[d];
                    rest /= shape[d];
                }
                expected.AddRange(at);
            }
        using var x = Upload(r, device);
        using var y = x.Nonzero();
        yield return Compare("nonzero", "coordinates", device, new RefTensor([expected.Count / shape.Length, shape.Length], [.. expected]), y, 0);
    }

    private static IEnumerable<SelfTestResult> CatCheck(Device device, Generator g)
    {
        var parts = Enumerable.Range(0, 3).Select(_ => RefTensor.Random(g, [5, 1 + (int)g.NextInt64(9), 3])).ToList();
        var xs = parts.Select(p => Upload(p, device, true)).ToList();
        try
        {
            using var y = Tensor.Cat(xs, 1);
            yield return Compare("cat", "forward", device, ConcatReference.Cat(parts, 1), y, 0);
            var u = RefTensor.Random(g, y.ShapeArray());
            using var gu = Upload(u, device);
            y.Backward(gu);
            var grads = ConcatReference.CatBackward(u, parts.Select(p => p.Shape).ToList(), 1);
            for (var i = 0; i < xs.Count; i++)
                yield return Compare("cat", $"grad input {i}", device, grads[i], xs[i].Grad!, 0);
        }
        finally
        {
            foreach (var x in xs) x.Dispose();
        }
    }
}
