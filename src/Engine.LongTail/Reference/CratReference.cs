// CRAT in double (long-tail-methods.md section 3), written from the formulas: the base box loss
// L_box = (1/N)·Σ_{n∈P} ‖Δ_{n,y_n} − t_n‖₁ with Δ = W x + b (W is 4C × D, row 4c+k), its closed-form batch gradient
// block g_c[4f+k] = (1/N)·Σ_{n: y_n=c} sign(r_{n,c,k})·x_{n,f}, the Fisher EMA F[c] ← (1 − a)F[c] + a·g_c², the
// transfusion weights w (cosine similarity of a query with F, softmax over c ≠ y_n at temperature T, gate u after the
// softmax), the extra loss L_trans = λ_b·Σ_n Σ_c u_c w_{n,c}‖Δ_{n,c} − t_n‖₁ and its gradient with respect to Δ.
// Layouts: x (R, D), deltas (R, 4C) class-major, targets (R, 4), labels (R) with background = C, F (C, 4D).
namespace Engine.LongTail.Reference;

public static class CratReference
{
    /// <summary>Δ = x·Wᵀ + b: x (R, D), w (4C, D), b (4C) → (R, 4C).</summary>
    public static double[] Deltas(double[] x, double[] w, double[] b, int r, int d, int c)
    {
        var o = new double[r * 4 * c];
        for (var n = 0; n < r; n++)
            for (var j = 0; j < 4 * c; j++)
            {
                var s = b[j];
                for (var f = 0; f < d; f++) s += w[j * d + f] * x[n * d + f];
                o[n * 4 * c + j] = s;
            }
        return o;
    }

    /// <summary>L_box on deltas (R, 4C) with normalizer N.</summary>
    public static double BoxLoss(double[] deltas, double[] targets, long[] labels, int c, int normalizer)
    {
        double s = 0;
        for (var n = 0; n < labels.Length; n++)
        {
            if (labels[n] >= c) continue;
            for (var k = 0; k < 4; k++) s += Math.Abs(deltas[n * 4 * c + 4 * labels[n] + k] - targets[n * 4 + k]);
        }
        return s / normalizer;
    }

    /// <summary>∂L_box/∂Δ (R, 4C): sign(r)/N on the label's four columns of positive rows, 0 elsewhere.</summary>
    public static double[] BoxLossGradient(double[] deltas, double[] targets, long[] labels, int c, int normalizer)
    {
        var g = new double[deltas.Length];
        for (var n = 0; n < labels.Length; n++)
        {
            if (labels[n] >= c) continue;
            for (var k = 0; k < 4; k++)
            {
                var j = n * 4 * c + 4 * (int)labels[n] + k;
                g[j] = Math.Sign(deltas[j] - targets[n * 4 + k]) / (double)normalizer;
            }
        }
        return g;
    }

    /// <summary>Closed-form G = ∂L_box/∂W as per-class blocks (C, 4D), feature-major: g_c[4f+k].</summary>
    public static double[] BatchGradient(double[] x, double[] deltas, double[] targets, long[] labels, int d, int c, int normalizer)
    {
        var g = new double[c * 4 * d];
        for (var n = 0; n < labels.Length; n++)
        {
            if (labels[n] >= c) continue;
            var y = (int)labels[n];
            for (var k = 0; k < 4; k++)
            {
                var s = Math.Sign(deltas[n * 4 * c + 4 * y + k] - targets[n * 4 + k]);
                for (var f = 0; f < d; f++) g[y * 4 * d + 4 * f + k] += s * x[n * d + f] / normalizer;
            }
        }
        return g;
    }

