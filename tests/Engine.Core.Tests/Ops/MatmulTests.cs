// Tests of src/Engine.Core/Ops/Tensor.Matmul.cs (and the CPU backend's matmul primitive): Matmul for every
// rank combination with broadcast batch dims, transposed, permuted and expanded operands, empty sizes; Bmm;
// Linear with a 3-D input; the gradients of all three; the plans (no copy of transposed or broadcast
// operands, one call for Linear); error messages. The expected values come from MatmulReference applied to
// each broadcast batch entry (its backward is checked against finite differences in
// tests/Engine.Core.Tests/Reference/MatmulReferenceTests.cs; the broadcast sum added here is gradchecked below).
using Engine.Native;
using Engine.Reference;

namespace Engine.Tests.Ops;

public class MatmulTests
{
    // ---- reference with PyTorch's matmul semantics, built on MatmulReference ----

    /// <summary>(a2, b2, batch, outShape): 1-D operands promoted, the broadcast batch shape, the result's shape.</summary>
    private static (RefTensor A2, RefTensor B2, int[] Batch, int[] OutShape) Promote(RefTensor a, RefTensor b)
    {
        var a2 = a.Shape.Length == 1 ? a with { Shape = [1, a.Shape[0]] } : a;
        var b2 = b.Shape.Length == 1 ? b with { Shape = [b.Shape[0], 1] } : b;
        var batch = ShapeUtil.Broadcast(a2.Shape[..^2], b2.Shape[..^2], "reference");
        var outShape = batch.ToList();
        if (a.Shape.Length > 1) outShape.Add(a2.Shape[^2]);
        if (b.Shape.Length > 1) outShape.Add(b2.Shape[^1]);
        return (a2, b2, batch, [.. outShape]);
    }

    /// <summary>Visits each broadcast batch entry with the flat offsets of its matrices in a2, b2 and C.</summary>
    private static void ForEachEntry(RefTensor a2, RefTensor b2, int[] batch, Action<long, long, long> body)
    {
        var (m, k, n) = (a2.Shape[^2], a2.Shape[^1], b2.Shape[^1]);
        var batchA = new RefTensor(a2.Shape[..^2], []);
        var batchB = new RefTensor(b2.Shape[..^2], []);
        var idx = new int[batch.Length];
        var entries = ShapeUtil.Numel(batch);
        for (long e = 0; e < entries; e++)
        {
            RefTensor.Unravel(e, batch, idx);
            body(batchA.BroadcastIndex(idx) * m * k, batchB.BroadcastIndex(idx) * k * n, e * m * n);
        }
    }

    private static RefTensor RefMatmul(RefTensor a, RefTensor b)
    {
        var (a2, b2, batch, outShape) = Promote(a, b);
        var (m, k, n) = (a2.Shape[^2], a2.Shape[^1], b2.Shape[^1]);
        var g = MatmulGeometry.Contiguous(1, m, n, k);
        var c = new double[ShapeUtil.Numel(batch) * m * n];
        ForEachEntry(a2, b2, batch, (oa, ob, oc) =>
            MatmulReference.Forward(g, a2.Data.AsSpan((int)oa, m * k).ToArray(), b2.Data.AsSpan((int)ob, k * n).ToArray())
                .CopyTo(c, oc));
        return new RefTensor(outShape, c);
    }

    /// <summary>(dA, dB) in a's and b's shapes: MatmulReference.Backward per entry, summed over broadcast entries.</summary>
    private static (RefTensor DA, RefTensor DB) RefMatmulBackward(RefTensor a, RefTensor b, RefTensor dc)
    {
        var (a2, b2, batch, _) = Promote(a, b);
        var (m, k, n) = (a2.Shape[^2], a2.Shape[^1], b2.Shape[^1]);
        var g = MatmulGeometry.Contiguous(1, m, n, k);
        var (da, db) = (new double[a.Data.Length], new double[b.Data.Length]);
        ForEachEntry(a2, b2, batch, (oa, ob, oc) =>
        {
            var (dae, dbe) = MatmulReference.Backward(g, a2.Data.AsSpan((int)oa, m * k).ToArray(),
                                                      b2.Data.AsSpan((int)ob, k * n).ToArray(), dc.Data.AsSpan((int)oc, m * n).ToArray());
            for (var i = 0; i < dae.Length; i++) da[oa + i] += dae[i];
            for (var i = 0; i < dbe.Length; i++) db[ob + i] += dbe[i];
        });
        return (new RefTensor(a.Shape, da), new RefTensor(b.Shape, db));
    }

