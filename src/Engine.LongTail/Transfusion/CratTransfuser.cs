// CRAT box transfusion (long-tail-methods.md section 3, code behaviour). Per training step, in the code's order:
// (1) the closed-form batch gradient of the L1 box loss, g_c[4f+k] = (1/N)·Σ_{n: y_n=c} sign(r_{n,c,k})·x_{n,f}, updates
// the diagonal Fisher bank F[c] ← (1 − a)F[c] + a·g_c² of every class present among the positives; (2) the weights
// w_{n,c} = u_c·softmax_{c ≠ y_n}(cos(q_n, F_c)/T) with the gate u_c = [Σ F_c ≠ 0] applied after the softmax, for the
// first-sample query of the code or the per-sample query of its commented-out loop (3.3); (3) the extra loss
// L = λ_b·Σ_n Σ_c w_{n,c}‖Δ_{n,c} − t_n‖₁ (not divided by N) whose gradient λ_b·w_{n,c}·sign(Δ_{n,c,k} − t_{n,k}) the
// backward adds to the incoming regressor gradient; w is a constant for backpropagation. A batch without positives
// skips the update and the extra loss (3.6). MaskTransfusionLoss adds the mask term of 3.4 for the same positives:
// λ_m·Σ_n Σ_c w_{n,c}·mean-pixel BCE(M_{n,c}, T_n) with the box-derived weights and no gate (code). The code's F_mask
// bank, updated but unused by the default `box` weights, is not kept. State: F (C, 4D), feature-major, coordinate-minor.
using Engine.Nn;

namespace Engine.LongTail;

/// <summary>Which query the similarity uses (3.3).</summary>
public enum CratQuery
{
    /// <summary>The first positive's signed per-sample gradient, shared by every positive of the batch (the code).</summary>
    FirstSample,
    /// <summary>Each positive's own squared gradient x_{n,f}²/N² (the commented-out loop).</summary>
    PerSample,
}

public sealed class CratTransfuser : IGradientTransfuser
{
    /// <summary>Fisher EMA rate a (3.5).</summary>
    public const double DefaultFisherRate = 0.01;

    /// <summary>Softmax temperature T of the box weights (3.5).</summary>
    public const double DefaultTemperature = 0.05;

    /// <summary>Box transfusion weight λ_b (3.5).</summary>
    public const double DefaultBoxWeight = 0.001;

    /// <summary>Mask transfusion weight λ_m (3.5).</summary>
    public const double DefaultMaskWeight = 0.01;

    private readonly Tensor _fisher;
    private double[]? _lastWeights;
    private double[]? _maskWeights;
    private bool _disposed;

    public CratTransfuser(int numClasses, int embeddingDim, CratQuery query = CratQuery.FirstSample,
                          double fisherRate = DefaultFisherRate, double temperature = DefaultTemperature, double boxWeight = DefaultBoxWeight,
                          double maskWeight = DefaultMaskWeight)
    {
        if (numClasses < 1) throw new ArgumentException($"CratTransfuser: C must be ≥ 1, got {numClasses}.");
        if (embeddingDim < 1) throw new ArgumentException($"CratTransfuser: embedding width D must be ≥ 1, got {embeddingDim}.");
        if (!(fisherRate > 0 && fisherRate <= 1)) throw new ArgumentException($"CratTransfuser: Fisher EMA rate must be in (0, 1], got {fisherRate}.");
        if (!(temperature > 0)) throw new ArgumentException($"CratTransfuser: temperature must be > 0, got {temperature}.");
        if (!(boxWeight >= 0)) throw new ArgumentException($"CratTransfuser: box transfusion weight λ_b must be ≥ 0, got {boxWeight}.");
        if (!(maskWeight >= 0)) throw new ArgumentException($"CratTransfuser: mask transfusion weight λ_m must be ≥ 0, got {maskWeight}.");
        (NumClasses, EmbeddingDim, Query, FisherRate, Temperature, BoxWeight, MaskWeight) = (numClasses, embeddingDim, query, fisherRate, temperature, boxWeight, maskWeight);
        using (DisposeScope.Suspend()) _fisher = Tensor.Zeros([numClasses, 4 * embeddingDim]);
    }