    /// <summary>The Fisher EMA in place: every class with a positive gets F[c] ← (1 − a)F[c] + a·g_c².</summary>
    public static void FisherUpdate(double[] fisher, double[] x, double[] deltas, double[] targets, long[] labels, int d, int c, int normalizer, double a)
    {
        var g = BatchGradient(x, deltas, targets, labels, d, c, normalizer);
        foreach (var y in labels.Where(l => l < c).Distinct())
            for (var i = 0; i < 4 * d; i++)
                fisher[y * 4 * d + i] = (1 - a) * fisher[y * 4 * d + i] + a * g[y * 4 * d + i] * g[y * 4 * d + i];
    }

    /// <summary>The query of positive row n (4D): the first positive's signed gradient (first sample) or row n's own
    /// squared gradient x_{n,f}²/N² (per sample).</summary>
    public static double[] Query(CratQuery mode, int n, double[] x, double[] deltas, double[] targets, long[] labels, int d, int c, int normalizer)
    {
        var q = new double[4 * d];
        if (mode == CratQuery.PerSample)
        {
            for (var f = 0; f < d; f++)
                for (var k = 0; k < 4; k++) q[4 * f + k] = x[n * d + f] * x[n * d + f] / ((double)normalizer * normalizer);
            return q;
        }
        var first = Array.FindIndex(labels, l => l < c);
        var y = (int)labels[first];
        for (var f = 0; f < d; f++)
            for (var k = 0; k < 4; k++)
                q[4 * f + k] = Math.Sign(deltas[first * 4 * c + 4 * y + k] - targets[first * 4 + k]) * x[first * d + f] / normalizer;
        return q;
    }

    /// <summary>Weights (R, C): w_{n,c} = u_c·softmax_{c ≠ y_n}(cos(q_n, F_c)/T), w_{n,y_n} = 0; 0 on background rows.</summary>
    public static double[] Weights(CratQuery mode, double[] fisher, double[] x, double[] deltas, double[] targets, long[] labels,
                                   int d, int c, int normalizer, double temperature)
    {
        var r = labels.Length;
        var w = new double[r * c];
        var normF = new double[c];
        var gate = new double[c];
        for (var j = 0; j < c; j++)
        {
            double ss = 0, sum = 0;
            for (var i = 0; i < 4 * d; i++) { ss += fisher[j * 4 * d + i] * fisher[j * 4 * d + i]; sum += fisher[j * 4 * d + i]; }
            normF[j] = Math.Sqrt(ss);
            gate[j] = sum != 0 ? 1 : 0;
        }
        for (var n = 0; n < r; n++)
        {
            if (labels[n] >= c) continue;
            var q = Query(mode, n, x, deltas, targets, labels, d, c, normalizer);
            var normQ = Math.Sqrt(q.Sum(v => v * v));
            var logits = new double[c];
            for (var j = 0; j < c; j++)
            {
                double dot = 0;
                for (var i = 0; i < 4 * d; i++) dot += q[i] * fisher[j * 4 * d + i];
                logits[j] = dot / (Math.Max(normQ, 1e-12) * Math.Max(normF[j], 1e-12)) / temperature;
            }
            var y = (int)labels[n];
            var max = double.NegativeInfinity;
            for (var j = 0; j < c; j++) if (j != y) max = Math.Max(max, logits[j]);
            double z = 0;
            for (var j = 0; j < c; j++) if (j != y) z += Math.Exp(logits[j] - max);
            for (var j = 0; j < c; j++) w[n * c + j] = j == y ? 0 : gate[j] * Math.Exp(logits[j] - max) / z;
        }
        return w;
    }

    /// <summary>L_trans = λ_b·Σ_n Σ_c w_{n,c}‖Δ_{n,c} − t_n‖₁ for gated weights w (R, C).</summary>
    public static double TransfusionLoss(double[] weights, double[] deltas, double[] targets, long[] labels, int c, double lambda)
    {
        double s = 0;
        for (var n = 0; n < labels.Length; n++)
            for (var j = 0; j < c; j++)
                for (var k = 0; k < 4; k++) s += weights[n * c + j] * Math.Abs(deltas[n * 4 * c + 4 * j + k] - targets[n * 4 + k]);
        return lambda * s;
    }

