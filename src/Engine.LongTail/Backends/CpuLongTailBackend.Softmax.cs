// CPU softmax-family long-tail kernels: Seesaw (class CE on seesaw-shifted logits plus objectness CE, one
// pass per row) and the segmented (group) softmax of BAGS with its backward. All are max-subtracted, so
// finite for any finite logits.
using System.Numerics.Tensors;

namespace Engine.LongTail;

public sealed unsafe partial class CpuLongTailBackend
{
    public void SoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor weight, double scale, Tensor rowLoss, Tensor gradLogits)
    {
        var (n, k) = (logits.Size(0), logits.Size(1));
        var z = logits.Data<float>();
        var y = labels.Data<long>();
        CheckLabels("SoftmaxCrossEntropy", y, n, k - 1);
        var w = weight.Data<float>();
        var loss = rowLoss.Data<float>();
        var grad = gradLogits.Data<float>();
        ForEachChunk(n, 4L * k, (_, from, to) =>
        {
            for (var i = from; i < to; i++)
            {
                var label = (int)y[i];
                var g = new Span<float>(grad + (long)i * k, k);
                LogSoftmax(new ReadOnlySpan<float>(z + (long)i * k, k), g);
                var wy = w[label];
                loss[i] = -wy * g[label];
                TensorPrimitives.Exp(g, g);
                g[label] -= 1f;
                TensorPrimitives.Multiply(g, (float)(scale * wy), g);
            }
        });
    }

    public void Seesaw(Tensor logits, Tensor labels, Tensor counts, double p, double q, double eps, double scale, Tensor rowLoss, Tensor gradLogits)
    {
        var (n, k) = (logits.Size(0), logits.Size(1));
        var c = k - 2;
        var z = logits.Data<float>();
        var y = labels.Data<long>();
        CheckLabels("Seesaw", y, n, c);
        var cnt = counts.Data<long>();
        var loss = rowLoss.Data<float>();
        var grad = gradLogits.Data<float>();
        var s = (float)scale;
        // ln N_j with counts clamped to ≥ 1 (mitigation is computed in log space: ln M = p·(ln N_j − ln N_i) when N_j < N_i)
        var logCount = new float[c];
        for (var j = 0; j < c; j++) logCount[j] = (float)Math.Log(Math.Max(cnt[j], 1L));
        var (pf, qf) = ((float)p, (float)q);
        var logEps = (float)Math.Log(eps);

        ForEachChunk(n, 10L * k, (_, from, to) =>
        {
            var logS = Rent(c);
            var shift = Rent(c);
            var logSRow = logS.AsSpan(0, c);
            var shiftRow = shift.AsSpan(0, c);
            for (var i = from; i < to; i++)
            {
                var u = new ReadOnlySpan<float>(z + (long)i * k, c);
                var g = new Span<float>(grad + (long)i * k, k);
                var gu = g[..c];
                var label = (int)y[i];
                var positive = label < c;
                float rl = 0;
                if (positive)
                {
                    LogSoftmax(u, logSRow);
                    // ln S_yj = p·min(ln N_j − ln N_y, 0) + q·max(ln s_j − ln max(s_y, eps), 0) for j ≠ y; ln S_yy = 0
                    TensorPrimitives.Subtract(logCount, logCount[label], shiftRow);
                    TensorPrimitives.Min(shiftRow, 0f, shiftRow);
                    TensorPrimitives.Multiply(shiftRow, pf, shiftRow);
                    TensorPrimitives.Subtract(logSRow, MathF.Max(logSRow[label], logEps), logSRow);
                    TensorPrimitives.Max(logSRow, 0f, logSRow);
                    TensorPrimitives.MultiplyAdd(logSRow, qf, shiftRow, shiftRow);
                    shiftRow[label] = 0;
                    // CE of the shifted logits: softmax(u + ln S) − onehot
                    TensorPrimitives.Add(u, shiftRow, shiftRow);
                    LogSoftmax(shiftRow, logSRow);
                    rl = -logSRow[label];
                    TensorPrimitives.Exp(logSRow, gu);
                    gu[label] -= 1f;
                    TensorPrimitives.Multiply(gu, s, gu);
                }
                else gu.Clear();

                // objectness: target index 0 (fg) for positives, 1 (bg) for background rows
                var (ofg, obg) = (z[(long)i * k + c], z[(long)i * k + c + 1]);
                var m = MathF.Max(ofg, obg);
                var lse = m + MathF.Log(MathF.Exp(ofg - m) + MathF.Exp(obg - m));
                var (lpFg, lpBg) = (ofg - lse, obg - lse);
                rl += positive ? -lpFg : -lpBg;
                g[c] = s * (MathF.Exp(lpFg) - (positive ? 1f : 0f));
                g[c + 1] = s * (MathF.Exp(lpBg) - (positive ? 0f : 1f));
                loss[i] = rl;
            }
            Return(logS);
            Return(shift);
        });
    }

    /// <summary>y = x − max − log Σ exp(x − max) (y may not alias x).</summary>
    private static void LogSoftmax(ReadOnlySpan<float> x, Span<float> y)
    {
        var max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, y);
        TensorPrimitives.Exp(y, y);
        var lse = max + MathF.Log(TensorPrimitives.Sum(y));
        TensorPrimitives.Subtract(x, lse, y);
    }

    /// <summary>y = exp(x − max) / Σ exp(x − max) (y may alias x). Not TensorPrimitives.SoftMax: it does not subtract
    /// the maximum, so a logit above 88.7 overflows exp and the row becomes NaN (calibrated LogN logits of a class
    /// with a tiny running variance reach 1e6; FCBL's confusion update sees raw logits).</summary>
    private static void Softmax(ReadOnlySpan<float> x, Span<float> y)
    {
        TensorPrimitives.Subtract(x, TensorPrimitives.Max(x), y);
        TensorPrimitives.Exp(y, y);
        TensorPrimitives.Divide(y, TensorPrimitives.Sum(y), y);
    }

    public void GroupSoftmax(Tensor x, Tensor offsets, bool log, Tensor y)
    {
        var (n, k) = (x.Size(0), x.Size(1));
        var off = offsets.ToArray<long>();
        var px = x.Data<float>();
        var py = y.Data<float>();
        ForEachChunk(n, 4L * k, (_, from, to) =>
        {
            for (var i = from; i < to; i++)
                for (var gi = 0; gi + 1 < off.Length; gi++)
                {
                    var (a, len) = ((long)i * k + off[gi], (int)(off[gi + 1] - off[gi]));
                    var xs = new ReadOnlySpan<float>(px + a, len);
                    var ys = new Span<float>(py + a, len);
                    if (log) LogSoftmax(xs, ys);
                    else Softmax(xs, ys);
                }
        });
    }

    public void GroupSoftmaxBackward(Tensor y, Tensor gradY, Tensor offsets, bool log, Tensor gradX)
    {
        var (n, k) = (y.Size(0), y.Size(1));
        var off = offsets.ToArray<long>();
        var py = y.Data<float>();
        var pg = gradY.Data<float>();
        var px = gradX.Data<float>();
        ForEachChunk(n, 4L * k, (_, from, to) =>
        {
            for (var i = from; i < to; i++)
                for (var gi = 0; gi + 1 < off.Length; gi++)
                {
                    var (a, len) = ((long)i * k + off[gi], (int)(off[gi + 1] - off[gi]));
                    var ys = new ReadOnlySpan<float>(py + a, len);
                    var gs = new ReadOnlySpan<float>(pg + a, len);
                    var dx = new Span<float>(px + a, len);
                    if (log)
                    {
                        // gx = g − exp(y)·Σ g
                        var sum = TensorPrimitives.Sum(gs);
                        TensorPrimitives.Exp(ys, dx);
                        TensorPrimitives.MultiplyAdd(dx, -sum, gs, dx);
                    }
                    else
                    {
                        // gx = y·(g − Σ g·y)
                        var dot = TensorPrimitives.Dot(gs, ys);
                        TensorPrimitives.Subtract(gs, dot, dx);
                        TensorPrimitives.Multiply(dx, ys, dx);
                    }
                }
        });
    }
}
