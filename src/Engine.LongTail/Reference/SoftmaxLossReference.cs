// The softmax-family losses in double, from the formulas of long-tail-methods.md: weighted softmax CE divided by N
// (1.1, 1.3), Seesaw with its explicit S_ij (1.6), the segmented softmax of BAGS with its Jacobian written out, and
// the BAGS loss and scores (6.2, 6.3). Quantities the methods detach (Seesaw's S, BAGS's ω) are inputs.
namespace Engine.LongTail.Reference;

public static class SoftmaxLossReference
{
    public static double[] LogSoftmax(double[] z, int offset, int length)
    {
        var max = double.NegativeInfinity;
        for (var j = 0; j < length; j++) max = Math.Max(max, z[offset + j]);
        double sum = 0;
        for (var j = 0; j < length; j++) sum += Math.Exp(z[offset + j] - max);
        var lse = max + Math.Log(sum);
        var r = new double[length];
        for (var j = 0; j < length; j++) r[j] = z[offset + j] - lse;
        return r;
    }

    /// <summary>(1/N)·Σ_i w_{y_i}·(−log softmax(z_i)[y_i]) over k columns (weights null = 1).</summary>
    public static double CrossEntropy(double[] z, long[] labels, int k, double[]? weight)
    {
        double sum = 0;
        for (var i = 0; i < labels.Length; i++)
            sum += (weight?[labels[i]] ?? 1) * -LogSoftmax(z, i * k, k)[labels[i]];
        return sum / Math.Max(labels.Length, 1);
    }

    /// <summary>w_{y_i}·(p_ij − [j = y_i]) / N.</summary>
    public static double[] CrossEntropyGradient(double[] z, long[] labels, int k, double[]? weight)
    {
        var g = new double[z.Length];
        var n = Math.Max(labels.Length, 1);
        for (var i = 0; i < labels.Length; i++)
        {
            var lp = LogSoftmax(z, i * k, k);
            var w = weight?[labels[i]] ?? 1;
            for (var j = 0; j < k; j++) g[i * k + j] = w * (Math.Exp(lp[j]) - (j == labels[i] ? 1 : 0)) / n;
        }
        return g;
    }

    // ---- Seesaw (1.6) ----

    /// <summary>S (N, C) of each positive row (rows of background RoIs are all 1): S_yj = M_yj·C_yj for j ≠ y, S_yy = 1,
    /// M_yj = (N_j/N_y)^p if N_j &lt; N_y else 1 (counts clamped to ≥ 1), C_yj = (s_j/max(s_y, eps))^q if that ratio &gt; 1 else 1.</summary>
    public static double[] SeesawFactors(double[] z, long[] labels, int c, long[] counts, double p, double q, double eps)
    {
        var k = c + 2;
        var s = new double[labels.Length * c];
        Array.Fill(s, 1.0);
        for (var i = 0; i < labels.Length; i++)
        {
            var y = labels[i];
            if (y >= c) continue;
            var lp = LogSoftmax(z, i * k, c);
            var ny = (double)Math.Max(counts[y], 1);
            var sy = Math.Max(Math.Exp(lp[y]), eps);
            for (var j = 0; j < c; j++)
            {
                if (j == y) continue;
                var nj = (double)Math.Max(counts[j], 1);
                var m = nj < ny ? Math.Pow(nj / ny, p) : 1;
                var ratio = Math.Exp(lp[j]) / sy;
                var comp = ratio > 1 ? Math.Pow(ratio, q) : 1;
                s[i * c + j] = m * comp;
            }
        }
        return s;
    }

    /// <summary>(1/N)·[Σ_{i∈P} −log(e^{u_y}/(e^{u_y} + Σ_{j≠y} S_yj e^{u_j})) + Σ_i CE(o_i, fg if y_i &lt; C else bg)].</summary>
    public static double Seesaw(double[] z, long[] labels, int c, double[] factors)
    {
        var k = c + 2;
        double sum = 0;
        for (var i = 0; i < labels.Length; i++)
        {
            var y = labels[i];
            if (y < c)
            {
                var max = double.NegativeInfinity;
                for (var j = 0; j < c; j++) max = Math.Max(max, z[i * k + j]);
                double denominator = 0;
                for (var j = 0; j < c; j++) denominator += factors[i * c + j] * Math.Exp(z[i * k + j] - max);
                sum += -(z[i * k + y] - max - Math.Log(denominator));
            }
            var o = LogSoftmax(z, i * k + c, 2);
            sum += y < c ? -o[0] : -o[1];
        }
        return sum / Math.Max(labels.Length, 1);
    }

    /// <summary>The gradient with S held constant: ∂/∂u_j = S_yj e^{u_j}/Z / N (j ≠ y), (e^{u_y}/Z − 1)/N, and the objectness CE's.</summary>
    public static double[] SeesawGradient(double[] z, long[] labels, int c, double[] factors)
    {
        var k = c + 2;
        var n = Math.Max(labels.Length, 1);
        var g = new double[z.Length];
        for (var i = 0; i < labels.Length; i++)
        {
            var y = labels[i];
            if (y < c)
            {
                var max = double.NegativeInfinity;
                for (var j = 0; j < c; j++) max = Math.Max(max, z[i * k + j]);
                double zsum = 0;
                for (var j = 0; j < c; j++) zsum += factors[i * c + j] * Math.Exp(z[i * k + j] - max);
                for (var j = 0; j < c; j++)
                    g[i * k + j] = (factors[i * c + j] * Math.Exp(z[i * k + j] - max) / zsum - (j == y ? 1 : 0)) / n;
            }
            var o = LogSoftmax(z, i * k + c, 2);
            g[i * k + c] = (Math.Exp(o[0]) - (y < c ? 1 : 0)) / n;
            g[i * k + c + 1] = (Math.Exp(o[1]) - (y < c ? 0 : 1)) / n;
        }
        return g;
    }

