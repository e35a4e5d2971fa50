// CRAT's box transfusion on the host (long-tail-methods.md section 3): the Fisher bank update, the gated mixing weights
// for either query and the transfused gradient with the per-positive extra loss, in double on host arrays. These static
// routines are the one CPU implementation: CpuLongTailBackend.CratTransfuse wraps them for tensors, and CratTransfuser
// calls them directly on the CPU so that its double weights and double extra loss are kept unrounded. Work is split by
// class or by positive row with every result written by one worker and sums merged in a fixed order, so the results do
// not depend on the thread count.
namespace Engine.LongTail;

public sealed unsafe partial class CpuLongTailBackend
{
    public void CratTransfuse(CratParameters parameters, Tensor boxDeltas, Tensor embeddings, Tensor targets, Tensor labels, int normalizer,
                              Tensor fisher, bool updateFisher, Tensor weights, Tensor? ungatedWeights, Tensor extraGradient, Tensor rowLoss)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var (c, lambda) = (parameters.NumClasses, parameters.BoxWeight);
        var y = labels.ToInt64Array();
        var r = y.Length;
        for (var n = 0; n < r; n++)
            if (y[n] < 0 || y[n] > c)
                throw new ArgumentException($"CratTransfuse: label {y[n]} at row {n} is outside 0..{c}; labels are class indices with the background " +
                                            "as the last class. Check the label mapping.");
        var positives = CratPositives(y, c);
        var w = new double[r * c];
        var ungated = ungatedWeights is null ? null : new double[positives.Length * c];
        var e = new float[r * 4 * c];
        var partial = new double[positives.Length];
        if (positives.Length > 0)
        {
            var (delta, x, t) = (boxDeltas.ToFloatArray(), embeddings.ToFloatArray(), targets.ToFloatArray());
            var bank = fisher.ToFloatArray();
            if (updateFisher)
            {
                CratUpdateFisher(parameters, bank, x, delta, t, y, positives, normalizer);
                bank.CopyTo(new Span<float>(fisher.Data<float>(), bank.Length));
            }
            CratWeights(parameters, bank, x, delta, t, y, positives, normalizer, w, ungated);
            CratExtraGradient(parameters, w, delta, t, positives, e, partial);
        }

