// CPU group and batch normalization. A group of group norm, (n, g), is one contiguous run of (C/G)·S floats in
// NCHW; a channel of batch norm is N runs of S floats. One unit of parallel work is one group (group norm) or one
// channel (batch norm in training and its backward) or one (n, c) run (batch norm with given statistics), so every reduction is
// computed by one thread in a fixed order: results do not depend on the thread count.
//
// Statistics are two passes over float data with double accumulation: pass 1 sums x (TensorPrimitives.Sum on
// blocks of StatBlock floats, blocks added in double) for μ; pass 2 sums x − μf and (x − μf)² the same way,
// with μf = (float)μ, giving σ² = Σ(x − μf)²/m − (Σ(x − μf)/m)² and the refined mean μf + Σ(x − μf)/m.
// Why not one pass of Σx and Σx²: in float that loses every digit of σ² once |μ|/σ passes ~10³ (post-ReLU
// maps without a preceding norm get there), and doing it in double would need a widening conversion of every
// element. The second pass re-reads a group that was just read (≤ 25 KB for the detector's shapes at 160 px,
// 200 KB for a batch-norm channel of 8×80×80), so it comes from cache; Welford's update is a serial
// dependency per element and does not vectorize. The float error inside a block is bounded by
// StatBlock/Vector<float>.Count additions per lane; across blocks the sums are exact enough in double.
// The element-wise writes are Vector<float> loops (TensorPrimitives has no x·scalar + scalar form), centred
// on μ so that large means do not cancel: y = (x − μ)·scale + shift, dx = a·dy + b·(x − μ) + c.
using System.Numerics;
using System.Numerics.Tensors;