    private static RefTensor Abs(RefTensor t) => t.Map(Math.Abs);

    /// <summary>Random values rounded to float32, so that the reference judges only the computation.</summary>
    private static RefTensor Values(Generator gen, int[] shape)
    {
        using var t = RefTensor.Random(gen, shape).ToTensor();
        return RefTensor.From(t);
    }

    private static void AssertProduct(RefTensor expected, RefTensor magnitude, Tensor actual, string what, ulong seed) =>
        SumTolerance.AssertClose(expected.Data, magnitude.Data, actual, expected.Shape, what, seed);

    // ---- operand layouts ----

    public enum Layout { Contiguous, Transposed, PermutedBatch, Expanded }

    /// <summary>A tensor with r's values stored in the given layout: Transposed stores the last two dims swapped
    /// (a .T() view), PermutedBatch stores the first batch dim innermost-but-matrix (interleaved batch strides),
    /// Expanded makes size-1 batch dims stride-0 views of a smaller tensor.</summary>
    private static Tensor Make(RefTensor r, Layout layout)
    {
        var rank = r.Shape.Length;
        switch (layout)
        {
            case Layout.Transposed when rank >= 2:
            {
                var perm = Enumerable.Range(0, rank).ToArray();
                (perm[^1], perm[^2]) = (perm[^2], perm[^1]);
                using var stored = r.Permute(perm).ToTensor();
                return stored.Permute(perm);
            }
            case Layout.PermutedBatch when rank >= 3:
            {
                // stored (M, B, ..., K): batch dim 0 moved behind the row dim
                int[] perm = [.. Enumerable.Range(1, rank - 2), 0, rank - 1];
                int[] inverse = new int[rank];
                for (var i = 0; i < rank; i++) inverse[perm[i]] = i;
                using var stored = r.Permute(perm).ToTensor();
                return stored.Permute(inverse);
            }
            default:
                return r.ToTensor();
        }
    }

    private static readonly (int[] A, int[] B)[] RankCases =
    [
        ([7], [7]),                         // dot
        ([5], [5, 3]),                      // vector @ matrix
        ([4, 6], [6]),                      // matrix @ vector
        ([3, 5], [5, 7]),                   // 2-D
        ([9], [2, 9, 4]),                   // vector @ batch
        ([3, 4, 6], [6]),                   // batch @ vector
        ([3, 5, 7], [7, 2]),                // batch @ shared matrix (folds into rows)
        ([5, 7], [3, 7, 4]),                // shared matrix @ batch
        ([3, 5, 6], [3, 6, 4]),             // bmm
        ([2, 1, 3, 5], [3, 5, 4]),          // broadcast a size-1 batch dim and a missing one
        ([2, 1, 3, 5], [1, 4, 5, 2]),       // both operands broadcast
        ([1, 3, 4], [2, 1, 4, 3]),          // rank 3 against rank 4
        ([2, 3, 1, 4, 5], [3, 2, 5, 3]),    // three batch dims
        ([0, 3, 4], [4, 5]),                // empty batch
        ([3, 0, 4], [3, 4, 5]),             // M = 0
        ([3, 4, 0], [3, 0, 5]),             // K = 0: zeros
        ([2, 4], [4, 0]),                   // N = 0
        ([0], [0]),                         // empty dot
    ];

    public static TheoryData<int> RankCaseIndices => [.. Enumerable.Range(0, RankCases.Length)];

