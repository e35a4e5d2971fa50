// CPU softmax, log-softmax and fused cross-entropy. Rows are processed in parallel; inside a row the work is
// TensorPrimitives calls on contiguous runs. When the softmax dim is not the last one (inner > 1), a unit of
// work is one (outer index, chunk of inner columns) block and the n rows of that block are combined
// element-wise across the chunk, so the SIMD width runs along inner instead of striding through memory.
using System.Buffers;
using System.Numerics.Tensors;

namespace Engine;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Most columns of one (outer, n, inner) block handled by one unit of work when inner > 1 (the
    /// per-column max and sum buffers live on the stack).</summary>
    private const int SoftmaxInnerChunk = 1024;

    /// <summary>Columns per unit of work: narrower than the maximum when there are few outer indices (softmax over
    /// dim 0), so that every core gets about four units, but at least 64 so each TensorPrimitives call pays off.</summary>
    private static long SoftmaxChunkWidth(long outer, long inner)
    {
        var perOuter = Math.Max(1, (4L * Environment.ProcessorCount + outer - 1) / outer);
        return Math.Clamp((inner + perOuter - 1) / perOuter, Math.Min(inner, 64), SoftmaxInnerChunk);
    }

    public void Softmax(Tensor x, long outer, long n, long inner, bool log, Tensor y)
    {
        if (x.DType != DType.Float32) throw Unsupported(log ? "log_softmax" : "softmax", x.DType);
        if (outer * n * inner == 0) return;
        var px = x.Data<float>();
        var py = y.Data<float>();
        var len = checked((int)n);
        if (inner == 1)
        {
            CpuLoops.For(outer, 4 * n, o =>
            {
                var xs = new ReadOnlySpan<float>(px + o * n, len);
                var ys = new Span<float>(py + o * n, len);
                var max = TensorPrimitives.Max(xs);
                TensorPrimitives.Subtract(xs, max, ys);
                TensorPrimitives.Exp(ys, ys);
                var sum = TensorPrimitives.Sum(ys);
                if (log) TensorPrimitives.Subtract(xs, max + MathF.Log(sum), ys);
                else TensorPrimitives.Divide(ys, sum, ys);
            });
            return;
        }

        var chunk = SoftmaxChunkWidth(outer, inner);
        var chunks = (inner + chunk - 1) / chunk;
        CpuLoops.For(outer * chunks, 4 * n * chunk, u =>
        {
            var o = u / chunks;
            var j0 = u % chunks * chunk;
            var width = (int)Math.Min(chunk, inner - j0);
            var bx = px + o * n * inner + j0;
            var by = py + o * n * inner + j0;
            Span<float> max = stackalloc float[width];
            Span<float> sum = stackalloc float[width];
            new ReadOnlySpan<float>(bx, width).CopyTo(max);
            for (long k = 1; k < n; k++) TensorPrimitives.Max(max, new ReadOnlySpan<float>(bx + k * inner, width), max);
            sum.Clear();
            for (long k = 0; k < n; k++)
            {
                var yk = new Span<float>(by + k * inner, width);
                TensorPrimitives.Subtract(new ReadOnlySpan<float>(bx + k * inner, width), max, yk);
                TensorPrimitives.Exp(yk, yk);
                TensorPrimitives.Add(sum, yk, sum);
            }
            if (log)
            {
                // y = x − max − log Σ exp(x − max); max now holds the whole shift
                TensorPrimitives.Log(sum, sum);
                TensorPrimitives.Add(max, sum, max);
                for (long k = 0; k < n; k++)
                    TensorPrimitives.Subtract(new ReadOnlySpan<float>(bx + k * inner, width), max, new Span<float>(by + k * inner, width));
            }
            else
            {
                TensorPrimitives.Reciprocal(sum, sum);
                for (long k = 0; k < n; k++)
                {
                    var yk = new Span<float>(by + k * inner, width);
                    TensorPrimitives.Multiply(yk, sum, yk);
                }
            }
        });
    }

    public void SoftmaxBackward(Tensor y, Tensor g, long outer, long n, long inner, bool log, Tensor gx)
    {
        if (outer * n * inner == 0) return;
        var py = y.Data<float>();
        var pg = g.Data<float>();
        var pgx = gx.Data<float>();
        var len = checked((int)n);
        if (inner == 1)
        {
            CpuLoops.For(outer, 4 * n, o =>
            {
                var ys = new ReadOnlySpan<float>(py + o * n, len);
                var gs = new ReadOnlySpan<float>(pg + o * n, len);
                var dst = new Span<float>(pgx + o * n, len);
                if (log)
                {
                    var s = TensorPrimitives.Sum(gs);
                    TensorPrimitives.Exp(ys, dst);
                    TensorPrimitives.MultiplyAdd(dst, -s, gs, dst);
                }
                else
                {
                    var dot = TensorPrimitives.Dot(gs, ys);
                    TensorPrimitives.Subtract(gs, dot, dst);
                    TensorPrimitives.Multiply(dst, ys, dst);
                }
            });
            return;
        }

        var chunk = SoftmaxChunkWidth(outer, inner);
        var chunks = (inner + chunk - 1) / chunk;
        CpuLoops.For(outer * chunks, 4 * n * chunk, u =>
        {
            var o = u / chunks;
            var j0 = u % chunks * chunk;
            var width = (int)Math.Min(chunk, inner - j0);
            var start = o * n * inner + j0;
            Span<float> acc = stackalloc float[width];
            acc.Clear();
            for (long k = 0; k < n; k++)
            {
                var gk = new ReadOnlySpan<float>(pg + start + k * inner, width);
                if (log) TensorPrimitives.Add(acc, gk, acc);
                else TensorPrimitives.MultiplyAdd(gk, new ReadOnlySpan<float>(py + start + k * inner, width), acc, acc);
            }
            for (long k = 0; k < n; k++)
            {
                var off = start + k * inner;
                var yk = new ReadOnlySpan<float>(py + off, width);
                var gk = new ReadOnlySpan<float>(pg + off, width);
                var dst = new Span<float>(pgx + off, width);
                if (log)
                {
                    TensorPrimitives.Exp(yk, dst);
                    TensorPrimitives.Multiply(dst, acc, dst);
                    TensorPrimitives.Subtract(gk, dst, dst);
                }
                else
                {
                    TensorPrimitives.Subtract(gk, acc, dst);
                    TensorPrimitives.Multiply(dst, yk, dst);
                }
            }
        });
    }

    public void CrossEntropyForward(Tensor logits, Tensor target, Tensor? weight, long ignoreIndex, double labelSmoothing,
                                    Tensor loss, Tensor rowWeight, Tensor logSumExp)
    {
        var (rows, classes) = (logits.Size(0), logits.Size(1));
        var px = logits.Data<float>();
        var pt = target.Data<long>();
        var pw = weight is null ? null : weight.Data<float>();
        var pl = loss.Data<float>();
        var prw = rowWeight.Data<float>();
        var plse = logSumExp.Data<float>();
        // Validate every target before any parallel work, so the error names the first bad row.
        for (var i = 0; i < rows; i++)
        {
            var t = pt[i];
            if (t != ignoreIndex && (t < 0 || t >= classes))
                throw new ArgumentException(
                    $"CrossEntropy: target value {t} at row {i} is out of range for {classes} classes (valid: 0..{classes - 1}, or ignoreIndex {ignoreIndex}). " +
                    "Check the label mapping, or mark rows to skip with ignoreIndex.");
        }
        var eps = labelSmoothing;
        double totalWeight = pw is null ? classes : TensorPrimitives.Sum(new ReadOnlySpan<float>(pw, classes));
        RowRanges(rows, 4L * classes, (from, to) =>
        {
            var buffer = ArrayPool<float>.Shared.Rent(classes);
            var tmp = buffer.AsSpan(0, classes);
            for (var i = from; i < to; i++)
            {
                var row = new ReadOnlySpan<float>(px + i * classes, classes);
                var max = TensorPrimitives.Max(row);
                TensorPrimitives.Subtract(row, max, tmp);
                // Σ_c w[c]·(x_c − max), taken before tmp is exponentiated; only label smoothing needs it
                double shiftedDot = eps == 0 ? 0 : pw is null ? TensorPrimitives.Sum(tmp) : TensorPrimitives.Dot(new ReadOnlySpan<float>(pw, classes), tmp);
                TensorPrimitives.Exp(tmp, tmp);
                double logSum = Math.Log(TensorPrimitives.Sum(tmp));
                plse[i] = (float)(max + logSum);
                var t = pt[i];
                if (t == ignoreIndex)
                {
                    pl[i] = 0;
                    prw[i] = 0;
                    continue;
                }
                double wy = pw is null ? 1 : pw[t];
                var nll = logSum - (row[(int)t] - (double)max);
                var smooth = totalWeight * logSum - shiftedDot;
                pl[i] = (float)((1 - eps) * wy * nll + eps / classes * smooth);
                prw[i] = (float)wy;
            }
            ArrayPool<float>.Shared.Return(buffer);
        });
    }

    public void CrossEntropyBackward(Tensor logits, Tensor target, Tensor? weight, Tensor logSumExp, Tensor gradRow,
                                     long ignoreIndex, double labelSmoothing, Tensor gradLogits)
    {
        var (rows, classes) = (logits.Size(0), logits.Size(1));
        var px = logits.Data<float>();
        var pt = target.Data<long>();
        var pw = weight is null ? null : weight.Data<float>();
        var plse = logSumExp.Data<float>();
        var pg = gradRow.Data<float>();
        var gStride = rows > 1 ? gradRow.Strides[0] : 0;
        var pgx = gradLogits.Data<float>();
        var eps = labelSmoothing;
        double totalWeight = pw is null ? classes : TensorPrimitives.Sum(new ReadOnlySpan<float>(pw, classes));
        RowRanges(rows, 4L * classes, (from, to) =>
        {
            for (var i = from; i < to; i++)
            {
                var dst = new Span<float>(pgx + i * classes, classes);
                var t = pt[i];
                if (t == ignoreIndex)
                {
                    dst.Clear();
                    continue;
                }
                double g = pg[i * gStride];
                double wy = pw is null ? 1 : pw[t];
                // ∂loss_i/∂x_c = p_c·((1−ε)·w_y + (ε/C)·Σw) − (1−ε)·w_y·[c = y] − (ε/C)·w_c
                var scale = g * ((1 - eps) * wy + eps / classes * totalWeight);
                TensorPrimitives.Subtract(new ReadOnlySpan<float>(px + i * classes, classes), plse[i], dst);
                TensorPrimitives.Exp(dst, dst);
                TensorPrimitives.Multiply(dst, (float)scale, dst);
                if (eps != 0)
                {
                    var smooth = (float)(-g * eps / classes);
                    if (pw is null) TensorPrimitives.Add(dst, smooth, dst);
                    else TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(pw, classes), smooth, dst, dst);
                }
                dst[(int)t] -= (float)(g * (1 - eps) * wy);
            }
        });
    }

    /// <summary>Splits [0, count) into ranges run in parallel when count × cost is large (one scratch buffer per range).</summary>
    private static void RowRanges(long count, long costPerItem, Action<long, long> body)
    {
        if (count <= 0) return;
        if (count * Math.Max(costPerItem, 1) < CpuLoops.ParallelThreshold || count < 2) body(0, count);
        else CpuLoops.ParallelRange(count, body);
    }
}
