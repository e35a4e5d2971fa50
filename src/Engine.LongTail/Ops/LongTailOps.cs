// The long-tail tensor ops: fused per-row losses (one backend pass writes every row's loss and the gradient
// of the normalized sum, recorded as one autograd node whose backward scales that gradient), the segmented
// (group) softmax of BAGS with its own backward, LogN's batch standardization of the logits (fused with the
// running-statistics update), and the row normalization of the normalized classifiers.
// Each op validates its arguments with messages that name the op, the shapes and the fix.
using Engine.LongTail.Autograd;

namespace Engine.LongTail;

public static class LongTailOps
{
    /// <summary>scale·Σ_i Σ_j w_ij·BCE(z_ij, [j = y_i]) with the weights of ILongTailBackend.WeightedSigmoidBce. When
    /// <paramref name="statistics"/> is given, its two (K) tensors are overwritten with Σ_i w_ij·|σ(z_ij) − y_ij| over
    /// positive and negative elements. Gradient to the logits only (weights are constants).</summary>
    public static Tensor WeightedSigmoidBce(Tensor logits, Tensor labels, int numForeground, Tensor posWeight, Tensor negWeightForeground,
                                            Tensor negWeightBackground, double scale, (Tensor Pos, Tensor Neg)? statistics = null)
    {
        const string op = "WeightedSigmoidBce";
        var (_, k) = CheckLogits(logits, labels, op);
        foreach (var (w, name) in new[] { (posWeight, "posWeight"), (negWeightForeground, "negWeightForeground"), (negWeightBackground, "negWeightBackground") })
            CheckVector(w, k, DType.Float32, logits.Device, op, name);
        if (statistics is { } st)
        {
            CheckVector(st.Pos, k, DType.Float32, logits.Device, op, "statistics.Pos");
            CheckVector(st.Neg, k, DType.Float32, logits.Device, op, "statistics.Neg");
            if (!st.Pos.IsContiguous || !st.Neg.IsContiguous) throw new ArgumentException($"{op}: the statistics outputs must be contiguous.");
        }
        using var pw = Raw(posWeight);
        using var nwf = Raw(negWeightForeground);
        using var nwb = Raw(negWeightBackground);
        return FusedLoss(logits, labels, scale, op, (b, x, y, rowLoss, grad) =>
            b.WeightedSigmoidBce(x, y, numForeground, pw, nwf, nwb, scale, rowLoss, grad, statistics?.Pos, statistics?.Neg));
    }

    /// <summary>FCBL (section 4.2): scale·Σ_i Σ_j ω_ij·BCE(z_ij + δ_ij, [j = y_i]) on logits (N, C+1), margins from
    /// confusion (C, C) and counts (C), hard-negative mask when <paramref name="reweight"/>.</summary>
    public static Tensor Fcbl(Tensor logits, Tensor labels, Tensor confusion, Tensor counts, double alpha, double probThreshold,
                              bool reweight, double scale)
    {
        const string op = "Fcbl";
        var (_, k) = CheckLogits(logits, labels, op);
        var c = k - 1;
        if (c < 1) throw new ArgumentException($"{op}: logits {ShapeUtil.Format(logits.Shape)} need C + 1 ≥ 2 columns (C foreground classes and the background).");
        if (confusion.DType != DType.Float32 || confusion.Rank != 2 || confusion.Size(0) != c || confusion.Size(1) != c)
            throw new ArgumentException($"{op}: confusion must be float32 [{c}, {c}] for logits {ShapeUtil.Format(logits.Shape)}, got {confusion.DType.Name()} {ShapeUtil.Format(confusion.Shape)}.");
        CheckVector(counts, c, DType.Float32, logits.Device, op, "counts");
        using var a = Raw(confusion);
        using var n = Raw(counts);
        return FusedLoss(logits, labels, scale, op, (b, x, y, rowLoss, grad) =>
            b.Fcbl(x, y, a, n, alpha, probThreshold, reweight, scale, rowLoss, grad));
    }