    [Theory]
    [MemberData(nameof(RankCaseIndices))]
    public void ForwardAndBackwardMatchReferenceInEveryLayout(int index)
    {
        var (sa, sb) = RankCases[index];
        var gen = TestUtil.Fresh(out var seed);
        foreach (var la in Enum.GetValues<Layout>())
        foreach (var lb in Enum.GetValues<Layout>())
        {
            // Expanding an empty operand is left to the view tests: the expand backward reshapes an empty
            // gradient, which is not what this test is about.
            if ((la == Layout.Expanded && ShapeUtil.Numel(sa) == 0) || (lb == Layout.Expanded && ShapeUtil.Numel(sb) == 0)) continue;
            var what = $"{ShapeUtil.Format(sa)} ({la}) @ {ShapeUtil.Format(sb)} ({lb})";
            var ra = Values(gen, la == Layout.Expanded ? ShrinkBatch(sa) : sa);
            var rb = Values(gen, lb == Layout.Expanded ? ShrinkBatch(sb) : sb);
            using var a0 = Make(ra, la).RequireGrad();
            using var b0 = Make(rb, lb).RequireGrad();
            using var ax = la == Layout.Expanded ? a0.Expand(sa) : null;
            using var bx = lb == Layout.Expanded ? b0.Expand(sb) : null;
            var (a, b) = (ax ?? a0, bx ?? b0);
            // Expanded operands are compared against the reference on their broadcast values.
            var (ea, eb) = (RefTensor.From(a), RefTensor.From(b));

            using var c = a.Matmul(b);
            AssertProduct(RefMatmul(ea, eb), RefMatmul(Abs(ea), Abs(eb)), c, $"forward {what}", seed);

            var rc = Values(gen, c.ShapeArray());
            using var gc = rc.ToTensor();
            c.Backward(gc);
            var (da, db) = RefMatmulBackward(ea, eb, rc);
            var (ma, mb) = RefMatmulBackward(Abs(ea), Abs(eb), Abs(rc));
            // The gradient of an expanded view reaches its source summed over the expanded dims.
            AssertProduct(da.SumTo(ra.Shape), ma.SumTo(ra.Shape), a0.Grad!, $"grad a {what}", seed);
            AssertProduct(db.SumTo(rb.Shape), mb.SumTo(rb.Shape), b0.Grad!, $"grad b {what}", seed);
        }
    }

    /// <summary>The shape with every batch dim 1 (expanded back to the full shape in the test).</summary>
    private static int[] ShrinkBatch(int[] shape) => shape.Select((s, i) => i < shape.Length - 2 ? 1 : s).ToArray();

    [Fact]
    public void BroadcastSumOfTheReferenceBackwardPassesGradcheck()
    {
        var gen = TestUtil.Fresh(out var seed);
        foreach (var (sa, sb) in new (int[], int[])[] { ([2, 1, 3, 4], [3, 4, 2]), ([4], [2, 4, 3]), ([2, 3, 4], [4]), ([5], [5]) })
        {
            var a = RefTensor.Random(gen, sa);
            var b = RefTensor.Random(gen, sb);
            var result = Gradcheck.Check(
                inp => RefMatmul(new RefTensor(sa, inp[0]), new RefTensor(sb, inp[1])).Data,
                (inp, u) =>
                {
                    var ra = new RefTensor(sa, inp[0]);
                    var rb = new RefTensor(sb, inp[1]);
                    var (da, db) = RefMatmulBackward(ra, rb, new RefTensor(RefMatmul(ra, rb).Shape, u));
                    return [da.Data, db.Data];
                },
                [a.Data, b.Data], gen);
            Assert.True(result.Passed, $"{ShapeUtil.Format(sa)} @ {ShapeUtil.Format(sb)}: {result} (seed {seed})");
        }
    }

    [Fact]
    public void OddSizesAcrossTheSimdAndBlockingBoundaries()
    {
        var gen = TestUtil.Fresh(out var seed);
        foreach (var (m, k, n) in new[] { (1, 1, 1), (17, 33, 15), (65, 31, 129), (2, 257, 3), (31, 1, 47) })
        {
            var rWide = Values(gen, [m, k + 3]);
            var rb = Values(gen, [n, k]);
            using var wide = rWide.ToTensor();
            using var a = wide.Slice(1, 2, 2 + k);   // (m, k) with row pitch k + 3
            var ra = RefTensor.From(a);
            using var bStored = rb.ToTensor();
            using var b = bStored.T();   // (k, n) read transposed
            Assert.False(Tensor.PlanMatmul(a, b).CopiesA);
            using var c = a.Matmul(b);
            var rbt = rb.Permute([1, 0]);
            AssertProduct(RefMatmul(ra, rbt), RefMatmul(Abs(ra), Abs(rbt)), c, $"({m}, {k}) pitch {k + 3} @ ({n}, {k})ᵀ", seed);
        }
    }

