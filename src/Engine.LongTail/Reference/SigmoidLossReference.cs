// The sigmoid-family losses in double, written from the formulas of long-tail-methods.md: BCE(t, y) =
// softplus(t) − y·t (section 0.1) summed with element weights and margins, and each method's weights as its
// section defines them (EQL 1.4, EQLv2 1.5, Federated 1.7, FCBL 4.2). Weights and margins are inputs of the
// loss (they are constants for back-propagation), so the gradient is checkable by finite differences.
namespace Engine.LongTail.Reference;

public static class SigmoidLossReference
{
    public static double Softplus(double t) => t > 0 ? t + Math.Log(1 + Math.Exp(-t)) : Math.Log(1 + Math.Exp(t));

    public static double Sigmoid(double t) => t >= 0 ? 1 / (1 + Math.Exp(-t)) : Math.Exp(t) / (1 + Math.Exp(t));

    public static double Bce(double t, double y) => Softplus(t) - y * t;

    /// <summary>y_ij = [j = label_i] for logits with k columns (a label ≥ k has no positive column).</summary>
    public static double[] Targets(long[] labels, int k)
    {
        var y = new double[labels.Length * k];
        for (var i = 0; i < labels.Length; i++)
            if (labels[i] < k) y[i * k + labels[i]] = 1;
        return y;
    }

    /// <summary>scale·Σ_ij w_ij·BCE(z_ij + δ_ij, y_ij) (margins may be null).</summary>
    public static double Loss(double[] z, double[] y, double[] w, double[]? margin, double scale)
    {
        double sum = 0;
        for (var e = 0; e < z.Length; e++) sum += w[e] * Bce(z[e] + (margin?[e] ?? 0), y[e]);
        return scale * sum;
    }

    /// <summary>∂Loss/∂z_ij = scale·w_ij·(σ(z_ij + δ_ij) − y_ij).</summary>
    public static double[] Gradient(double[] z, double[] y, double[] w, double[]? margin, double scale)
    {
        var g = new double[z.Length];
        for (var e = 0; e < z.Length; e++) g[e] = scale * w[e] * (Sigmoid(z[e] + (margin?[e] ?? 0)) - y[e]);
        return g;
    }

    /// <summary>EQL (1.4): w_ij = 1 − E_i·T_j·(1 − y_ij) over C columns.</summary>
    public static double[] EqlWeights(long[] labels, int c, bool[] tail)
    {
        var w = new double[labels.Length * c];
        for (var i = 0; i < labels.Length; i++)
        {
            var e = labels[i] < c ? 1 : 0;
            for (var j = 0; j < c; j++)
            {
                var yij = labels[i] == j ? 1 : 0;
                w[i * c + j] = 1 - e * (tail[j] ? 1 : 0) * (1 - yij);
            }
        }
        return w;
    }

    /// <summary>EQLv2 (1.5): q_j = 1/(1 + exp(−γ(r_j − μ))), p_j = 1 + α(1 − q_j) for j &lt; C; 1 for column C.</summary>
    public static (double[] P, double[] Q) Eqlv2ColumnWeights(double[] ratio, double gamma, double mu, double alpha)
    {
        var c = ratio.Length;
        var p = new double[c + 1];
        var q = new double[c + 1];
        for (var j = 0; j < c; j++)
        {
            q[j] = 1 / (1 + Math.Exp(-gamma * (ratio[j] - mu)));
            p[j] = 1 + alpha * (1 - q[j]);
        }
        p[c] = q[c] = 1;
        return (p, q);
    }

    /// <summary>w_ij = p_j when j = y_i else q_j, over C+1 columns.</summary>
    public static double[] Eqlv2Weights(long[] labels, double[] p, double[] q)
    {
        var k = p.Length;
        var w = new double[labels.Length * k];
        for (var i = 0; i < labels.Length; i++)
            for (var j = 0; j < k; j++) w[i * k + j] = labels[i] == j ? p[j] : q[j];
        return w;
    }