    public int NumClasses { get; }
    public int EmbeddingDim { get; }
    public CratQuery Query { get; }
    public double FisherRate { get; }
    public double Temperature { get; }
    public double BoxWeight { get; }
    public double MaskWeight { get; }

    /// <summary>A copy of the Fisher bank F_box (C, 4D).</summary>
    public Tensor Fisher()
    {
        using (GradMode.NoGrad()) return _fisher.Clone();
    }

    /// <summary>The gated weights u_c·w_{n,c} (R, C) of the last Transfuse call (zero rows for background RoIs), or
    /// null before the first call; the mask transfusion of 3.4 reuses them.</summary>
    public double[]? LastWeights => _lastWeights is null ? null : (double[])_lastWeights.Clone();

    /// <summary>The gated weights u_c·w_{n,c} (R, C) the current bank gives this batch, without updating the bank
    /// (Transfuse computes them after its update); zero rows for background RoIs.</summary>
    public Tensor Weights(Tensor boxDeltas, Tensor embeddings, Tensor targets, Tensor labels, int normalizer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Check(boxDeltas, embeddings, targets, labels, normalizer);
        using (GradMode.NoGrad())
        {
            var (delta, x, t, y) = (boxDeltas.ToFloatArray(), embeddings.ToFloatArray(), targets.ToFloatArray(), labels.ToInt64Array());
            var positives = Enumerable.Range(0, y.Length).Where(n => y[n] < NumClasses).ToArray();
            var weights = new double[y.Length * NumClasses];
            if (positives.Length > 0) ComputeWeights(_fisher.ToFloatArray(), x, delta, t, y, positives, normalizer, weights);
            return Tensor.FromDoubles(weights, [y.Length, NumClasses], DType.Float32, boxDeltas.Device);
        }
    }

    public GradientTransfusion Transfuse(Tensor boxDeltas, Tensor embeddings, Tensor targets, Tensor labels, int normalizer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Check(boxDeltas, embeddings, targets, labels, normalizer);
        int r = boxDeltas.Size(0), c = NumClasses, d = EmbeddingDim;
        float[] delta, x, t;
        long[] y;
        using (GradMode.NoGrad())
        {
            delta = boxDeltas.ToFloatArray();
            x = embeddings.ToFloatArray();
            t = targets.ToFloatArray();
            y = labels.ToInt64Array();
        }
        var positives = Enumerable.Range(0, r).Where(n => y[n] < c).ToArray();
        var weights = new double[r * c];
        double extraLoss = 0;
        float[]? extra = null;
        double[] maskWeights = [];
        if (positives.Length > 0)
        {
            var fisher = _fisher.ToFloatArray();
            UpdateFisher(fisher, x, delta, t, y, positives, normalizer);
            using (GradMode.NoGrad())
            using (var updated = Tensor.From<float>(fisher, [c, 4 * d], _fisher.Device))
                _fisher.CopyFrom(updated);
            _fisher.Storage.BumpVersion();
            maskWeights = new double[positives.Length * c];
            ComputeWeights(fisher, x, delta, t, y, positives, normalizer, weights, maskWeights);
            if (BoxWeight > 0) extra = ExtraGradient(weights, delta, t, positives, out extraLoss);
        }
        _lastWeights = weights;
        _maskWeights = maskWeights;

        Tensor output;
        using (GradMode.NoGrad()) output = boxDeltas.Clone();
        if (Engine.Autograd.Tape.IsNeededFor(boxDeltas))
        {
            if (extra is null)
                Engine.Autograd.Tape.RecordCustom(output, "crat_transfuse", [boxDeltas], _ => g => [g]);
            else
            {
                using var e = Tensor.From<float>(extra, [r, 4 * c], boxDeltas.Device);
                Engine.Autograd.Tape.RecordCustom(output, "crat_transfuse", [boxDeltas], saved =>
                {
                    var se = saved.Save(e);
                    return g => [g.Add(se)];
                });
            }
        }
        return new GradientTransfusion(output, extraLoss);
    }