    [Fact]
    public void TransposedAndBroadcastOperandsAreNotCopied()
    {
        using var w = Tensor.Zeros([6, 5]);
        using var x = Tensor.Zeros([4, 5]);
        using var xt = Tensor.Zeros([5, 4]);
        using var wT = w.T();
        using var xT = xt.T();

        var p = Tensor.PlanMatmul(x, wT);            // (4, 5) @ (6, 5)ᵀ
        Assert.Equal((false, false, 1), (p.CopiesA, p.CopiesB, p.Calls));
        Assert.True(p.Geometry.TransB && !p.Geometry.TransA);
        Assert.Equal(5, p.Geometry.Ldb);

        p = Tensor.PlanMatmul(xT, wT);               // both transposed
        Assert.Equal((false, false, true, true), (p.CopiesA, p.CopiesB, p.Geometry.TransA, p.Geometry.TransB));

        // A shared right operand folds the batch into the rows: one 2-D product (3·4, 5) @ (5, 6).
        using var xb = Tensor.Zeros([3, 4, 5]);
        p = Tensor.PlanMatmul(xb, wT);
        Assert.Equal((1, 1, 12, false), (p.Calls, p.Geometry.Batch, p.Geometry.M, p.CopiesA || p.CopiesB));

        // A shared left operand: batch stride 0, no copy.
        using var yb = Tensor.Zeros([3, 5, 7]);
        p = Tensor.PlanMatmul(x, yb);
        Assert.Equal((1, 3, 0L, false), (p.Calls, p.Geometry.Batch, p.Geometry.BatchStrideA, p.CopiesA || p.CopiesB));

        // An expanded (stride-0) batch dim is a zero batch stride, not a materialized copy.
        using var one = Tensor.Zeros([1, 4, 5]);
        using var expanded = one.Expand(3, 4, 5);
        p = Tensor.PlanMatmul(expanded, yb);
        Assert.Equal((1, 3, 0L, false), (p.Calls, p.Geometry.Batch, p.Geometry.BatchStrideA, p.CopiesA || p.CopiesB));

        // Batch dims that do not merge: one call per outer index, still without copies.
        using var a4 = Tensor.Zeros([2, 1, 4, 5]);
        using var b4 = Tensor.Zeros([1, 3, 5, 7]);
        p = Tensor.PlanMatmul(a4, b4);
        Assert.Equal((2, 3, 0L, false), (p.Calls, p.Geometry.Batch, p.Geometry.BatchStrideA, p.CopiesA || p.CopiesB));

        // Interleaved batch entries (a permuted batch dim) are described by strides, not copied.
        using var stored = Tensor.Zeros([4, 3, 5]);
        using var interleaved = stored.Permute(1, 0, 2);   // (3, 4, 5) with batch stride 5, row stride 15
        p = Tensor.PlanMatmul(interleaved, yb);
        Assert.Equal((false, 5L, 15L), (p.CopiesA, p.Geometry.BatchStrideA, p.Geometry.Lda));

        // Neither stride of the matrix dims is 1: the one case that copies.
        using var wide = Tensor.Zeros([8, 10]);
        using var gapped = wide.Slice(0, 0, 8, 2).Slice(1, 0, 10, 2);   // (4, 5) with strides (20, 2)
        p = Tensor.PlanMatmul(gapped, wT);
        Assert.True(p.CopiesA && !p.CopiesB);
    }

    [Fact]
    public void StridedOperandThatMustBeCopiedStillGivesTheRightProduct()
    {
        var gen = TestUtil.Fresh(out var seed);
        var rw = Values(gen, [9, 14]);
        var rb = Values(gen, [5, 6]);
        using var wide = rw.ToTensor().RequireGrad();
        using var a = wide.Slice(0, 1, 9, 2).Slice(1, 0, 14, 3);   // (4, 5), strides (28, 3)
        using var b = rb.ToTensor().RequireGrad();
        var ra = RefTensor.From(a);
        using var c = a.Matmul(b);
        AssertProduct(RefMatmul(ra, rb), RefMatmul(Abs(ra), Abs(rb)), c, "gapped (4, 5) @ (5, 6)", seed);
        var rc = Values(gen, c.ShapeArray());
        using var gc = rc.ToTensor();
        c.Backward(gc);
        var (da, db) = RefMatmulBackward(ra, rb, rc);
        var (ma, mb) = RefMatmulBackward(Abs(ra), Abs(rb), Abs(rc));
        AssertProduct(db, mb, b.Grad!, "grad b", seed);
        // wide's gradient is da scattered into the sliced positions, zero elsewhere
        var expected = new double[9 * 14];
        var magnitude = new double[9 * 14];
        for (var i = 0; i < 4; i++)
            for (var j = 0; j < 5; j++)
            {
                expected[(1 + 2 * i) * 14 + 3 * j] = da.Data[i * 5 + j];
                magnitude[(1 + 2 * i) * 14 + 3 * j] = ma.Data[i * 5 + j];
            }
        SumTolerance.AssertClose(expected, magnitude, wide.Grad!, [9, 14], "grad of the sliced source", seed);
    }