    // ---- group softmax and BAGS (section 6) ----

    /// <summary>Softmax (or log-softmax) within each group [offsets[g], offsets[g+1]) of every row of x (n, k).</summary>
    public static double[] GroupSoftmax(double[] x, int n, int k, long[] offsets, bool log)
    {
        var y = new double[x.Length];
        for (var i = 0; i < n; i++)
            for (var g = 0; g + 1 < offsets.Length; g++)
            {
                var (a, len) = ((int)offsets[g], (int)(offsets[g + 1] - offsets[g]));
                var lp = LogSoftmax(x, i * k + a, len);
                for (var j = 0; j < len; j++) y[i * k + a + j] = log ? lp[j] : Math.Exp(lp[j]);
            }
        return y;
    }

    /// <summary>VJP of GroupSoftmax through its Jacobian: within a group ∂p_a/∂x_b = p_a([a = b] − p_b) (softmax) and
    /// ∂log p_a/∂x_b = [a = b] − p_b (log-softmax); zero across groups.</summary>
    public static double[] GroupSoftmaxBackward(double[] x, int n, int k, long[] offsets, bool log, double[] gradY)
    {
        var gx = new double[x.Length];
        for (var i = 0; i < n; i++)
            for (var g = 0; g + 1 < offsets.Length; g++)
            {
                var (a0, len) = ((int)offsets[g], (int)(offsets[g + 1] - offsets[g]));
                var lp = LogSoftmax(x, i * k + a0, len);
                for (var b = 0; b < len; b++)
                {
                    double s = 0;
                    for (var a = 0; a < len; a++)
                    {
                        var pb = Math.Exp(lp[b]);
                        var jac = log ? (a == b ? 1 : 0) - pb : Math.Exp(lp[a]) * ((a == b ? 1 : 0) - pb);
                        s += gradY[i * k + a0 + a] * jac;
                    }
                    gx[i * k + a0 + b] = s;
                }
            }
        return gx;
    }

    /// <summary>The group label columns (6.1) of each row and group: G0 background → column 0, foreground → 1; in Gk a class
    /// of Gk → its column, every other label → the group's "others" column offsets[k].</summary>
    public static long[] GroupColumns(long[] labels, int c, int[] groupOf, int[] columnOf, long[] offsets)
    {
        var groups = offsets.Length - 1;
        var cols = new long[labels.Length * groups];
        for (var i = 0; i < labels.Length; i++)
        {
            var y = labels[i];
            cols[i * groups] = y < c ? 1 : 0;
            for (var kk = 1; kk < groups; kk++)
                cols[i * groups + kk] = y < c && groupOf[y] == kk ? columnOf[y] : offsets[kk];
        }
        return cols;
    }

    /// <summary>L = Σ_k Σ_i ω_ik·(−log q^k_i[y_ik]) / max(Σ_i ω_ik, 1), with ω (n, G) 0/1.</summary>
    public static double GroupSoftmaxLoss(double[] z, int n, int k, long[] offsets, long[] columns, double[] omega)
    {
        var groups = offsets.Length - 1;
        var logq = GroupSoftmax(z, n, k, offsets, log: true);
        double total = 0;
        for (var g = 0; g < groups; g++)
        {
            double count = 0, sum = 0;
            for (var i = 0; i < n; i++)
            {
                count += omega[i * groups + g];
                sum += omega[i * groups + g] * -logq[i * k + columns[i * groups + g]];
            }
            total += sum / Math.Max(count, 1);
        }
        return total;
    }

    public static double[] GroupSoftmaxLossGradient(double[] z, int n, int k, long[] offsets, long[] columns, double[] omega)
    {
        var groups = offsets.Length - 1;
        var gradLogq = new double[z.Length];
        for (var g = 0; g < groups; g++)
        {
            double count = 0;
            for (var i = 0; i < n; i++) count += omega[i * groups + g];
            for (var i = 0; i < n; i++) gradLogq[i * k + columns[i * groups + g]] -= omega[i * groups + g] / Math.Max(count, 1);
        }
        return GroupSoftmaxBackward(z, n, k, offsets, log: true, gradLogq);
    }

    /// <summary>BAGS scores (6.3), (n, C+1): q^k_pos(c)·q^0_fg for class c, background q^0_bg.</summary>
    public static double[] GroupSoftmaxScores(double[] z, int n, int k, long[] offsets, int c, int[] columnOf)
    {
        var q = GroupSoftmax(z, n, k, offsets, log: false);
        var s = new double[n * (c + 1)];
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < c; j++) s[i * (c + 1) + j] = q[i * k + columnOf[j]] * q[i * k + 1];
            s[i * (c + 1) + c] = q[i * k];
        }
        return s;
    }
}