namespace Engine;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Floats summed in float (per SIMD lane) before the partial sum is added in double; 4 KB of stack.</summary>
    private const int StatBlock = 1024;

    public void GroupNormForward(Tensor x, int groups, Tensor? weight, Tensor? bias, double eps, Tensor y, Tensor mean, Tensor rstd)
    {
        if (x.DType != DType.Float32) throw Unsupported("group_norm", x.DType);
        var (n, c, s) = NormLayout(x);
        if (n * c * s == 0) return;
        var cpg = c / groups;
        var m = (long)cpg * s;
        var px = x.Data<float>();
        var py = y.Data<float>();
        var pmean = mean.Data<float>();
        var prstd = rstd.Data<float>();
        var pw = weight is null ? null : weight.Data<float>();
        var pb = bias is null ? null : bias.Data<float>();
        CpuLoops.For((long)n * groups, 3 * m, u =>
        {
            var i = u / groups;
            var c0 = (int)(u % groups) * cpg;
            var start = ((long)i * c + c0) * s;
            var (center, delta, r) = Moments(px + start, m, 1, 0, eps);
            pmean[u] = (float)(center + delta);
            prstd[u] = (float)r;
            for (var k = 0; k < cpg; k++)
            {
                var ch = c0 + k;
                var scale = r * (pw is null ? 1 : pw[ch]);
                // y = (x − μ)·scale + b with μ = center + delta
                var shift = (pb is null ? 0 : pb[ch]) - delta * scale;
                AffineCentered(px + start + (long)k * s, py + start + (long)k * s, s, center, (float)scale, (float)shift);
            }
        });
    }

    public void GroupNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, int groups, Tensor? weight,
                                  Tensor? dx, Tensor? dweight, Tensor? dbias)
    {
        var (n, c, s) = NormLayout(x);
        if (n * c * s == 0)
        {
            dweight?.Backend.Fill(dweight, 0);
            dbias?.Backend.Fill(dbias, 0);
            return;
        }
        var cpg = c / groups;
        var m = (long)cpg * s;
        var pdy = dy.Data<float>();
        var px = x.Data<float>();
        var pmean = mean.Data<float>();
        var prstd = rstd.Data<float>();
        var pw = weight is null ? null : weight.Data<float>();
        var pdx = dx is null ? null : dx.Data<float>();
        // per (n, c): Σ dy and Σ dy·x̂, summed over n afterwards in a fixed order for dweight and dbias
        var sumDy = new double[(long)n * c];
        var sumDyXhat = new double[(long)n * c];
        CpuLoops.For((long)n * groups, (pdx is null ? 2 : 4) * m, u =>
        {
            var i = u / groups;
            var c0 = (int)(u % groups) * cpg;
            var start = ((long)i * c + c0) * s;
            var mu = pmean[u];
            double r = prstd[u];
            double a = 0, b = 0;   // A = Σ dy·w, B = Σ dy·w·x̂ over the group
            for (var k = 0; k < cpg; k++)
            {
                var ch = c0 + k;
                var (s0, s1) = CenteredDot(pdy + start + (long)k * s, px + start + (long)k * s, s, 1, 0, mu);
                var w = pw is null ? 1 : pw[ch];
                sumDy[(long)i * c + ch] = s0;
                sumDyXhat[(long)i * c + ch] = r * s1;
                a += w * s0;
                b += w * r * s1;
            }
            if (pdx is null) return;
            // dx = r·(w·dy − A/m − x̂·B/m) = (r·w)·dy + (−r²·B/m)·(x − μ) + (−r·A/m)
            var slope = (float)(-r * r * b / m);
            var offset = (float)(-r * a / m);
            for (var k = 0; k < cpg; k++)
            {
                var at = start + (long)k * s;
                var w = pw is null ? 1 : pw[c0 + k];
                GradientRun(pdy + at, px + at, pdx + at, s, (float)(r * w), mu, slope, offset);
            }
        });
        WriteChannelSums(sumDy, n, c, dbias);
        WriteChannelSums(sumDyXhat, n, c, dweight);
    }

    public void BatchNormTrainingForward(Tensor x, Tensor? weight, Tensor? bias, double eps, Tensor y, Tensor mean, Tensor variance, Tensor rstd)
    {
        if (x.DType != DType.Float32) throw Unsupported("batch_norm", x.DType);
        var (n, c, s) = NormLayout(x);
        if (n * c * s == 0) return;
        var px = x.Data<float>();
        var py = y.Data<float>();
        var pmean = mean.Data<float>();
        var pvar = variance.Data<float>();
        var prstd = rstd.Data<float>();
        var pw = weight is null ? null : weight.Data<float>();
        var pb = bias is null ? null : bias.Data<float>();
        // One unit per channel: statistics, then the channel's output runs while its N·S inputs are still in cache.
        CpuLoops.For(c, 4L * n * s, ch =>
        {
            var (center, delta, biased) = Moments(px + ch * s, s, n, (long)c * s, eps: null);
            var r = 1 / Math.Sqrt(biased + eps);
            pmean[ch] = (float)(center + delta);
            pvar[ch] = (float)biased;
            prstd[ch] = (float)r;
            var scale = r * (pw is null ? 1 : pw[ch]);
            var shift = (pb is null ? 0 : pb[ch]) - delta * scale;
            for (var i = 0; i < n; i++)
            {
                var at = ((long)i * c + ch) * s;
                AffineCentered(px + at, py + at, s, center, (float)scale, (float)shift);
            }
        });
    }

    public void BatchNormForward(Tensor x, Tensor mean, Tensor rstd, Tensor? weight, Tensor? bias, Tensor y, bool relu = false)
    {
        if (x.DType != DType.Float32) throw Unsupported("batch_norm", x.DType);
        var (n, c, s) = NormLayout(x);
        if (n * c * s == 0) return;
        var px = x.Data<float>();
        var py = y.Data<float>();
        var pmean = mean.Data<float>();
        var prstd = rstd.Data<float>();
        var pw = weight is null ? null : weight.Data<float>();
        var pb = bias is null ? null : bias.Data<float>();
        CpuLoops.For((long)n * c, s, u =>
        {
            var ch = (int)(u % c);
            AffineCentered(px + u * s, py + u * s, s, pmean[ch], ChannelScale(prstd, pw, ch), pb is null ? 0 : pb[ch]);
            // the ReLU on the run while it is in cache, as UnaryOp.Relu computes it
            if (relu) TensorPrimitives.Max(new ReadOnlySpan<float>(py + u * s, s), 0f, new Span<float>(py + u * s, s));
        });
    }

    public void BatchNormScaleBackward(Tensor dy, Tensor? reluOutput, Tensor rstd, Tensor? weight, Tensor dx)
    {
        if (dy.DType != DType.Float32) throw Unsupported("batch_norm_scale_backward", dy.DType);
        var (n, c, s) = NormLayout(dy);
        if (n * c * s == 0) return;
        var pdy = dy.Data<float>();
        var py = reluOutput is null ? null : reluOutput.Data<float>();
        var prstd = rstd.Data<float>();
        var pw = weight is null ? null : weight.Data<float>();
        var pdx = dx.Data<float>();
        CpuLoops.For((long)n * c, py is null ? s : 2 * s, u =>
        {
            var ch = (int)(u % c);
            var scale = ChannelScale(prstd, pw, ch);
            var g = pdy + u * s;
            var d = pdx + u * s;
            if (py is null)
            {
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(g, s), scale, new Span<float>(d, s));
                return;
            }
            // the mask first, then one rounding of the product, as ReluBackward and Mul compute it in two passes
            var o = py + u * s;
            var i = 0;
            if (Vector.IsHardwareAccelerated)
            {
                var factor = new Vector<float>(scale);
                for (; i + Vector<float>.Count <= s; i += Vector<float>.Count)
                {
                    var passed = Vector.ConditionalSelect(Vector.GreaterThan(Vector.Load(o + i), Vector<float>.Zero), Vector.Load(g + i), Vector<float>.Zero);
                    Vector.Store(passed * factor, d + i);
                }
            }
            for (; i < s; i++) d[i] = (o[i] > 0 ? g[i] : 0f) * scale;
        });
    }

    public void BatchNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor? weight, bool training,
                                  Tensor? dx, Tensor? dweight, Tensor? dbias)
    {
        var (n, c, s) = NormLayout(x);
        if (n * c * s == 0)
        {
            dweight?.Backend.Fill(dweight, 0);
            dbias?.Backend.Fill(dbias, 0);
            return;
        }
        var pdy = dy.Data<float>();
        var px = x.Data<float>();
        var pmean = mean.Data<float>();
        var prstd = rstd.Data<float>();
        var pw = weight is null ? null : weight.Data<float>();
        var count = (long)n * s;
        var pdx = dx is null ? null : dx.Data<float>();
        var pdw = dweight is null ? null : dweight.Data<float>();
        var pdb = dbias is null ? null : dbias.Data<float>();
        var needSums = training || pdw != null || pdb != null;
        // One unit per channel: its sums, then its dx runs while the channel's dy and x (N·S floats each) are
        // still in cache.
        CpuLoops.For(c, ((needSums ? 2 : 0) + (pdx is null ? 0 : 3)) * count, ch =>
        {
            var center = pmean[ch];
            double r = prstd[ch];
            double s0 = 0, s1 = 0;   // Σ dy, Σ dy·x̂
            if (needSums)
            {
                (s0, var dot) = CenteredDot(pdy + ch * s, px + ch * s, s, n, (long)c * s, center);
                s1 = r * dot;
                if (pdb != null) pdb[ch] = (float)s0;
                if (pdw != null) pdw[ch] = (float)s1;
            }
            if (pdx is null) return;
            var a = r * (pw is null ? 1 : pw[ch]);
            // training: dx = a·(dy − s0/m − x̂·s1/m) = a·dy + (−a·r·s1/m)·(x − μ) + (−a·s0/m)
            var slope = training ? (float)(-a * r * s1 / count) : 0f;
            var offset = training ? (float)(-a * s0 / count) : 0f;
            for (var i = 0; i < n; i++)
            {
                var at = ((long)i * c + ch) * s;
                GradientRun(pdy + at, px + at, pdx + at, s, (float)a, center, slope, offset);
            }
        });
    }

    /// <summary>rstd[c]·w[c] (w absent: rstd[c]) rounded to float once, the evaluation-mode channel scale of the forward
    /// and of the input gradient; the product of two floats is exact in double.</summary>
    private static float ChannelScale(float* rstd, float* w, int ch) => (float)((double)rstd[ch] * (w is null ? 1 : w[ch]));

    /// <summary>(N, C, S) of a contiguous (N, C, *) tensor.</summary>
    private static (int N, int C, int S) NormLayout(Tensor x)
    {
        var s = 1;
        for (var d = 2; d < x.Rank; d++) s = checked(s * x.Size(d));
        return (x.Size(0), x.Size(1), s);
    }

    /// <summary>Mean and variance of <paramref name="runs"/> runs of <paramref name="length"/> floats, run k at
    /// p + k·stride, by the two passes described at the top of the file. Returns the float centre μf, the
    /// correction δ (μ = μf + δ) and, when <paramref name="eps"/> is given, 1/sqrt(σ² + eps), else σ².</summary>
    private static (float Center, double Delta, double Result) Moments(float* p, long length, int runs, long stride, double? eps)
    {
        double sum = 0;
        for (var k = 0; k < runs; k++) sum += BlockedSum(p + k * stride, length);
        var total = length * runs;
        var center = (float)(sum / total);
        Span<float> tmp = stackalloc float[StatBlock];
        double d = 0, q = 0;
        for (var k = 0; k < runs; k++)
            for (long i = 0; i < length; i += StatBlock)
            {
                var len = (int)Math.Min(StatBlock, length - i);
                var block = tmp[..len];
                TensorPrimitives.Subtract(new ReadOnlySpan<float>(p + k * stride + i, len), center, block);
                d += TensorPrimitives.Sum(block);
                q += TensorPrimitives.SumOfSquares(block);
            }
        var delta = d / total;
        var variance = Math.Max(q / total - delta * delta, 0);
        return (center, delta, eps is { } e ? 1 / Math.Sqrt(variance + e) : variance);
    }

    /// <summary>(Σ dy, Σ dy·(x − center)) over <paramref name="runs"/> runs of <paramref name="length"/> floats
    /// (run k of both at offset k·stride), float within blocks, double across.</summary>
    private static (double SumDy, double Dot) CenteredDot(float* dy, float* x, long length, int runs, long stride, float center)
    {
        Span<float> tmp = stackalloc float[StatBlock];
        double sum = 0, dot = 0;
        for (var k = 0; k < runs; k++)
            for (long i = 0; i < length; i += StatBlock)
            {
                var len = (int)Math.Min(StatBlock, length - i);
                var block = tmp[..len];
                var g = new ReadOnlySpan<float>(dy + k * stride + i, len);
                TensorPrimitives.Subtract(new ReadOnlySpan<float>(x + k * stride + i, len), center, block);
                sum += TensorPrimitives.Sum(g);
                dot += TensorPrimitives.Dot(g, block);
            }
        return (sum, dot);
    }

    private static double BlockedSum(float* p, long length)
    {
        double total = 0;
        for (long i = 0; i < length; i += StatBlock)
            total += TensorPrimitives.Sum(new ReadOnlySpan<float>(p + i, (int)Math.Min(StatBlock, length - i)));
        return total;
    }

    /// <summary>dst[c] = Σ_i partial[i·C + c] over the N rows, in order (no-op when dst is null).</summary>
    private static void WriteChannelSums(double[] partial, int n, int c, Tensor? dst)
    {
        if (dst is null) return;
        var pd = dst.Data<float>();
        for (var ch = 0; ch < c; ch++)
        {
            double total = 0;
            for (var i = 0; i < n; i++) total += partial[(long)i * c + ch];
            pd[ch] = (float)total;
        }
    }

    /// <summary>y = (x − center)·scale + shift over a run.</summary>
    private static void AffineCentered(float* x, float* y, long length, float center, float scale, float shift)
    {
        long i = 0;
        var width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && length >= width)
        {
            var (vc, vs, vb) = (new Vector<float>(center), new Vector<float>(scale), new Vector<float>(shift));
            for (; i <= length - width; i += width)
                Vector.Store((Vector.Load(x + i) - vc) * vs + vb, y + i);
        }
        for (; i < length; i++) y[i] = (x[i] - center) * scale + shift;
    }

    /// <summary>dx = a·dy + b·(x − center) + c over a run.</summary>
    private static void GradientRun(float* dy, float* x, float* dx, long length, float a, float center, float b, float c)
    {
        long i = 0;
        var width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && length >= width)
        {
            var (va, vcenter, vb, vc) = (new Vector<float>(a), new Vector<float>(center), new Vector<float>(b), new Vector<float>(c));
            for (; i <= length - width; i += width)
                Vector.Store(Vector.Load(dy + i) * va + (Vector.Load(x + i) - vcenter) * vb + vc, dx + i);
        }
        for (; i < length; i++) dx[i] = dy[i] * a + (x[i] - center) * b + c;
    }
}