        var pw = new Span<float>(weights.Data<float>(), r * c);
        for (var i = 0; i < pw.Length; i++) pw[i] = (float)w[i];
        e.CopyTo(new Span<float>(extraGradient.Data<float>(), e.Length));
        var loss = new Span<float>(rowLoss.Data<float>(), r);
        loss.Clear();
        for (var p = 0; p < positives.Length; p++) loss[positives[p]] = (float)(lambda * partial[p]);
        if (ungatedWeights is null) return;
        var pu = new Span<float>(ungatedWeights.Data<float>(), r * c);
        pu.Clear();
        for (var p = 0; p < positives.Length; p++)
            for (var j = 0; j < c; j++) pu[positives[p] * c + j] = (float)ungated![p * c + j];
    }

    /// <summary>The positive rows (label &lt; C) in row order.</summary>
    internal static int[] CratPositives(long[] labels, int numClasses) =>
        Enumerable.Range(0, labels.Length).Where(n => labels[n] < numClasses).ToArray();

    /// <summary>F[c] ← (1 − a)·F[c] + a·g_c² in place on the host bank (C·4D) for every class of <paramref name="positives"/>.</summary>
    internal static void CratUpdateFisher(CratParameters parameters, float[] fisher, float[] x, float[] delta, float[] t, long[] y, int[] positives, int normalizer)
    {
        int c = parameters.NumClasses, d = parameters.EmbeddingDim;
        var byClass = positives.GroupBy(n => (int)y[n]).ToArray();
        var a = parameters.FisherRate;
        Parallel.ForEach(byClass, group =>
        {
            var cls = group.Key;
            var g = new double[4 * d];
            foreach (var n in group)
                for (var k = 0; k < 4; k++)
                {
                    var s = Math.Sign(delta[n * 4 * c + 4 * cls + k] - t[n * 4 + k]);
                    if (s == 0) continue;
                    for (var f = 0; f < d; f++) g[4 * f + k] += s * (double)x[n * d + f];
                }
            var row = fisher.AsSpan(cls * 4 * d, 4 * d);
            for (var i = 0; i < row.Length; i++)
            {
                var gi = g[i] / normalizer;
                row[i] = (float)((1 - a) * row[i] + a * gi * gi);
            }
        });
    }

    /// <summary>The gated weights into <paramref name="weights"/> (R·C; only the positives' rows are written) and, when
    /// given, the ungated ones into <paramref name="ungated"/> (P·C, the positives in row order), from the host bank.</summary>
    internal static void CratWeights(CratParameters parameters, float[] fisher, float[] x, float[] delta, float[] t, long[] y, int[] positives, int normalizer,
                                     double[] weights, double[]? ungated = null)
    {
        int c = parameters.NumClasses, d = parameters.EmbeddingDim;
        var temperature = parameters.Temperature;
        var normF = new double[c];
        var gate = new bool[c];
        // per class: ‖F_c‖, the gate, and Σ_k F_c[4f+k] (the per-sample query is constant over k)
        var collapsed = parameters.Query == CratQuery.PerSample ? new double[c * d] : null;
        Parallel.For(0, c, j =>
        {
            double ss = 0, sum = 0;
            var row = fisher.AsSpan(j * 4 * d, 4 * d);
            for (var i = 0; i < row.Length; i++) { ss += (double)row[i] * row[i]; sum += row[i]; }
            normF[j] = Math.Sqrt(ss);
            gate[j] = sum != 0;
            if (collapsed is not null)
                for (var f = 0; f < d; f++) collapsed[j * d + f] = (double)row[4 * f] + row[4 * f + 1] + row[4 * f + 2] + row[4 * f + 3];
        });

        var logits = new double[positives.Length * c];
        if (parameters.Query == CratQuery.FirstSample)
        {
            var first = positives[0];
            var yf = (int)y[first];
            var q = new double[4 * d];
            for (var f = 0; f < d; f++)
                for (var k = 0; k < 4; k++)
                    q[4 * f + k] = Math.Sign(delta[first * 4 * c + 4 * yf + k] - t[first * 4 + k]) * (double)x[first * d + f] / normalizer;
            double nq = 0;
            foreach (var v in q) nq += v * v;
            nq = Math.Max(Math.Sqrt(nq), 1e-12);
            var s = new double[c];
            Parallel.For(0, c, j =>
            {
                double dot = 0;
                var row = fisher.AsSpan(j * 4 * d, 4 * d);
                for (var i = 0; i < row.Length; i++) dot += q[i] * row[i];
                s[j] = dot / (nq * Math.Max(normF[j], 1e-12)) / temperature;
            });
            for (var p = 0; p < positives.Length; p++) s.CopyTo(logits, p * c);
        }
        else
        {
            // cos(q_n, F_c) = a_n · b_c with a_n[f] = q_f / max(‖q_n‖, 1e-12) (‖q_n‖ = 2·sqrt(Σ_f q_f²), the query
            // repeats q_f over the four coordinates) and b_c[f] = Σ_k F_c[4f+k] / max(‖F_c‖, 1e-12): unit-scale float
            // operands of one (P, D) × (D, C) matmul instead of P·C·D double products
            var n2 = (double)normalizer * normalizer;
            var a = new float[positives.Length * d];
            Parallel.For(0, positives.Length, p =>
            {
                var n = positives[p];
                double q2 = 0;
                for (var f = 0; f < d; f++) { var v = (double)x[n * d + f]; var q = v * v / n2; q2 += q * q; }
                var nq = Math.Max(2 * Math.Sqrt(q2), 1e-12);
                for (var f = 0; f < d; f++) { var v = (double)x[n * d + f]; a[p * d + f] = (float)(v * v / n2 / nq); }
            });
            var b = new float[d * c];
            for (var j = 0; j < c; j++)
            {
                var nf = Math.Max(normF[j], 1e-12);
                for (var f = 0; f < d; f++) b[f * c + j] = (float)(collapsed![j * d + f] / nf);
            }
            using (GradMode.NoGrad())
            using (var at = Tensor.From<float>(a, [positives.Length, d]))
            using (var bt = Tensor.From<float>(b, [d, c]))
            using (var cos = at.Matmul(bt))
            {
                var values = cos.ToFloatArray();
                for (var i = 0; i < values.Length; i++) logits[i] = values[i] / temperature;
            }
        }

        Parallel.For(0, positives.Length, p =>
        {
            var n = positives[p];
            var yn = (int)y[n];
            var z = logits.AsSpan(p * c, c);
            var max = double.NegativeInfinity;
            for (var j = 0; j < c; j++) if (j != yn && z[j] > max) max = z[j];
            double sum = 0;
            for (var j = 0; j < c; j++) if (j != yn) sum += Math.Exp(z[j] - max);
            for (var j = 0; j < c; j++)
            {
                var v = j == yn ? 0 : Math.Exp(z[j] - max) / sum;
                weights[n * c + j] = gate[j] ? v : 0;
                if (ungated is not null) ungated[p * c + j] = v;
            }
        });
    }

    /// <summary>The transfused gradient λ_b·w_{n,c}·sign(r_{n,c,k}) into <paramref name="extra"/> (R·4C, zero on entry;
    /// only entries with w ≠ 0 are written) and Σ_c w_{n,c}·Σ_k |r_{n,c,k}| per positive into <paramref name="partial"/> (P),
    /// for the gated <paramref name="weights"/> (R·C). The extra loss is λ_b times the sum of partial in positive order.</summary>
    internal static void CratExtraGradient(CratParameters parameters, double[] weights, float[] delta, float[] t, int[] positives, float[] extra, double[] partial)
    {
        var c = parameters.NumClasses;
        var lambda = parameters.BoxWeight;
        Parallel.For(0, positives.Length, p =>
        {
            var n = positives[p];
            double s = 0;
            for (var j = 0; j < c; j++)
            {
                var w = weights[n * c + j];
                if (w == 0) continue;
                for (var k = 0; k < 4; k++)
                {
                    var res = (double)delta[n * 4 * c + 4 * j + k] - t[n * 4 + k];
                    s += w * Math.Abs(res);
                    extra[n * 4 * c + 4 * j + k] = (float)(lambda * w * Math.Sign(res));
                }
            }
            partial[p] = s;
        });
    }
}
