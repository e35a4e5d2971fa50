// Matrix products with PyTorch's semantics and their gradients: Matmul (1-D·1-D dot, 2-D @ 2-D, a 1-D
// operand promoted to a matrix and the added dim removed again, batched ≥3-D with broadcast batch dims),
// Bmm (strict (B, M, K) @ (B, K, N)) and Linear (x @ weightᵀ + bias). For C = A @ B with upstream dC:
//   dA = dC @ Bᵀ,   dB = Aᵀ @ dC   (each summed over the batch dims its operand was broadcast along),
//   dbias = Σ_rows dC.
// Every product is planned from the operands' strides into as few backend calls as possible: a transposed
// view becomes a transpose flag, a broadcast batch dim a zero batch stride, batch dims evenly spaced in all
// three tensors merge into one, and a right operand shared by every batch entry folds the batch into the
// rows (one 2-D product, e.g. (B·M, K) @ (K, N)). Only an operand whose two matrix dims have neither a
// row-major nor a transposed layout (both strides ≠ 1, or a zero row stride) is copied first.
using Engine.Native;

namespace Engine;

/// <summary>How one product runs: the geometry of each backend call, the number of calls (one per combination of
/// the batch dims that could not be merged into the geometry's batch), and whether an operand is copied first.</summary>
public sealed record MatmulPlan(MatmulGeometry Geometry, int Calls, bool CopiesA, bool CopiesB);

public sealed partial class Tensor
{
    /// <summary>Matrix product with PyTorch's matmul semantics (see the file comment). Shapes:
    /// (K)·(K) → (); (M, K) @ (K, N) → (M, N); (K) @ (..., K, N) → (..., N); (..., M, K) @ (K) → (..., M);
    /// (..., M, K) @ (..., K, N) → (broadcast(...), M, N).</summary>
    public Tensor Matmul(Tensor other)
    {
        var (cShape, outShape) = MatmulShapes(this, other, "matmul");
        using var a = PromoteMatmulLeft(this);
        using var b = PromoteMatmulRight(other);
        var y = Empty(outShape, DType.Float32, Device);
        using (var c = y.ViewUnrecorded(cShape)) MatmulInto(a, b, c);

        if (Autograd.Tape.IsNeeded(this, other))
        {
            var (needA, needB) = (RequiresGrad, other.RequiresGrad);
            var (shapeA, shapeB, shapeA2, shapeB2) = (_shape, other._shape, a._shape, b._shape);
            Autograd.Tape.Record(y, "matmul", [this, other], node =>
            {
                var sa = needB ? node.Save(a) : null;
                var sb = needA ? node.Save(b) : null;
                return g =>
                {
                    using var g2 = g.ReshapeUnrecorded(cShape);   // (batch..., M, N)
                    return [needA ? MatmulGradA(g2, sb!, shapeA2, shapeA) : null,
                            needB ? MatmulGradB(sa!, g2, shapeB2, shapeB) : null];
                };
            });
        }
        return y;
    }

    /// <summary>Batched product (B, M, K) @ (B, K, N) → (B, M, N); unlike Matmul the batch sizes must be equal.</summary>
    public static Tensor Bmm(Tensor a, Tensor b)
    {
        if (a.Rank != 3 || b.Rank != 3)
            throw new ArgumentException($"bmm: needs 3-D operands (B, M, K) and (B, K, N), got {ShapeUtil.Format(a.Shape)} and " +
                                        $"{ShapeUtil.Format(b.Shape)}; use Matmul for other ranks.");
        if (a.Size(0) != b.Size(0))
            throw new ArgumentException($"bmm: batch sizes differ ({ShapeUtil.Format(a.Shape)} and {ShapeUtil.Format(b.Shape)}); " +
                                        "bmm does not broadcast, use Matmul to broadcast batch dims.");
        return a.Matmul(b);
    }

