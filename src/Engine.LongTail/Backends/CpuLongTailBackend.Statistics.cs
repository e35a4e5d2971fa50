// CPU logit statistics for LogN (section 2.1): per-column batch mean and unbiased variance by two passes in
// double, fused with the running update (EMA, or Chan's exact merge), and `repo` mode's batch standardization
// (section 2.3) with its backward. Columns are split into blocks; a block walks all rows, so each column's sums
// are formed in row order whatever the thread count.
using System.Numerics.Tensors;

namespace Engine.LongTail;

public sealed unsafe partial class CpuLongTailBackend
{
    /// <summary>Columns per unit of work of the statistics kernels.</summary>
    private const int StatisticsColumnBlock = 128;

    /// <summary>Per column of x (n, k): mean and Σ (x − mean)² over rows, in double, for columns [from, to).</summary>
    private static void ColumnMoments(float* x, int n, int k, int from, int to, double[] mean, double[] squares)
    {
        var w = to - from;
        for (var j = 0; j < w; j++) mean[j] = squares[j] = 0;
        for (var i = 0; i < n; i++)
        {
            var row = x + (long)i * k + from;
            for (var j = 0; j < w; j++) mean[j] += row[j];
        }
        for (var j = 0; j < w; j++) mean[j] /= n;
        for (var i = 0; i < n; i++)
        {
            var row = x + (long)i * k + from;
            for (var j = 0; j < w; j++)
            {
                var d = row[j] - mean[j];
                squares[j] += d * d;
            }
        }
    }