    /// <summary>scale·Σ_i w[y_i]·(−log softmax(z_i)[y_i]) (sections 1.1, 1.3); labels must lie in [0, K).</summary>
    public static Tensor WeightedSoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor weight, double scale)
    {
        const string op = "WeightedSoftmaxCrossEntropy";
        var (_, k) = CheckLogits(logits, labels, op);
        CheckVector(weight, k, DType.Float32, logits.Device, op, "weight");
        using var w = Raw(weight);
        return FusedLoss(logits, labels, scale, op, (b, x, y, rowLoss, grad) => b.SoftmaxCrossEntropy(x, y, w, scale, rowLoss, grad));
    }

    /// <summary>Seesaw (section 1.6): scale·Σ_i (class term on positives + objectness term) on logits (N, C+2) with
    /// cumulative label counts (at least C entries, int64; the first C are used).</summary>
    public static Tensor Seesaw(Tensor logits, Tensor labels, Tensor counts, double p, double q, double eps, double scale)
    {
        const string op = "Seesaw";
        var (_, k) = CheckLogits(logits, labels, op);
        var c = k - 2;
        if (c < 1) throw new ArgumentException($"{op}: logits {ShapeUtil.Format(logits.Shape)} need C + 2 ≥ 3 columns (C classes, then o_fg and o_bg).");
        if (counts.DType != DType.Int64 || counts.Rank != 1 || counts.Size(0) < c)
            throw new ArgumentException($"{op}: counts must be int64 with at least C = {c} entries, got {counts.DType.Name()} {ShapeUtil.Format(counts.Shape)}.");
        if (!(eps > 0)) throw new ArgumentException($"{op}: eps must be positive, got {eps}.");
        using var n = Raw(counts);
        return FusedLoss(logits, labels, scale, op, (b, x, y, rowLoss, grad) => b.Seesaw(x, y, n, p, q, eps, scale, rowLoss, grad));
    }

    /// <summary>Softmax (or log-softmax) within each group of columns of x (N, K): group g is columns
    /// offsets[g] .. offsets[g+1]−1 (offsets int64, 0 = offsets[0] &lt; … &lt; offsets[G] = K). Differentiable.</summary>
    public static Tensor GroupSoftmax(Tensor x, Tensor offsets, bool log = false)
    {
        var op = log ? "GroupLogSoftmax" : "GroupSoftmax";
        if (x.DType != DType.Float32 || x.Rank != 2)
            throw new ArgumentException($"{op}: x must be float32 [N, K], got {x.DType.Name()} {ShapeUtil.Format(x.Shape)}.");
        CheckOffsets(offsets, x.Size(1), op);
        var backend = LongTailBackends.For(x.Device);
        var y = Tensor.Empty(x.ShapeArray(), DType.Float32, x.Device);
        // the offsets stay where they are: both backends read them on the host (the CUDA kernels take them by value)
        using (var xc = Raw(x))
            backend.GroupSoftmax(xc, offsets, log, y);
        if (CustomOp.IsNeeded(x))
            CustomOp.Record(y, log ? "group_log_softmax" : "group_softmax", [x], save =>
            {
                var sy = save(y);
                var so = save(offsets);
                return g =>
                {
                    using var gc = Raw(g);
                    var gx = Tensor.Empty(sy.ShapeArray(), DType.Float32, sy.Device);
                    LongTailBackends.For(sy.Device).GroupSoftmaxBackward(sy, gc, so, log, gx);
                    return [gx];
                };
            });
        return y;
    }

    /// <summary>x / (‖x‖ + eps) along the last dim of x (N, D), the normalization of section 1.8. The gradient is
    /// (g − x̂·(g·x)/‖x‖) / (‖x‖ + eps) with x̂ = x/(‖x‖ + eps); at x = 0 it is g / eps (no 0/0).</summary>
    public static Tensor NormalizeRows(Tensor x, double eps)
    {
        const string op = "NormalizeRows";
        if (x.DType != DType.Float32 || x.Rank != 2)
            throw new ArgumentException($"{op}: x must be float32 [N, D], got {x.DType.Name()} {ShapeUtil.Format(x.Shape)}.");
        if (!(eps > 0)) throw new ArgumentException($"{op}: eps must be positive, got {eps}.");
        Tensor y, norm;
        using (GradMode.NoGrad())
        {
            using (DisposeScope.Suspend())
            {
                using var sq = x.Square();
                using var s = sq.Sum(1, keepDim: true);
                norm = s.Sqrt();
            }
            using var denominator = norm.Add(eps);
            y = x.Div(denominator);
        }
        try
        {
            if (CustomOp.IsNeeded(x))
                CustomOp.Record(y, "normalize_rows", [x], save =>
                {
                    var (sy, sn) = (save(y), save(norm));
                    return g =>
                    {
                        // ∂y/∂x·g = g/(r + eps) − x·(x·g)/(r·(r + eps)²) = (g − y·(x·g)/r)/(r + eps), x·g = (r + eps)·(y·g)
                        using var yg = sy.Mul(g);
                        using var dot = yg.Sum(1, keepDim: true);
                        using var safeNorm = sn.Clamp(min: 1e-30);
                        using var ratio = sn.Add(eps);
                        using var factor0 = ratio.Div(safeNorm);
                        using var factor = dot.Mul(factor0);
                        using var proj = sy.Mul(factor);
                        using var diff = g.Sub(proj);
                        return [diff.Div(ratio)];
                    };
                });
        }
        finally
        {
            norm.Dispose();
        }
        return y;
    }

    /// <summary>LogN `repo` mode's affine-free batch normalization of logits (N ≥ 2, K) (section 2.3), one fused pass:
    /// per column (z − batch mean)/sqrt(biased batch variance + eps). When <paramref name="running"/> is given, its mean
    /// and variance (float32 [K], contiguous, on the logits' device) take the EMA update with the unbiased batch variance
    /// in the same pass, as torch's BatchNorm1d does in training. Differentiable in the logits (one backward pass).</summary>
    public static Tensor StandardizeLogits(Tensor logits, double eps, (Tensor Mean, Tensor Variance, double Momentum)? running = null)
    {
        const string op = "StandardizeLogits";
        if (logits.DType != DType.Float32 || logits.Rank != 2)
            throw new ArgumentException($"{op}: logits must be float32 [N, K], got {logits.DType.Name()} {ShapeUtil.Format(logits.Shape)}.");
        var (n, k) = (logits.Size(0), logits.Size(1));
        if (n < 2) throw new ArgumentException($"{op}: batch normalization needs at least 2 rows (RoIs) per batch, got {n}.");
        if (!(eps >= 0) || double.IsInfinity(eps)) throw new ArgumentException($"{op}: eps must be finite and ≥ 0, got {eps}.");
        if (running is var (rm, rv, momentum))
        {
            CheckVector(rm, k, DType.Float32, logits.Device, op, "running mean");
            CheckVector(rv, k, DType.Float32, logits.Device, op, "running variance");
            if (!rm.IsContiguous || !rv.IsContiguous || ReferenceEquals(rm.Storage, rv.Storage))
                throw new ArgumentException($"{op}: the running mean and variance are updated in place: pass two contiguous tensors of separate storage.");
            if (!(momentum > 0 && momentum <= 1)) throw new ArgumentException($"{op}: momentum must be in (0, 1], got {momentum}.");
        }
        var backend = LongTailBackends.For(logits.Device);
        var y = Tensor.Empty([n, k], DType.Float32, logits.Device);
        Tensor inverseSd;
        using (DisposeScope.Suspend()) inverseSd = Tensor.Empty([k], DType.Float32, logits.Device);
        try
        {
            using (var x = Raw(logits))
                backend.StandardizeLogits(x, eps, y, inverseSd, running?.Mean, running?.Variance, running?.Momentum ?? 0);
            if (CustomOp.IsNeeded(logits))
                CustomOp.Record(y, "standardize_logits", [logits], save =>
                {
                    var (sy, sr) = (save(y), save(inverseSd));
                    return g =>
                    {
                        using var gc = Raw(g);
                        var gx = Tensor.Empty(sy.ShapeArray(), DType.Float32, sy.Device);
                        LongTailBackends.For(sy.Device).StandardizeLogitsBackward(sy, gc, sr, gx);
                        return [gx];
                    };
                });
            return y;
        }
        finally
        {
            inverseSd.Dispose();
        }
    }

    /// <summary>LogN's calibration of logits (N, K): (z − shift)/sd per column, followed by a row softmax when
    /// <paramref name="softmax"/> (one fused pass). Not differentiable (a test-time function).</summary>
    public static Tensor Calibrate(Tensor logits, Tensor shift, Tensor sd, bool softmax)
    {
        const string op = "Calibrate";
        if (logits.DType != DType.Float32 || logits.Rank != 2)
            throw new ArgumentException($"{op}: logits must be float32 [N, K], got {logits.DType.Name()} {ShapeUtil.Format(logits.Shape)}.");
        CheckVector(shift, logits.Size(1), DType.Float32, logits.Device, op, "shift");
        CheckVector(sd, logits.Size(1), DType.Float32, logits.Device, op, "sd");
        var y = Tensor.Empty(logits.ShapeArray(), DType.Float32, logits.Device);
        using var x = Raw(logits);
        using var sh = Raw(shift);
        using var s = Raw(sd);
        LongTailBackends.For(logits.Device).Calibrate(x, sh, s, softmax, y);
        return y;
    }

    // ---- shared plumbing ----

    private delegate void LossKernel(ILongTailBackend backend, Tensor logits, Tensor labels, Tensor rowLoss, Tensor grad);

    /// <summary>Runs a per-row loss kernel and returns scale·Σ rowLoss as a scalar whose gradient is the kernel's.</summary>
    private static Tensor FusedLoss(Tensor logits, Tensor labels, double scale, string op, LossKernel kernel)
    {
        var backend = LongTailBackends.For(logits.Device);
        var (n, k) = (logits.Size(0), logits.Size(1));
        Tensor x, y, rowLoss, grad;
        using (DisposeScope.Suspend())
        {
            x = Raw(logits);
            y = Raw(labels);
            rowLoss = Tensor.Empty([n], DType.Float32, logits.Device);
            grad = Tensor.Empty([n, k], DType.Float32, logits.Device);
        }
        try
        {
            kernel(backend, x, y, rowLoss, grad);
            Tensor loss;
            using (GradMode.NoGrad())
            {
                using var sum = rowLoss.Sum();
                loss = sum.Mul(scale);
            }
            if (CustomOp.IsNeeded(logits))
                CustomOp.Record(loss, op, [logits], save =>
                {
                    var sg = save(grad);
                    return g =>
                    {
                        using var factor = Raw(g);
                        var gx = Tensor.Empty(sg.ShapeArray(), DType.Float32, sg.Device);
                        LongTailBackends.For(sg.Device).Scale(sg, factor, gx);
                        return [gx];
                    };
                });
            return loss;
        }
        finally
        {
            x.Dispose();
            y.Dispose();
            rowLoss.Dispose();
            grad.Dispose();
        }
    }

    private static (int N, int K) CheckLogits(Tensor logits, Tensor labels, string op)
    {
        if (logits.DType != DType.Float32 || logits.Rank != 2)
            throw new ArgumentException($"{op}: logits must be float32 [N, K], got {logits.DType.Name()} {ShapeUtil.Format(logits.Shape)}.");
        if (labels.DType != DType.Int64 || labels.Rank != 1 || labels.Size(0) != logits.Size(0))
            throw new ArgumentException($"{op}: labels must be int64 [{logits.Size(0)}] (one per logit row), got {labels.DType.Name()} {ShapeUtil.Format(labels.Shape)}.");
        if (labels.Device != logits.Device)
            throw new ArgumentException($"{op}: labels are on {labels.Device}, logits on {logits.Device}; move one with To(device).");
        return (logits.Size(0), logits.Size(1));
    }

    private static void CheckVector(Tensor t, int length, DType dtype, Device device, string op, string name)
    {
        if (t.DType != dtype || t.Rank != 1 || t.Size(0) != length)
            throw new ArgumentException($"{op}: {name} must be {dtype.Name()} [{length}], got {t.DType.Name()} {ShapeUtil.Format(t.Shape)}.");
        if (t.Device != device)
            throw new ArgumentException($"{op}: {name} is on {t.Device}, the logits on {device}; move it with To(device).");
    }

    internal static void CheckOffsets(Tensor offsets, int k, string op)
    {
        if (offsets.DType != DType.Int64 || offsets.Rank != 1 || offsets.Size(0) < 2)
            throw new ArgumentException($"{op}: offsets must be int64 [G + 1] with G ≥ 1 groups, got {offsets.DType.Name()} {ShapeUtil.Format(offsets.Shape)}.");
        var o = offsets.ToArray<long>();
        var ok = o[0] == 0 && o[^1] == k;
        for (var g = 0; ok && g + 1 < o.Length; g++) ok = o[g + 1] > o[g];
        if (!ok)
            throw new ArgumentException($"{op}: offsets [{string.Join(", ", o)}] must rise strictly from 0 to K = {k} (every group non-empty).");
    }

    /// <summary>A contiguous, unrecorded, unscoped version of t for a backend call (an alias when already contiguous).</summary>
    internal static Tensor Raw(Tensor t)
    {
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
            return t.IsContiguous ? t.Detach() : t.Contiguous();
    }
}