    /// <summary>EQLv2's batch statistics for foreground columns: (Σ over y_i = j, Σ over y_i ≠ j) of |σ(z_ij) − y_ij|·w_ij.</summary>
    public static (double[] Pos, double[] Neg) Eqlv2Statistics(double[] z, long[] labels, double[] w, int c)
    {
        var k = c + 1;
        var pos = new double[c];
        var neg = new double[c];
        for (var i = 0; i < labels.Length; i++)
            for (var j = 0; j < c; j++)
            {
                var yij = labels[i] == j ? 1.0 : 0.0;
                var g = Math.Abs(Sigmoid(z[i * k + j]) - yij) * w[i * k + j];
                if (yij == 1) pos[j] += g;
                else neg[j] += g;
            }
        return (pos, neg);
    }

    /// <summary>Federated (1.7): weight 1 on the columns of F, 0 elsewhere (the background column included).</summary>
    public static double[] FederatedWeights(int n, int c, IEnumerable<int> classSet)
    {
        var k = c + 1;
        var w = new double[n * k];
        foreach (var j in classSet)
            for (var i = 0; i < n; i++) w[i * k + j] = 1;
        return w;
    }

    /// <summary>FCBL's confusion estimate K[a][b] = A[a][b] / max(n_a, 1).</summary>
    public static double[] Confusion(double[] a, double[] counts)
    {
        var c = counts.Length;
        var k = new double[c * c];
        for (var r = 0; r < c; r++)
            for (var j = 0; j < c; j++) k[r * c + j] = a[r * c + j] / Math.Max(counts[r], 1);
        return k;
    }

    /// <summary>FCBL margins (4.2 step 1) over C+1 columns: δ_j = α·ln(max(K[y][j], 1e-3)/max(K[j][y], 1e-3)) on positive
    /// rows for j &lt; C, j ≠ y; 0 on the label, the background column and background rows.</summary>
    public static double[] FcblMargins(long[] labels, double[] confusion, int c, double alpha)
    {
        var k = c + 1;
        var d = new double[labels.Length * k];
        for (var i = 0; i < labels.Length; i++)
        {
            var y = labels[i];
            if (y >= c) continue;
            for (var j = 0; j < c; j++)
                if (j != y)
                    d[i * k + j] = alpha * Math.Log(Math.Max(confusion[y * c + j], 1e-3) / Math.Max(confusion[j * c + y], 1e-3));
        }
        return d;
    }

    /// <summary>FCBL's mask (4.2 step 2) from the raw logits: π_C = σ(z_C), π_j = σ(z_j)(1 − π_C); for a positive of
    /// class y, ω_j = 1 when j = C or π_j ≥ π_y or π_j ≥ τ, else 0; background rows ω = 1. With
    /// <paramref name="float32"/> the probabilities are rounded to float32 at each step, as the code (and the engine)
    /// evaluate them: saturated probabilities (σ = 1 beyond |z| ≈ 17) then tie as they do there.</summary>
    public static double[] FcblMask(double[] z, long[] labels, int c, double tau, bool float32 = false)
    {
        var k = c + 1;
        var w = new double[labels.Length * k];
        double R(double v) => float32 ? (float)v : v;
        for (var i = 0; i < labels.Length; i++)
        {
            var y = labels[i];
            var notBg = R(1 - R(Sigmoid(z[i * k + c])));
            for (var j = 0; j < k; j++)
            {
                if (y >= c || j == c) { w[i * k + j] = 1; continue; }
                var pij = R(R(Sigmoid(z[i * k + j])) * notBg);
                var piy = R(R(Sigmoid(z[i * k + y])) * notBg);
                w[i * k + j] = pij >= piy || pij >= R(tau) ? 1 : 0;
            }
        }
        return w;
    }

    /// <summary>FCBL's state update (4.2 step 4): A[y] += softmax over the C foreground logits, n[y] += 1, per positive.</summary>
    public static void FcblAccumulate(double[] z, long[] labels, int c, double[] a, double[] counts)
    {
        var k = c + 1;
        for (var i = 0; i < labels.Length; i++)
        {
            var y = labels[i];
            if (y >= c) continue;
            var max = double.NegativeInfinity;
            for (var j = 0; j < c; j++) max = Math.Max(max, z[i * k + j]);
            double sum = 0;
            for (var j = 0; j < c; j++) sum += Math.Exp(z[i * k + j] - max);
            for (var j = 0; j < c; j++) a[y * c + j] += Math.Exp(z[i * k + j] - max) / sum;
            counts[y] += 1;
        }
    }
}