    /// <summary>The mask transfusion loss of 3.4 for the positives of the last Transfuse call, in the same order:
    /// L = λ_m·Σ_n Σ_c w_{n,c}·mean_pixels BCE(M_{n,c}, T_n) with the box-derived weights w without the gate (code).
    /// Differentiable in the mask logits; 0 (no gradient) when the last batch had no positive or λ_m = 0.</summary>
    /// <param name="maskLogits">(P, C, H, W) float32 logits of every class's mask channel for the P positives.</param>
    /// <param name="maskTargets">(P, H, W) float32 binary targets.</param>
    public Tensor MaskTransfusionLoss(Tensor maskLogits, Tensor maskTargets)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_maskWeights is null)
            throw new InvalidOperationException("CratTransfuser.MaskTransfusionLoss: no weights yet; call Transfuse on the box regressor outputs of this batch first.");
        var c = NumClasses;
        var p = _maskWeights.Length / c;
        if (maskLogits.Rank != 4 || maskLogits.Size(0) != p || maskLogits.Size(1) != c || maskLogits.DType != DType.Float32)
            throw new ArgumentException($"CratTransfuser.MaskTransfusionLoss: mask logits must be float32 (P, C, H, W) with P = {p} positives of the last Transfuse call and C = {c}, got {maskLogits.DType.Name()} {ShapeUtil.Format(maskLogits.Shape)}.");
        var (h, w) = (maskLogits.Size(2), maskLogits.Size(3));
        if (maskTargets.Rank != 3 || maskTargets.Size(0) != p || maskTargets.Size(1) != h || maskTargets.Size(2) != w || maskTargets.DType != DType.Float32)
            throw new ArgumentException($"CratTransfuser.MaskTransfusionLoss: mask targets must be float32 (P, H, W) = ({p}, {h}, {w}), got {maskTargets.DType.Name()} {ShapeUtil.Format(maskTargets.Shape)}.");
        if (p == 0 || MaskWeight == 0 || h * w == 0)
            return Tensor.Zeros([], DType.Float32, maskLogits.Device);
        float[] m, t;
        using (GradMode.NoGrad()) (m, t) = (maskLogits.ToFloatArray(), maskTargets.ToFloatArray());
        var weights = _maskWeights;
        var hw = h * w;
        var scale = MaskWeight / hw;
        var partial = new double[p];
        Parallel.For(0, p, n =>
        {
            double s = 0;
            for (var j = 0; j < c; j++)
            {
                var wj = weights[n * c + j];
                if (wj == 0) continue;
                double l = 0;
                for (var i = 0; i < hw; i++)
                {
                    double z = m[(n * c + j) * hw + i];
                    // BCE(z, t) = softplus(z) − t·z (0.1), softplus written to stay finite for large |z|
                    l += Math.Max(z, 0) + Math.Log(1 + Math.Exp(-Math.Abs(z))) - t[n * hw + i] * z;
                }
                s += wj * l;
            }
            partial[n] = s;
        });
        Tensor loss;
        using (GradMode.NoGrad()) loss = Tensor.Full([], scale * partial.Sum(), DType.Float32, maskLogits.Device);
        if (Engine.Autograd.Tape.IsNeededFor(maskLogits))
        {
            var dims = maskLogits.ShapeArray();
            var device = maskLogits.Device;
            Engine.Autograd.Tape.RecordCustom(loss, "crat_mask_transfusion", [maskLogits, maskTargets], saved =>
            {
                var sm = saved.Save(maskLogits);
                var st = saved.Save(maskTargets);
                return g =>
                {
                    var up = g.Item() * scale;
                    var (z, tt) = (sm.ToFloatArray(), st.ToFloatArray());
                    var grad = new float[z.Length];
                    Parallel.For(0, p, n =>
                    {
                        for (var j = 0; j < c; j++)
                        {
                            var wj = weights[n * c + j] * up;
                            for (var i = 0; i < hw; i++)
                            {
                                var k = (n * c + j) * hw + i;
                                grad[k] = (float)(wj * (1 / (1 + Math.Exp(-(double)z[k])) - tt[n * hw + i]));
                            }
                        }
                    });
                    return [Tensor.From<float>(grad, dims, device), null];
                };
            });
        }
        return loss;
    }

    private void UpdateFisher(float[] fisher, float[] x, float[] delta, float[] t, long[] y, int[] positives, int normalizer)
    {
        int c = NumClasses, d = EmbeddingDim;
        var byClass = positives.GroupBy(n => (int)y[n]).ToArray();
        var a = FisherRate;
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

    private void ComputeWeights(float[] fisher, float[] x, float[] delta, float[] t, long[] y, int[] positives, int normalizer, double[] weights, double[]? ungated = null)
    {
        int c = NumClasses, d = EmbeddingDim;
        var normF = new double[c];
        var gate = new bool[c];
        // per class: ‖F_c‖, the gate, and Σ_k F_c[4f+k] (the per-sample query is constant over k)
        var collapsed = Query == CratQuery.PerSample ? new double[c * d] : null;
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
        if (Query == CratQuery.FirstSample)
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
                s[j] = dot / (nq * Math.Max(normF[j], 1e-12)) / Temperature;
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
                for (var i = 0; i < values.Length; i++) logits[i] = values[i] / Temperature;
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

    private float[] ExtraGradient(double[] weights, float[] delta, float[] t, int[] positives, out double loss)
    {
        var c = NumClasses;
        var r = delta.Length / (4 * c);
        var e = new float[r * 4 * c];
        var partial = new double[positives.Length];
        var lambda = BoxWeight;
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
                    e[n * 4 * c + 4 * j + k] = (float)(lambda * w * Math.Sign(res));
                }
            }
            partial[p] = s;
        });
        loss = lambda * partial.Sum();
        return e;
    }

    private void Check(Tensor boxDeltas, Tensor embeddings, Tensor targets, Tensor labels, int normalizer)
    {
        int c = NumClasses, d = EmbeddingDim;
        if (boxDeltas.Rank != 2 || boxDeltas.Size(1) != 4 * c || boxDeltas.DType != DType.Float32)
            throw new ArgumentException($"CratTransfuser.Transfuse: box deltas must be float32 (R, 4C) = (R, {4 * c}), got {boxDeltas.DType.Name()} {ShapeUtil.Format(boxDeltas.Shape)}; pass the class-specific regressor output.");
        var r = boxDeltas.Size(0);
        if (embeddings.Rank != 2 || embeddings.Size(0) != r || embeddings.Size(1) != d || embeddings.DType != DType.Float32)
            throw new ArgumentException($"CratTransfuser.Transfuse: embeddings must be float32 (R, D) = ({r}, {d}), got {embeddings.DType.Name()} {ShapeUtil.Format(embeddings.Shape)}.");
        if (targets.Rank != 2 || targets.Size(0) != r || targets.Size(1) != 4 || targets.DType != DType.Float32)
            throw new ArgumentException($"CratTransfuser.Transfuse: targets must be float32 (R, 4) = ({r}, 4), got {targets.DType.Name()} {ShapeUtil.Format(targets.Shape)}.");
        if (labels.Rank != 1 || labels.Size(0) != r || labels.DType != DType.Int64)
            throw new ArgumentException($"CratTransfuser.Transfuse: labels must be int64 (R) = ({r}), got {labels.DType.Name()} {ShapeUtil.Format(labels.Shape)}.");
        if (normalizer < Math.Max(r, 1))
            throw new ArgumentException($"CratTransfuser.Transfuse: normalizer N = {normalizer} must be ≥ max(R, 1) = {Math.Max(r, 1)}; pass the row count of the box loss.");
        foreach (var l in labels.ToInt64Array())
            if (l < 0 || l > c)
                throw new ArgumentException($"CratTransfuser.Transfuse: label {l} outside 0..{c} (C = {c} is background).");
    }

    public StateDict StateDict()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var dict = new StateDict();
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
            dict.Add("fisher_box", _fisher.Clone());
        return dict;
    }

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(state);
        (string, Tensor)[] targets = [("fisher_box", _fisher)];
        var errors = StateCheck.Problems(state, StateCheck.Of(targets));
        if (errors.Count > 0)
            throw new ArgumentException($"CratTransfuser.LoadStateDict: {string.Join("; ", errors)}; pass a state saved by a CratTransfuser with C = {NumClasses}, D = {EmbeddingDim}.");
        StateCheck.CopyInto(state, targets);
        _fisher.Storage.BumpVersion();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _fisher.Dispose();
    }
}
