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
//
// Devices: on the CPU the step runs on host arrays through CpuLongTailBackend's shared CRAT routines, keeping the
// weights and the extra loss in double. On another device it is one ILongTailBackend.CratTransfuse call on that device
// and everything stays there: the bank moves to the inputs' device at the first call, the weights (R, C), the ungated
// mask weights and the extra gradient are device tensors (float32), and LastWeights / MaskTransfusionLoss download them
// only when asked. Host synchronizations of the device path: one per Transfuse, the read of the R row losses whose sum
// (in double, row order) is GradientTransfusion.ExtraLoss (the detector logs it as a host scalar), skipped when λ_b = 0;
// a label outside 0..C is raised there (or at the next wait) by the device backend instead of being scanned on the host.
// LastWeights and MaskTransfusionLoss each read the device results once per batch when called.
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

    private Tensor _fisher;
    private double[]? _lastWeights;
    private double[]? _maskWeights;
    // the device path's results of the last Transfuse, read to the host only when asked for
    private Tensor? _deviceWeights, _deviceUngated, _deviceLabels;
    private bool _disposed;

    public CratTransfuser(int numClasses, int embeddingDim, CratQuery query = CratQuery.FirstSample,
                          double fisherRate = DefaultFisherRate, double temperature = DefaultTemperature, double boxWeight = DefaultBoxWeight,
                          double maskWeight = DefaultMaskWeight)
    {
        // CratParameters checks C, D, a, T and λ_b; only λ_m is the transfuser's own.
        Parameters = new CratParameters(numClasses, embeddingDim, query, fisherRate, temperature, boxWeight);
        if (!(maskWeight >= 0)) throw new ArgumentException($"CratTransfuser: mask transfusion weight λ_m must be ≥ 0, got {maskWeight}.");
        MaskWeight = maskWeight;
        using (DisposeScope.Suspend()) _fisher = Tensor.Zeros([numClasses, 4 * embeddingDim]);
    }

    /// <summary>C, D, the query and a, T, λ_b as the backends take them.</summary>
    public CratParameters Parameters { get; }

    public int NumClasses => Parameters.NumClasses;
    public int EmbeddingDim => Parameters.EmbeddingDim;
    public CratQuery Query => Parameters.Query;
    public double FisherRate => Parameters.FisherRate;
    public double Temperature => Parameters.Temperature;
    public double BoxWeight => Parameters.BoxWeight;
    public double MaskWeight { get; }

    /// <summary>A copy of the Fisher bank F_box (C, 4D) on the bank's device: the CPU until a step on another device
    /// moves the bank there (a later CPU step works on it where it is).</summary>
    public Tensor Fisher()
    {
        using (GradMode.NoGrad()) return _fisher.Clone();
    }

    /// <summary>The gated weights u_c·w_{n,c} (R, C) of the last Transfuse call (zero rows for background RoIs), or
    /// null before the first call; the mask transfusion of 3.4 reuses them. After a step on another device than the
    /// CPU these are its float32 weights, read from the device at the first request (a host wait).</summary>
    public double[]? LastWeights
    {
        get
        {
            if (_lastWeights is null && _deviceWeights is not null)
                using (GradMode.NoGrad()) _lastWeights = _deviceWeights.ToDoubleArray();
            return _lastWeights is null ? null : (double[])_lastWeights.Clone();
        }
    }

    /// <summary>The ungated weights (P, C) of the last step's positives in row order, read from the device at the first
    /// request after a device step; null before the first step.</summary>
    private double[]? MaskWeights()
    {
        if (_maskWeights is not null || _deviceUngated is null) return _maskWeights;
        using (GradMode.NoGrad())
        {
            var (ungated, labels) = (_deviceUngated.ToFloatArray(), _deviceLabels!.ToInt64Array());
            var c = NumClasses;
            var positives = CpuLongTailBackend.CratPositives(labels, c);
            var weights = new double[positives.Length * c];
            for (var p = 0; p < positives.Length; p++)
                for (var j = 0; j < c; j++) weights[p * c + j] = ungated[positives[p] * c + j];
            return _maskWeights = weights;
        }
    }

    /// <summary>Keeps the results of a step: host arrays (CPU path) or device tensors (the others), dropping the previous ones.</summary>
    private void KeepResults(double[]? weights, double[]? maskWeights, Tensor? deviceWeights, Tensor? deviceUngated, Tensor? deviceLabels)
    {
        _deviceWeights?.Dispose();
        _deviceUngated?.Dispose();
        _deviceLabels?.Dispose();
        (_lastWeights, _maskWeights, _deviceWeights, _deviceUngated, _deviceLabels) = (weights, maskWeights, deviceWeights, deviceUngated, deviceLabels);
    }

    /// <summary>Moves the bank to <paramref name="device"/> (once: later steps find it there).</summary>
    private void BankOn(Device device)
    {
        if (_fisher.Device == device) return;
        Tensor moved;
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
            moved = _fisher.To(device);
        _fisher.Dispose();
        _fisher = moved;
    }

    /// <summary>The gated weights u_c·w_{n,c} (R, C) the current bank gives this batch, without updating the bank
    /// (Transfuse computes them after its update); zero rows for background RoIs.</summary>
    public Tensor Weights(Tensor boxDeltas, Tensor embeddings, Tensor targets, Tensor labels, int normalizer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var onHost = boxDeltas.Device.Kind == DeviceKind.Cpu;
        Check(boxDeltas, embeddings, targets, labels, normalizer, onHost);
        using (GradMode.NoGrad())
        {
            if (!onHost)
            {
                var device = boxDeltas.Device;
                var r = boxDeltas.Size(0);
                var result = Tensor.Empty([r, NumClasses], DType.Float32, device);
                try
                {
                    using (DisposeScope.Suspend())
                    {
                        BankOn(device);
                        using var d = LongTailOps.Raw(boxDeltas);
                        using var x = LongTailOps.Raw(embeddings);
                        using var t = LongTailOps.Raw(targets);
                        using var y = LongTailOps.Raw(labels);
                        using var extra = Tensor.Empty([r, 4 * NumClasses], DType.Float32, device);
                        using var rowLoss = Tensor.Empty([r], DType.Float32, device);
                        LongTailBackends.For(device).CratTransfuse(Parameters, d, x, t, y, normalizer, _fisher, updateFisher: false, result, null, extra, rowLoss);
                    }
                    return result;
                }
                catch
                {
                    result.Dispose();
                    throw;
                }
            }
            var (delta, xs, ts, ys) = (boxDeltas.ToFloatArray(), embeddings.ToFloatArray(), targets.ToFloatArray(), labels.ToInt64Array());
            var positives = CpuLongTailBackend.CratPositives(ys, NumClasses);
            var weights = new double[ys.Length * NumClasses];
            if (positives.Length > 0) CpuLongTailBackend.CratWeights(Parameters, _fisher.ToFloatArray(), xs, delta, ts, ys, positives, normalizer, weights);
            return Tensor.FromDoubles(weights, [ys.Length, NumClasses], DType.Float32, boxDeltas.Device);
        }
    }

    public GradientTransfusion Transfuse(Tensor boxDeltas, Tensor embeddings, Tensor targets, Tensor labels, int normalizer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var onHost = boxDeltas.Device.Kind == DeviceKind.Cpu;
        Check(boxDeltas, embeddings, targets, labels, normalizer, onHost);
        if (!onHost) return TransfuseOnDevice(boxDeltas, embeddings, targets, labels, normalizer);
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
        var positives = CpuLongTailBackend.CratPositives(y, c);
        var weights = new double[r * c];
        double extraLoss = 0;
        float[]? extra = null;
        double[] maskWeights = [];
        if (positives.Length > 0)
        {
            var fisher = _fisher.ToFloatArray();
            CpuLongTailBackend.CratUpdateFisher(Parameters, fisher, x, delta, t, y, positives, normalizer);
            using (GradMode.NoGrad())
            using (var updated = Tensor.From<float>(fisher, [c, 4 * d], _fisher.Device))
                _fisher.CopyFrom(updated);
            _fisher.Storage.BumpVersion();
            maskWeights = new double[positives.Length * c];
            CpuLongTailBackend.CratWeights(Parameters, fisher, x, delta, t, y, positives, normalizer, weights, maskWeights);
            if (BoxWeight > 0)
            {
                extra = new float[r * 4 * c];
                var partial = new double[positives.Length];
                CpuLongTailBackend.CratExtraGradient(Parameters, weights, delta, t, positives, extra, partial);
                extraLoss = BoxWeight * partial.Sum();
            }
        }
        KeepResults(weights, maskWeights, null, null, null);

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

    /// <summary>Transfuse on a device other than the CPU: one backend call, results kept on the device; the one host
    /// read is the row losses' sum for ExtraLoss (none when λ_b = 0).</summary>
    private GradientTransfusion TransfuseOnDevice(Tensor boxDeltas, Tensor embeddings, Tensor targets, Tensor labels, int normalizer)
    {
        var device = boxDeltas.Device;
        int r = boxDeltas.Size(0), c = NumClasses;
        Tensor extra;
        double extraLoss = 0;
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
        {
            BankOn(device);
            var weights = Tensor.Empty([r, c], DType.Float32, device);
            var ungated = Tensor.Empty([r, c], DType.Float32, device);
            var y = labels.IsContiguous ? labels.Clone() : labels.Contiguous();
            extra = Tensor.Empty([r, 4 * c], DType.Float32, device);
            // kept (or dropped on failure) before the backend runs, so no path leaks them
            KeepResults(null, null, weights, ungated, y);
            using var rowLoss = Tensor.Empty([r], DType.Float32, device);
            try
            {
                using var d = LongTailOps.Raw(boxDeltas);
                using var x = LongTailOps.Raw(embeddings);
                using var t = LongTailOps.Raw(targets);
                LongTailBackends.For(device).CratTransfuse(Parameters, d, x, t, y, normalizer, _fisher, updateFisher: true, weights, ungated, extra, rowLoss);
                _fisher.Storage.BumpVersion();
                if (BoxWeight > 0)
                {
                    // HOST SYNC: the R row losses, summed in row order (the device backend raises a bad label here)
                    foreach (var v in rowLoss.ToFloatArray()) extraLoss += v;
                }
            }
            catch
            {
                extra.Dispose();
                KeepResults(null, null, null, null, null);
                throw;
            }
        }

        Tensor output;
        using (GradMode.NoGrad()) output = boxDeltas.Clone();
        using (extra)
        {
            if (Engine.Autograd.Tape.IsNeededFor(boxDeltas))
            {
                if (BoxWeight == 0)
                    Engine.Autograd.Tape.RecordCustom(output, "crat_transfuse", [boxDeltas], _ => g => [g]);
                else
                    Engine.Autograd.Tape.RecordCustom(output, "crat_transfuse", [boxDeltas], saved =>
                    {
                        var se = saved.Save(extra);
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
        var weights = MaskWeights();
        if (weights is null)
            throw new InvalidOperationException("CratTransfuser.MaskTransfusionLoss: no weights yet; call Transfuse on the box regressor outputs of this batch first.");
        var c = NumClasses;
        var p = weights.Length / c;
        if (maskLogits.Rank != 4 || maskLogits.Size(0) != p || maskLogits.Size(1) != c || maskLogits.DType != DType.Float32)
            throw new ArgumentException($"CratTransfuser.MaskTransfusionLoss: mask logits must be float32 (P, C, H, W) with P = {p} positives of the last Transfuse call and C = {c}, got {maskLogits.DType.Name()} {ShapeUtil.Format(maskLogits.Shape)}.");
        var (h, w) = (maskLogits.Size(2), maskLogits.Size(3));
        if (maskTargets.Rank != 3 || maskTargets.Size(0) != p || maskTargets.Size(1) != h || maskTargets.Size(2) != w || maskTargets.DType != DType.Float32)
            throw new ArgumentException($"CratTransfuser.MaskTransfusionLoss: mask targets must be float32 (P, H, W) = ({p}, {h}, {w}), got {maskTargets.DType.Name()} {ShapeUtil.Format(maskTargets.Shape)}.");
        if (p == 0 || MaskWeight == 0 || h * w == 0)
            return Tensor.Zeros([], DType.Float32, maskLogits.Device);
        float[] m, t;
        using (GradMode.NoGrad()) (m, t) = (maskLogits.ToFloatArray(), maskTargets.ToFloatArray());
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

    /// <summary>Shapes, dtypes and the normalizer; on the host path also every label's range (a host read of the labels),
    /// on a device path that every input is on the deltas' device (the backend checks the labels there).</summary>
    private void Check(Tensor boxDeltas, Tensor embeddings, Tensor targets, Tensor labels, int normalizer, bool onHost)
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
        if (!onHost)
        {
            foreach (var (t, name) in new[] { (embeddings, "embeddings"), (targets, "targets"), (labels, "labels") })
                if (t.Device != boxDeltas.Device)
                    throw new ArgumentException($"CratTransfuser.Transfuse: {name} are on {t.Device}, the box deltas on {boxDeltas.Device}; move them with To({boxDeltas.Device}).");
            return;
        }
        foreach (var l in labels.ToInt64Array())
            if (l < 0 || l > c)
                throw new ArgumentException($"CratTransfuser.Transfuse: label {l} outside 0..{c} (C = {c} is background).");
    }

    public StateDict StateDict()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var dict = new StateDict();
        // a CPU copy wherever the bank lives, so a checkpoint does not depend on the training device
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
            dict.Add("fisher_box", _fisher.Device.Kind == DeviceKind.Cpu ? _fisher.Clone() : _fisher.To(Device.Cpu));
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
        KeepResults(null, null, null, null, null);
        _fisher.Dispose();
    }
}