    /// <summary>∂L_trans/∂Δ (R, 4C) with w held constant: λ_b·w_{n,c}·sign(Δ_{n,c,k} − t_{n,k}).</summary>
    public static double[] TransfusionGradient(double[] weights, double[] deltas, double[] targets, long[] labels, int c, double lambda)
    {
        var g = new double[deltas.Length];
        for (var n = 0; n < labels.Length; n++)
            for (var j = 0; j < c; j++)
                for (var k = 0; k < 4; k++)
                    g[n * 4 * c + 4 * j + k] = lambda * weights[n * c + j] * Math.Sign(deltas[n * 4 * c + 4 * j + k] - targets[n * 4 + k]);
        return g;
    }

    /// <summary>Ungated weights (P, C) of the positives in row order: softmax_{c ≠ y_n}(cos(q_n, F_c)/T), the mask term's w.</summary>
    public static double[] UngatedWeights(CratQuery mode, double[] fisher, double[] x, double[] deltas, double[] targets, long[] labels,
                                          int d, int c, int normalizer, double temperature)
    {
        // the gated weights with every gate open: F + a tiny constant would change cosines, so recompute directly
        var positives = Enumerable.Range(0, labels.Length).Where(n => labels[n] < c).ToArray();
        var w = new double[positives.Length * c];
        for (var p = 0; p < positives.Length; p++)
        {
            var n = positives[p];
            var q = Query(mode, n, x, deltas, targets, labels, d, c, normalizer);
            var normQ = Math.Sqrt(q.Sum(v => v * v));
            var logits = new double[c];
            for (var j = 0; j < c; j++)
            {
                double dot = 0, ff = 0;
                for (var i = 0; i < 4 * d; i++) { dot += q[i] * fisher[j * 4 * d + i]; ff += fisher[j * 4 * d + i] * fisher[j * 4 * d + i]; }
                logits[j] = dot / (Math.Max(normQ, 1e-12) * Math.Max(Math.Sqrt(ff), 1e-12)) / temperature;
            }
            var y = (int)labels[n];
            if (c == 1) continue;   // no other class to transfuse from: every weight stays 0
            var max = Enumerable.Range(0, c).Where(j => j != y).Max(j => logits[j]);
            var z = Enumerable.Range(0, c).Where(j => j != y).Sum(j => Math.Exp(logits[j] - max));
            for (var j = 0; j < c; j++) w[p * c + j] = j == y ? 0 : Math.Exp(logits[j] - max) / z;
        }
        return w;
    }

    /// <summary>L_mask = λ_m·Σ_n Σ_c w_{n,c}·(1/HW)·Σ_pix BCE(M_{n,c,pix}, T_{n,pix}): m (P, C, HW), t (P, HW), w (P, C).</summary>
    public static double MaskTransfusionLoss(double[] weights, double[] m, double[] t, int p, int c, int hw, double lambda)
    {
        double s = 0;
        for (var n = 0; n < p; n++)
            for (var j = 0; j < c; j++)
                for (var i = 0; i < hw; i++)
                {
                    var z = m[(n * c + j) * hw + i];
                    s += weights[n * c + j] * (Math.Log(1 + Math.Exp(z)) - t[n * hw + i] * z) / hw;
                }
        return lambda * s;
    }

    /// <summary>∂L_mask/∂M = λ_m·w_{n,c}·(σ(M) − T)/HW.</summary>
    public static double[] MaskTransfusionGradient(double[] weights, double[] m, double[] t, int p, int c, int hw, double lambda)
    {
        var g = new double[m.Length];
        for (var n = 0; n < p; n++)
            for (var j = 0; j < c; j++)
                for (var i = 0; i < hw; i++)
                {
                    var k = (n * c + j) * hw + i;
                    g[k] = lambda * weights[n * c + j] * (1 / (1 + Math.Exp(-m[k])) - t[n * hw + i]) / hw;
                }
        return g;
    }
}