    /// <summary>x (..., in) @ weightᵀ + bias with weight (out, in) and bias (out) (may be null) → (..., out). The
    /// rows of x are flattened into one (R, in) matrix and multiplied by the weight read transposed in place:
    /// one backend call, no copy of the weight.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        CheckLinear(x, weight, bias);
        var (outF, inF) = (weight.Size(0), weight.Size(1));
        var lead = x._shape[..^1];
        var rows = checked((int)ShapeUtil.Numel(lead));
        using var x2 = x.ReshapeUnrecorded([rows, inF]);
        using var wt = weight.TransposeLastUnrecorded();   // (in, out), stored as weight (out, in)
        var y = Empty([.. lead, outF], DType.Float32, x.Device);
        using (var y2 = y.ViewUnrecorded([rows, outF]))
        {
            MatmulInto(x2, wt, y2);
            if (bias is not null)
            {
                // In place: each element of y2 is read once and then written, which every backend's
                // element-wise loop allows for an output that is exactly its first operand.
                using var be = bias.BroadcastView([rows, outF], "linear");
                y.Backend.Binary(BinaryOp.Add, y2, be, y2);
            }
        }

        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        if (Autograd.Tape.IsNeeded(inputs))
        {
            var (needX, needW, needB, hasBias) = (x.RequiresGrad, weight.RequiresGrad, bias?.RequiresGrad ?? false, bias is not null);
            var xShape = x._shape;
            Autograd.Tape.Record(y, "linear", inputs, node =>
            {
                var sx = needW ? node.Save(x2) : null;
                var sw = needX ? node.Save(weight) : null;
                return g =>
                {
                    using var g2 = g.ReshapeUnrecorded([rows, outF]);
                    Tensor? dx = null, dw = null, db = null;
                    if (needX)
                    {
                        dx = Empty(xShape, DType.Float32, g.Device);
                        using var dx2 = dx.ViewUnrecorded([rows, inF]);
                        MatmulInto(g2, sw!, dx2);                      // (R, out) @ (out, in)
                    }
                    if (needW)
                    {
                        dw = Empty([outF, inF], DType.Float32, g.Device);
                        using var gt = g2.TransposeLastUnrecorded();
                        MatmulInto(gt, sx!, dw);                       // (out, R) @ (R, in)
                    }
                    if (needB) db = g2.Sum(0);
                    return hasBias ? [dx, dw, db] : [dx, dw];
                };
            });
        }
        return y;
    }

    /// <summary>The backend calls <c>a.Matmul(b)</c> makes, without running them (benchmarks and tests use it
    /// to see that transposed and broadcast operands are not copied).</summary>
    public static MatmulPlan PlanMatmul(Tensor a, Tensor b)
    {
        MatmulShapes(a, b, "matmul");
        using var a2 = PromoteMatmulLeft(a);
        using var b2 = PromoteMatmulRight(b);
        var s = ScheduleMatmul(a2, b2);
        return new MatmulPlan(s.Geometry, s.Calls, s.CopyA, s.CopyB);
    }

    // ---- shapes and checks ----

    /// <summary>(cShape, outShape): the product as (batch..., M, N), and the result's shape with the dims of
    /// promoted 1-D operands removed.</summary>
    private static (int[] CShape, int[] OutShape) MatmulShapes(Tensor a, Tensor b, string op)
    {
        string Shapes() => $"{ShapeUtil.Format(a.Shape)} @ {ShapeUtil.Format(b.Shape)}";
        if (a.DType != DType.Float32 || b.DType != DType.Float32)
            throw new ArgumentException($"{op}: needs float32 operands, got {a.DType.Name()} and {b.DType.Name()} ({Shapes()}); convert with To(DType.Float32).");
        if (a.Device != b.Device)
            throw new ArgumentException($"{op}: operands are on different devices ({a.Device} and {b.Device}, {Shapes()}); move one with To(device).");
        if (a.Rank == 0 || b.Rank == 0)
            throw new ArgumentException($"{op}: both operands need at least one dim ({Shapes()}); multiply by a scalar with Mul.");
        var ka = a._shape[^1];
        var kb = b.Rank == 1 ? b._shape[0] : b._shape[^2];
        if (ka != kb)
            throw new ArgumentException(
                $"{op}: inner dims differ ({Shapes()}): a's last dim is {ka}, b's {(b.Rank == 1 ? "only" : "second-to-last")} dim is {kb}; " +
                "they must be equal: transpose or reshape an operand.");
        var batchA = a.Rank > 2 ? a._shape[..^2] : [];
        var batchB = b.Rank > 2 ? b._shape[..^2] : [];
        int[] batch;
        try { batch = ShapeUtil.Broadcast(batchA, batchB, op); }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{op}: the batch dims {ShapeUtil.Format(batchA)} and {ShapeUtil.Format(batchB)} of {Shapes()} " +
                                        "cannot be broadcast: each pair must be equal or one of them 1; reshape or unsqueeze an operand.", e);
        }
        var m = a.Rank == 1 ? 1 : a._shape[^2];
        var n = b.Rank == 1 ? 1 : b._shape[^1];
        int[] cShape = [.. batch, m, n];
        var outShape = new List<int>(batch);
        if (a.Rank > 1) outShape.Add(m);
        if (b.Rank > 1) outShape.Add(n);
        return (cShape, [.. outShape]);
    }

    private static void CheckLinear(Tensor x, Tensor weight, Tensor? bias)
    {
        string Shapes() => $"x {ShapeUtil.Format(x.Shape)}, weight {ShapeUtil.Format(weight.Shape)}" +
                           (bias is null ? "" : $", bias {ShapeUtil.Format(bias.Shape)}");
        foreach (var (name, t) in new[] { ("x", x), ("weight", weight), ("bias", bias) })
        {
            if (t is null) continue;
            if (t.DType != DType.Float32)
                throw new ArgumentException($"linear: {name} has dtype {t.DType.Name()}, linear needs float32 ({Shapes()}); convert with To(DType.Float32).");
            if (t.Device != x.Device)
                throw new ArgumentException($"linear: {name} is on {t.Device} but x is on {x.Device} ({Shapes()}); move it with To(device).");
        }
        if (weight.Rank != 2)
            throw new ArgumentException($"linear: weight must be 2-D (out, in), got {ShapeUtil.Format(weight.Shape)} ({Shapes()}).");
        if (x.Rank == 0 || x._shape[^1] != weight.Size(1))
            throw new ArgumentException($"linear: x's last dim must equal the weight's in = {weight.Size(1)} ({Shapes()}); " +
                                        "flatten the features into the last dim (e.g. x.Flatten(1)) or fix the weight shape.");
        if (bias is not null && (bias.Rank != 1 || bias.Size(0) != weight.Size(0)))
            throw new ArgumentException($"linear: bias must be 1-D with out = {weight.Size(0)} elements ({Shapes()}).");
    }

    private static Tensor PromoteMatmulLeft(Tensor a) => a.Rank == 1 ? a.UnsqueezeRaw(0) : a.Alias();    // (K) → (1, K)
    private static Tensor PromoteMatmulRight(Tensor b) => b.Rank == 1 ? b.UnsqueezeRaw(1) : b.Alias();   // (K) → (K, 1)

    // ---- gradients ----

    /// <summary>dA = dC @ Bᵀ over the full batch, summed to A's (promoted) shape, reshaped to A's own shape.</summary>
    private static Tensor MatmulGradA(Tensor g2, Tensor b2, int[] shapeA2, int[] shapeA)
    {
        using var bt = b2.TransposeLastUnrecorded();
        var full = Empty([.. g2._shape[..^2], shapeA2[^2], shapeA2[^1]], DType.Float32, g2.Device);
        MatmulInto(g2, bt, full);
        return SumToAndReshape(full, shapeA2, shapeA);
    }

    /// <summary>dB = Aᵀ @ dC. When B has no batch dims (every batch entry shares it) the sum over the batch is
    /// folded into the product: (A as (R·M, K))ᵀ @ (dC as (R·M, N)), one call and no (batch, K, N) temporary.</summary>
    private static Tensor MatmulGradB(Tensor a2, Tensor g2, int[] shapeB2, int[] shapeB)
    {
        var (k, n) = (shapeB2[^2], shapeB2[^1]);
        if (shapeB2.Length == 2 && a2.Rank > 2)
        {
            var rows = checked((int)ShapeUtil.Numel(g2._shape.AsSpan(0, g2.Rank - 1)));   // R·M
            using var af = a2.ReshapeUnrecorded([rows, k]);
            using var gf = g2.ReshapeUnrecorded([rows, n]);
            using var aft = af.TransposeLastUnrecorded();
            var db = Empty([k, n], DType.Float32, g2.Device);
            MatmulInto(aft, gf, db);
            return SumToAndReshape(db, shapeB2, shapeB);
        }
        using var at = a2.TransposeLastUnrecorded();
        var full = Empty([.. g2._shape[..^2], k, n], DType.Float32, g2.Device);
        MatmulInto(at, g2, full);
        return SumToAndReshape(full, shapeB2, shapeB);
    }

    private static Tensor SumToAndReshape(Tensor full, int[] promoted, int[] original)
    {
        using (full)
        {
            // Nothing multiplied (an empty batch, M, N or K): the gradient is a sum over nothing.
            if (full.Numel == 0) return Zeros(original, DType.Float32, full.Device);
            using var summed = full.SumToShape(promoted);
            return summed.Reshape(original);
        }
    }

    // ---- planning and running ----

    /// <param name="Outer">batch dims left over after merging, outermost first: one backend call per index.</param>
    private sealed record MatmulSchedule(MatmulGeometry Geometry, bool CopyA, bool CopyB, (int Size, long A, long B, long C)[] Outer)
    {
        public int Calls => Outer.Aggregate(1, (count, d) => checked(count * d.Size));
    }

    /// <summary>c (batch..., M, N), contiguous, = a (..., M, K) @ b (..., K, N) with broadcast batch dims; no autograd.</summary>
    private static void MatmulInto(Tensor a, Tensor b, Tensor c)
    {
        var s = ScheduleMatmul(a, b);
        using var ac = s.CopyA ? a.DenseUnrecorded() : null;
        using var bc = s.CopyB ? b.DenseUnrecorded() : null;
        RunMatmul(s, ac ?? a, bc ?? b, c);
    }

    private static MatmulSchedule ScheduleMatmul(Tensor a, Tensor b)
    {
        var (m, k, n) = (a._shape[^2], a._shape[^1], b._shape[^1]);
        var stridesA = a._strides;
        var copyA = !MatrixLayout(m, k, stridesA[^2], stridesA[^1], out var transA, out var lda);
        if (copyA)
        {
            stridesA = ShapeUtil.ContiguousStrides(a._shape);
            MatrixLayout(m, k, stridesA[^2], stridesA[^1], out transA, out lda);
        }
        var stridesB = b._strides;
        var copyB = !MatrixLayout(k, n, stridesB[^2], stridesB[^1], out var transB, out var ldb);
        if (copyB)
        {
            stridesB = ShapeUtil.ContiguousStrides(b._shape);
            MatrixLayout(k, n, stridesB[^2], stridesB[^1], out transB, out ldb);
        }

        var batch = ShapeUtil.Broadcast(a._shape[..^2], b._shape[..^2], "matmul");
        var stridesC = ShapeUtil.ContiguousStrides([.. batch, m, n]);
        // Batch dims of size > 1 with each tensor's stride (0 where an operand is broadcast), outermost first;
        // a dim merges into the one before it when that one's strides are exactly size × its own in all three.
        var dims = new List<(int Size, long A, long B, long C)>();
        for (var i = 0; i < batch.Length; i++)
        {
            if (batch[i] == 1) continue;
            var d = (Size: batch[i], A: BatchStride(a._shape, stridesA, i, batch.Length),
                     B: BatchStride(b._shape, stridesB, i, batch.Length), C: stridesC[i]);
            if (dims.Count > 0)
            {
                var p = dims[^1];
                if (p.A == d.A * d.Size && p.B == d.B * d.Size && p.C == d.C * d.Size)
                {
                    dims[^1] = (checked(p.Size * d.Size), d.A, d.B, d.C);
                    continue;
                }
            }
            dims.Add(d);
        }

        var (count, rows, bsA, bsB, bsC) = (1, m, 0L, 0L, (long)m * n);
        if (dims.Count > 0)
        {
            var inner = dims[^1];
            dims.RemoveAt(dims.Count - 1);
            if (inner.B == 0 && !transA && inner.A == (long)m * lda)
                rows = checked(inner.Size * m);   // B shared by every entry and A's matrices evenly stacked: (Size·M, K) @ B
            else
                (count, bsA, bsB, bsC) = (inner.Size, inner.A, inner.B, inner.C);
        }
        var g = new MatmulGeometry(count, rows, n, k, transA, transB, lda, ldb, Math.Max(n, 1), bsA, bsB, bsC);
        return new MatmulSchedule(g, copyA, copyB, [.. dims]);
    }

    /// <summary>Stride of an operand along broadcast batch dim i (of batchRank); 0 where the operand is broadcast.</summary>
    private static long BatchStride(int[] shape, long[] strides, int i, int batchRank)
    {
        var d = i - (batchRank - (shape.Length - 2));
        return d >= 0 && shape[d] != 1 ? strides[d] : 0;
    }

    /// <summary>How a (rows, cols) matrix with strides (sr, sc) is stored: row-major with row pitch ld ≥ cols, or
    /// transposed (cols, rows) with pitch ld ≥ rows; false when neither (then the operand is copied).</summary>
    private static bool MatrixLayout(int rows, int cols, long sr, long sc, out bool transposed, out long ld)
    {
        if (cols <= 1 || sc == 1)
        {
            ld = rows <= 1 ? Math.Max(cols, 1) : sr;
            transposed = false;
            if (ld >= Math.Max(cols, 1)) return true;
        }
        if (rows <= 1 || sr == 1)
        {
            ld = cols <= 1 ? Math.Max(rows, 1) : sc;
            transposed = true;
            if (ld >= Math.Max(rows, 1)) return true;
        }
        (transposed, ld) = (false, 0);
        return false;
    }

    private static void RunMatmul(MatmulSchedule s, Tensor a, Tensor b, Tensor c)
    {
        var g = s.Geometry;
        if (c.Numel == 0) return;
        if (g.K == 0)
        {
            c.Backend.Fill(c, 0);   // an empty sum
            return;
        }
        var outer = s.Outer;
        var index = new int[outer.Length];
        for (var call = 0; call < s.Calls; call++)
        {
            long oa = a.Offset, ob = b.Offset, oc = c.Offset;
            for (var d = 0; d < outer.Length; d++)
            {
                oa += index[d] * outer[d].A;
                ob += index[d] * outer[d].B;
                oc += index[d] * outer[d].C;
            }
            using (var va = a.FlatUnrecorded(oa, g.ExtentA))
            using (var vb = b.FlatUnrecorded(ob, g.ExtentB))
            using (var vc = c.FlatUnrecorded(oc, g.ExtentC))
                c.Backend.Matmul(g, va, vb, vc);
            for (var d = outer.Length - 1; d >= 0; d--)
            {
                if (++index[d] < outer[d].Size) break;
                index[d] = 0;
            }
        }
    }

    // ---- unrecorded views (no autograd link, no DisposeScope; the caller disposes them) ----

    /// <summary>The storage range [offset, offset + length) as a 1-D view.</summary>
    private Tensor FlatUnrecorded(long offset, long length)
    {
        using (DisposeScope.Suspend())
            return new Tensor(Storage, [checked((int)length)], [1], offset, DType, addRef: true);
    }

    /// <summary>This contiguous tensor's elements in another shape of the same size.</summary>
    private Tensor ViewUnrecorded(int[] shape)
    {
        using (DisposeScope.Suspend())
            return new Tensor(Storage, shape, ShapeUtil.ContiguousStrides(shape), Offset, DType, addRef: true);
    }

    /// <summary>The same elements in another shape: a view when the strides allow it, else a contiguous copy.</summary>
    private Tensor ReshapeUnrecorded(int[] shape)
    {
        var strides = ViewStrides(shape);
        if (strides is null)
        {
            using var dense = DenseUnrecorded();
            return dense.ViewUnrecorded(shape);
        }
        using (DisposeScope.Suspend())
            return new Tensor(Storage, shape, strides, Offset, DType, addRef: true);
    }

    /// <summary>The last two dims swapped.</summary>
    private Tensor TransposeLastUnrecorded()
    {
        var shape = (int[])_shape.Clone();
        var strides = (long[])_strides.Clone();
        (shape[^1], shape[^2]) = (shape[^2], shape[^1]);
        (strides[^1], strides[^2]) = (strides[^2], strides[^1]);
        using (DisposeScope.Suspend())
            return new Tensor(Storage, shape, strides, Offset, DType, addRef: true);
    }
}