    private static void ForEachColumnBlock(int n, int k, Action<int, int, double[], double[]> body)
    {
        var blocks = (k + StatisticsColumnBlock - 1) / StatisticsColumnBlock;
        void Run(int b)
        {
            var from = b * StatisticsColumnBlock;
            var to = Math.Min(k, from + StatisticsColumnBlock);
            body(from, to, new double[to - from], new double[to - from]);
        }
        if (blocks <= 1 || MaxThreads <= 1 || (long)n * k < ParallelThreshold)
        {
            for (var b = 0; b < blocks; b++) Run(b);
            return;
        }
        Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = MaxThreads }, Run);
    }

    public void UpdateRunningStatistics(Tensor logits, double momentum, Tensor mean, Tensor variance)
    {
        var (n, k) = (logits.Size(0), logits.Size(1));
        var x = logits.Data<float>();
        var mu = mean.Data<float>();
        var v = variance.Data<float>();
        ForEachColumnBlock(n, k, (from, to, a, ss) =>
        {
            ColumnMoments(x, n, k, from, to, a, ss);
            for (var j = from; j < to; j++)
            {
                var b = ss[j - from] / (n - 1);
                mu[j] = (float)((1 - momentum) * mu[j] + momentum * a[j - from]);
                v[j] = (float)((1 - momentum) * v[j] + momentum * b);
            }
        });
    }

    public void StandardizeLogits(Tensor logits, double eps, Tensor y, Tensor inverseSd, Tensor? mean, Tensor? variance, double momentum)
    {
        var (n, k) = (logits.Size(0), logits.Size(1));
        var x = logits.Data<float>();
        var py = y.Data<float>();
        var r = inverseSd.Data<float>();
        var mu = mean is null ? null : mean.Data<float>();
        var v = variance is null ? null : variance.Data<float>();
        ForEachColumnBlock(n, k, (from, to, a, ss) =>
        {
            ColumnMoments(x, n, k, from, to, a, ss);
            var w = to - from;
            var scale = new double[w];
            for (var j = 0; j < w; j++)
            {
                scale[j] = 1.0 / Math.Sqrt(ss[j] / n + eps);
                r[from + j] = (float)scale[j];
                if (mu is null) continue;
                mu[from + j] = (float)((1 - momentum) * mu[from + j] + momentum * a[j]);
                v![from + j] = (float)((1 - momentum) * v[from + j] + momentum * (ss[j] / (n - 1)));
            }
            for (var i = 0; i < n; i++)
            {
                var src = x + (long)i * k + from;
                var dst = py + (long)i * k + from;
                for (var j = 0; j < w; j++) dst[j] = (float)((src[j] - a[j]) * scale[j]);
            }
        });
    }

    public void StandardizeLogitsBackward(Tensor y, Tensor gradY, Tensor inverseSd, Tensor gradX)
    {
        var (n, k) = (y.Size(0), y.Size(1));
        var py = y.Data<float>();
        var pg = gradY.Data<float>();
        var r = inverseSd.Data<float>();
        var gx = gradX.Data<float>();
        ForEachColumnBlock(n, k, (from, to, sumG, sumGy) =>
        {
            var w = to - from;
            for (var i = 0; i < n; i++)
            {
                var yr = py + (long)i * k + from;
                var gr = pg + (long)i * k + from;
                for (var j = 0; j < w; j++)
                {
                    sumG[j] += gr[j];
                    sumGy[j] += (double)gr[j] * yr[j];
                }
            }
            for (var j = 0; j < w; j++)
            {
                sumG[j] /= n;
                sumGy[j] /= n;
            }
            for (var i = 0; i < n; i++)
            {
                var yr = py + (long)i * k + from;
                var gr = pg + (long)i * k + from;
                var dst = gx + (long)i * k + from;
                for (var j = 0; j < w; j++) dst[j] = (float)(r[from + j] * (gr[j] - sumG[j] - yr[j] * sumGy[j]));
            }
        });
    }

    public void MergeStatistics(Tensor logits, Tensor count, Tensor mean, Tensor m2)
    {
        var (n, k) = (logits.Size(0), logits.Size(1));
        if (n == 0) return;
        var x = logits.Data<float>();
        var pc = count.Data<long>();
        var na = (double)pc[0];
        var total = na + n;
        var mu = mean.Data<float>();
        var sq = m2.Data<float>();
        ForEachColumnBlock(n, k, (from, to, a, ss) =>
        {
            ColumnMoments(x, n, k, from, to, a, ss);
            for (var j = from; j < to; j++)
            {
                // Chan et al.: δ = mean_b − mean_a; mean += δ·n_b/n; M2 += M2_b + δ²·n_a·n_b/n
                var delta = a[j - from] - mu[j];
                mu[j] = (float)(mu[j] + delta * n / total);
                sq[j] = (float)(sq[j] + ss[j - from] + delta * delta * na * n / total);
            }
        });
        pc[0] += n;
    }

    public void Calibrate(Tensor logits, Tensor shift, Tensor sd, bool softmax, Tensor y)
    {
        var (n, k) = (logits.Size(0), logits.Size(1));
        var z = logits.Data<float>();
        var sh = shift.Data<float>();
        var s = sd.Data<float>();
        var py = y.Data<float>();
        ForEachChunk(n, 6L * k, (_, from, to) =>
        {
            for (var i = from; i < to; i++)
            {
                var row = new Span<float>(py + (long)i * k, k);
                TensorPrimitives.Subtract(new ReadOnlySpan<float>(z + (long)i * k, k), new ReadOnlySpan<float>(sh, k), row);
                TensorPrimitives.Divide(row, new ReadOnlySpan<float>(s, k), row);
                if (softmax) Softmax(row, row);
            }
        });
    }

    public void Scale(Tensor x, Tensor factor, Tensor y)
    {
        var f = factor.Data<float>()[0];
        var px = x.Data<float>();
        var py = y.Data<float>();
        var total = x.Numel;
        const int piece = 1 << 14;
        var pieces = (int)((total + piece - 1) / piece);
        ForEachChunk(pieces, piece, (_, from, to) =>
        {
            for (var p = from; p < to; p++)
            {
                var start = (long)p * piece;
                var len = (int)Math.Min(piece, total - start);
                var src = new ReadOnlySpan<float>(px + start, len);
                var dst = new Span<float>(py + start, len);
                if (f == 1f) src.CopyTo(dst);
                else TensorPrimitives.Multiply(src, f, dst);
            }
        });
    }
}