    [Fact]
    public void BmmMatchesReference()
    {
        var gen = TestUtil.Fresh(out var seed);
        var ra = Values(gen, [3, 5, 7]);
        var rb = Values(gen, [3, 4, 7]);
        using var a = ra.ToTensor().RequireGrad();
        using var bStored = rb.ToTensor().RequireGrad();
        using var b = bStored.Transpose(1, 2);   // (3, 7, 4) read transposed
        var rbt = rb.Permute([0, 2, 1]);
        using var c = Tensor.Bmm(a, b);
        AssertProduct(RefMatmul(ra, rbt), RefMatmul(Abs(ra), Abs(rbt)), c, "bmm", seed);
        var rc = Values(gen, c.ShapeArray());
        using var gc = rc.ToTensor();
        c.Backward(gc);
        var (da, db) = RefMatmulBackward(ra, rbt, rc);
        var (ma, mb) = RefMatmulBackward(Abs(ra), Abs(rbt), Abs(rc));
        AssertProduct(da, ma, a.Grad!, "bmm grad a", seed);
        AssertProduct(db.Permute([0, 2, 1]), mb.Permute([0, 2, 1]), bStored.Grad!, "bmm grad b", seed);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LinearWithThreeDimensionalInputMatchesReference(bool withBias)
    {
        var gen = TestUtil.Fresh(out var seed);
        var (inF, outF) = (13, 7);
        var rx = Values(gen, [2, 5, inF]);
        var rw = Values(gen, [outF, inF]);
        var rbias = Values(gen, [outF]);
        using var x = rx.ToTensor().RequireGrad();
        using var w = rw.ToTensor().RequireGrad();
        using var bias = withBias ? rbias.ToTensor().RequireGrad() : null;
        using var y = Tensor.Linear(x, w, bias);

        var rwt = rw.Permute([1, 0]);
        var expected = RefMatmul(rx, rwt);
        var magnitude = RefMatmul(Abs(rx), Abs(rwt));
        if (withBias)
        {
            expected = RefTensor.Zip(expected, rbias, (v, b) => v + b);
            magnitude = RefTensor.Zip(magnitude, rbias, (v, b) => v + Math.Abs(b));
        }
        AssertProduct(expected, magnitude, y, $"linear forward (bias {withBias})", seed);

        var ry = Values(gen, y.ShapeArray());
        using var gy = ry.ToTensor();
        y.Backward(gy);
        var (dx, dwt) = RefMatmulBackward(rx, rwt, ry);
        var (mx, mwt) = RefMatmulBackward(Abs(rx), Abs(rwt), Abs(ry));
        AssertProduct(dx, mx, x.Grad!, "linear grad x", seed);
        AssertProduct(dwt.Permute([1, 0]), mwt.Permute([1, 0]), w.Grad!, "linear grad weight", seed);
        if (withBias)
            AssertProduct(ry.SumTo([outF]), Abs(ry).SumTo([outF]), bias!.Grad!, "linear grad bias", seed);
    }

    [Fact]
    public void LinearIsOneTransposedProductWithoutCopies()
    {
        // Linear flattens x to (R, in) and reads the weight transposed: the plan of that product.
        using var x = Tensor.Zeros([2, 5, 13]);
        using var w = Tensor.Zeros([7, 13]);
        using var x2 = x.Reshape(-1, 13);
        using var wT = w.T();
        var p = Tensor.PlanMatmul(x2, wT);
        Assert.Equal((1, 1, 10, 7, 13), (p.Calls, p.Geometry.Batch, p.Geometry.M, p.Geometry.N, p.Geometry.K));
        Assert.True(p.Geometry.TransB && !p.CopiesA && !p.CopiesB);
        // And the result has x's leading dims.
        using var y = Tensor.Linear(x, w);
        Assert.Equal([2, 5, 7], y.ShapeArray());
    }

    [Fact]
    public void LinearOnAStridedInputAndEmptyRows()
    {
        var gen = TestUtil.Fresh(out var seed);
        var rx = Values(gen, [6, 4]);
        var rw = Values(gen, [3, 6]);
        using var stored = rx.ToTensor();
        using var x = stored.T();   // (4, 6), non-contiguous
        using var w = rw.ToTensor();
        using var y = Tensor.Linear(x, w);
        var rxt = rx.Permute([1, 0]);
        var rwt = rw.Permute([1, 0]);
        AssertProduct(RefMatmul(rxt, rwt), RefMatmul(Abs(rxt), Abs(rwt)), y, "linear on a transposed x", seed);

        // A single feature vector (in) gives (out).
        var rv = Values(gen, [6]);
        using var v = rv.ToTensor();
        using var yv = Tensor.Linear(v, w);
        AssertProduct(RefMatmul(rv, rwt), RefMatmul(Abs(rv), Abs(rwt)), yv, "linear on a 1-D x", seed);

        using var empty = Tensor.Zeros([0, 6]).RequireGrad();
        using var bias = Tensor.Ones([3]).RequireGrad();
        using var wg = rw.ToTensor().RequireGrad();
        using var y0 = Tensor.Linear(empty, wg, bias);
        Assert.Equal([0, 3], y0.ShapeArray());
        using var g0 = Tensor.Zeros([0, 3]);
        y0.Backward(g0);
        Assert.All(wg.Grad!.ToDoubleArray(), v => Assert.Equal(0.0, v));
        Assert.All(bias.Grad!.ToDoubleArray(), v => Assert.Equal(0.0, v));
    }

    [Fact]
    public void BadArgumentsNameTheOpTheShapesAndTheFix()
    {
        using var a = Tensor.Zeros([3, 4]);
        using var b = Tensor.Zeros([5, 6]);
        var e = Assert.Throws<ArgumentException>(() => a.Matmul(b));
        Assert.Contains("matmul: inner dims differ ([3, 4] @ [5, 6])", e.Message);
        Assert.Contains("a's last dim is 4, b's second-to-last dim is 5", e.Message);
        Assert.Contains("transpose or reshape", e.Message);

        using var v = Tensor.Zeros([5]);
        e = Assert.Throws<ArgumentException>(() => a.Matmul(v));
        Assert.Contains("b's only dim is 5", e.Message);

        using var s = Tensor.Scalar(2);
        e = Assert.Throws<ArgumentException>(() => a.Matmul(s));
        Assert.Contains("matmul: both operands need at least one dim ([3, 4] @ [])", e.Message);
        Assert.Contains("Mul", e.Message);

        using var a3 = Tensor.Zeros([2, 3, 4]);
        using var b3 = Tensor.Zeros([3, 4, 6]);
        e = Assert.Throws<ArgumentException>(() => a3.Matmul(b3));
        Assert.Contains("matmul: the batch dims [2] and [3] of [2, 3, 4] @ [3, 4, 6] cannot be broadcast", e.Message);

        using var ai = Tensor.Zeros([3, 4], DType.Int64);
        using var b46 = Tensor.Zeros([4, 6]);
        e = Assert.Throws<ArgumentException>(() => ai.Matmul(b46));
        Assert.Contains("matmul: needs float32 operands, got int64 and float32", e.Message);

        e = Assert.Throws<ArgumentException>(() => Tensor.Bmm(a, b46));
        Assert.Contains("bmm: needs 3-D operands (B, M, K) and (B, K, N), got [3, 4] and [4, 6]", e.Message);
        using var b34 = Tensor.Zeros([3, 4, 6]);
        e = Assert.Throws<ArgumentException>(() => Tensor.Bmm(a3, b34));
        Assert.Contains("bmm: batch sizes differ ([2, 3, 4] and [3, 4, 6])", e.Message);
        Assert.Contains("use Matmul", e.Message);

        using var x = Tensor.Zeros([2, 5, 13]);
        using var w = Tensor.Zeros([7, 12]);
        e = Assert.Throws<ArgumentException>(() => Tensor.Linear(x, w));
        Assert.Contains("linear: x's last dim must equal the weight's in = 12 (x [2, 5, 13], weight [7, 12])", e.Message);
        using var w13 = Tensor.Zeros([7, 13]);
        using var bias = Tensor.Zeros([6]);
        e = Assert.Throws<ArgumentException>(() => Tensor.Linear(x, w13, bias));
        Assert.Contains("linear: bias must be 1-D with out = 7 elements", e.Message);
        using var w3 = Tensor.Zeros([7, 13, 1]);
        e = Assert.Throws<ArgumentException>(() => Tensor.Linear(x, w3));
        Assert.Contains("linear: weight must be 2-D (out, in), got [7, 13, 1]", e.Message);
    }
}
