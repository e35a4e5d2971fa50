// Training losses with PyTorch semantics: softmax cross-entropy (class weights, ignore index, label
// smoothing) as one fused backend primitive forward and one backward; sigmoid binary cross-entropy on logits
// in the overflow-free form; smooth-L1 (detectron2's beta convention) and L1 for box regression. Each loss
// records a single autograd node with its closed-form gradient; Mean/Sum reductions follow as ordinary ops,
// except cross-entropy's weighted mean, which the fused node includes.
namespace Engine;

public enum Reduction
{
    /// <summary>One loss per element (per row for cross-entropy).</summary>
    None,
    /// <summary>Average: over elements, or for cross-entropy Σ w[y_i]·loss_i / Σ w[y_i] over non-ignored rows.</summary>
    Mean,
    Sum,
}

public static class Losses
{
    /// <summary>Softmax cross-entropy of <paramref name="logits"/> (N, C) against class indices
    /// <paramref name="target"/> (N, int64), as torch.nn.functional.cross_entropy:
    /// loss_i = (1−ε)·w[y_i]·(−log p_i[y_i]) + (ε/C)·Σ_c w[c]·(−log p_i[c]), zero for rows whose target is
    /// <paramref name="ignoreIndex"/>; Mean divides Σ_i loss_i by Σ w[y_i] over the non-ignored rows.
    /// When every row is ignored (or N = 0) Mean is NaN, as in PyTorch, and the gradient is zero: a caller
    /// that can meet an empty batch should test for it rather than rely on a silent 0.
    /// The class weights are constants (no gradient flows to them).</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor target, Tensor? weight = null, int ignoreIndex = -100,
                                      Reduction reduction = Reduction.Mean, double labelSmoothing = 0)
    {
        const string op = "CrossEntropy";
        if (logits.DType != DType.Float32 || logits.Rank != 2)
            throw new ArgumentException($"{op}: logits must be float32 of shape [N, C], got {logits.DType.Name()} {ShapeUtil.Format(logits.Shape)}.");
        var (rows, classes) = (logits.Size(0), logits.Size(1));
        if (classes == 0) throw new ArgumentException($"{op}: logits {ShapeUtil.Format(logits.Shape)} have no classes (C = 0).");
        if (target.DType != DType.Int64)
            throw new ArgumentException($"{op}: target must be int64 class indices of shape [{rows}], got {target.DType.Name()} {ShapeUtil.Format(target.Shape)}; " +
                                        "convert with To(DType.Int64) (probability targets are not supported).");
        if (target.Rank != 1 || target.Size(0) != rows)
            throw new ArgumentException($"{op}: target shape {ShapeUtil.Format(target.Shape)} does not match logits {ShapeUtil.Format(logits.Shape)}; expected [{rows}].");
        if (weight is not null)
        {
            if (weight.DType != DType.Float32 || weight.Rank != 1 || weight.Size(0) != classes)
                throw new ArgumentException($"{op}: weight must be float32 of shape [{classes}] (one per class), got {weight.DType.Name()} {ShapeUtil.Format(weight.Shape)}.");
            if (Autograd.Tape.IsNeeded(weight))
                throw new ArgumentException($"{op}: class weights are constants here and cannot require grad; pass weight.Detach().");
        }
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
            throw new ArgumentException($"{op}: labelSmoothing must be in [0, 1], got {labelSmoothing}.");
        if (target.Device != logits.Device || (weight is not null && weight.Device != logits.Device))
            throw new ArgumentException($"{op}: logits ({logits.Device}), target ({target.Device}) and weight ({weight?.Device}) must be on one device.");

        var backend = logits.Backend;
        var x = logits.ForKernel();
        var t = target.ForKernel();
        var w = weight is null ? null : weight.ForKernel();
        Tensor lse, rowWeight, rowLoss;
        using (DisposeScope.Suspend())
        {
            rowLoss = Tensor.Empty([rows], DType.Float32, logits.Device);
            rowWeight = Tensor.Empty([rows], DType.Float32, logits.Device);
            lse = Tensor.Empty([rows], DType.Float32, logits.Device);
        }
        Tensor y;
        Tensor? totalWeight = null;
        try
        {
            backend.CrossEntropyForward(x, t, w, ignoreIndex, labelSmoothing, rowLoss, rowWeight, lse);
            using (GradMode.NoGrad())
            {
                switch (reduction)
                {
                    case Reduction.None:
                        y = rowLoss.Alias().Registered();
                        break;
                    case Reduction.Sum:
                        y = rowLoss.Sum();
                        break;
                    case Reduction.Mean:
                        using (DisposeScope.Suspend()) totalWeight = rowWeight.Sum();
                        using (var sum = rowLoss.Sum()) y = sum.Div(totalWeight);
                        break;
                    default:
                        throw new ArgumentOutOfRangeException(nameof(reduction), reduction, $"{op}: unknown reduction.");
                }
            }

            if (Autograd.Tape.IsNeeded(logits))
            {
                var smoothing = labelSmoothing;
                Autograd.Tape.Record(y, "cross_entropy", [logits], node =>
                {
                    var (sx, st, sl) = (node.Save(x), node.Save(t), node.Save(lse));
                    var sw = w is null ? null : node.Save(w);
                    var stw = totalWeight is null ? null : node.Save(totalWeight);
                    return g =>
                    {
                        // per-row gradient: g itself (None), or the scalar g (÷ Σ w[y_i] for Mean) broadcast with stride 0
                        using var scaled = stw is null ? g.Alias() : g.Div(stw);
                        using var gRow = reduction == Reduction.None ? scaled.Alias() : scaled.BroadcastView([rows], op);
                        var gx = Tensor.Empty([rows, classes], DType.Float32, sx.Device);
                        sx.Backend.CrossEntropyBackward(sx, st, sw, sl, gRow, ignoreIndex, smoothing, gx);
                        return [gx];
                    };
                });
            }
        }
        finally
        {
            x.Dispose();
            t.Dispose();
            w?.Dispose();
            lse.Dispose();
            rowWeight.Dispose();
            rowLoss.Dispose();
            totalWeight?.Dispose();
        }
        return y;
    }

    /// <summary>Sigmoid binary cross-entropy on logits, as torch.nn.functional.binary_cross_entropy_with_logits:
    /// loss = w·(max(x, 0) − x·t + log(1 + exp(−|x|))), which never overflows. <paramref name="weight"/> broadcasts
    /// to the logits' shape; Mean averages over all elements. Gradients: ∂/∂x = w·(σ(x) − t), ∂/∂t = −w·x,
    /// ∂/∂w = the unweighted loss.</summary>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor logits, Tensor targets, Tensor? weight = null, Reduction reduction = Reduction.Mean)
    {
        const string op = "BinaryCrossEntropyWithLogits";
        CheckPair(logits, targets, op, "logits", "targets");
        if (weight is not null)
        {
            if (weight.DType != DType.Float32)
                throw new ArgumentException($"{op}: weight must be float32, got {weight.DType.Name()} {ShapeUtil.Format(weight.Shape)}.");
            if (weight.Device != logits.Device)
                throw new ArgumentException($"{op}: weight is on {weight.Device}, logits on {logits.Device}; move one with To(device).");
            var b = ShapeUtil.Broadcast(logits.Shape, weight.Shape, op);
            if (!b.AsSpan().SequenceEqual(logits.Shape))
                throw new ArgumentException($"{op}: weight {ShapeUtil.Format(weight.Shape)} does not broadcast to the logits' shape {ShapeUtil.Format(logits.Shape)}.");
        }

        Tensor loss;
        using (GradMode.NoGrad())
        {
            using var softplus = logits.Softplus();
            using var xt = logits.Mul(targets);
            if (weight is null) loss = softplus.Sub(xt);
            else
            {
                using var unweighted = softplus.Sub(xt);
                loss = unweighted.Mul(weight);
            }
        }
        Tensor[] inputs = weight is null ? [logits, targets] : [logits, targets, weight];
        if (Autograd.Tape.IsNeeded(inputs))
            Autograd.Tape.Record(loss, "binary_cross_entropy_with_logits", inputs, node =>
            {
                var (sx, st) = (node.Save(logits), node.Save(targets));
                var sw = weight is null ? null : node.Save(weight);
                var (needX, needT, needW) = (logits.RequiresGrad, targets.RequiresGrad, weight?.RequiresGrad == true);
                return g =>
                {
                    using var gw = sw is null ? g.Alias() : g.Mul(sw);
                    Tensor? dx = null, dt = null, dw = null;
                    if (needX)
                    {
                        using var s = sx.Sigmoid();
                        using var r = s.Sub(st);
                        dx = gw.Mul(r);
                    }
                    if (needT)
                    {
                        using var p = gw.Mul(sx);
                        dt = p.Neg();
                    }
                    if (needW)
                    {
                        using var softplus = sx.Softplus();
                        using var xt = sx.Mul(st);
                        using var unweighted = softplus.Sub(xt);
                        dw = g.Mul(unweighted);
                    }
                    Tensor?[] grads = sw is null ? [dx, dt] : [dx, dt, dw];
                    return grads;
                };
            });
        return Reduce(loss, reduction, op);
    }

    /// <summary>Smooth-L1 (Huber) loss with detectron2's convention: 0.5·d²/β where |d| &lt; β, else |d| − 0.5·β,
    /// with d = input − target; β &lt; 1e-5 is exactly L1 (this avoids dividing by a vanishing β).
    /// Gradient ∂/∂input = clamp(d/β, −1, 1) (sign(d) for L1), and its negative for the target.</summary>
    public static Tensor SmoothL1(Tensor input, Tensor target, double beta = 1.0, Reduction reduction = Reduction.Mean)
    {
        const string op = "SmoothL1";
        if (!(beta >= 0)) throw new ArgumentException($"{op}: beta must be ≥ 0, got {beta}.");
        CheckPair(input, target, op, "input", "target");
        if (beta < L1Beta) return L1Core(input, target, reduction, op);

        Tensor loss;
        using (GradMode.NoGrad())
        {
            using var d = input.Sub(target);
            using var ad = d.Abs();
            using var quadratic = d.Square();
            quadratic.MulInPlaceRaw(0.5 / beta);
            using var linear = ad.Sub(0.5 * beta);
            using var inside = ad.Lt(beta);
            loss = Tensor.Where(inside, quadratic, linear);
        }
        RecordDifference(loss, input, target, "smooth_l1", d => { using var r = d.Mul(1.0 / beta); return r.Clamp(-1, 1); });
        return Reduce(loss, reduction, op);
    }

    /// <summary>Mean/sum/elementwise |input − target|; gradient sign(input − target) (0 where they are equal).</summary>
    public static Tensor L1(Tensor input, Tensor target, Reduction reduction = Reduction.Mean)
    {
        CheckPair(input, target, "L1", "input", "target");
        return L1Core(input, target, reduction, "L1");
    }

    /// <summary>Below this beta SmoothL1 is L1 (detectron2's threshold).</summary>
    private const double L1Beta = 1e-5;

    private static Tensor L1Core(Tensor input, Tensor target, Reduction reduction, string op)
    {
        Tensor loss;
        using (GradMode.NoGrad())
        using (var d = input.Sub(target))
            loss = d.Abs();
        RecordDifference(loss, input, target, "l1", d => d.Sign());
        return Reduce(loss, reduction, op);
    }

    /// <summary>Records loss = f(input − target) with ∂/∂input = g·f'(d) and ∂/∂target = −g·f'(d), where
    /// <paramref name="derivative"/> maps d to f'(d).</summary>
    private static void RecordDifference(Tensor loss, Tensor input, Tensor target, string name, Func<Tensor, Tensor> derivative)
    {
        if (!Autograd.Tape.IsNeeded(input, target)) return;
        Autograd.Tape.Record(loss, name, [input, target], node =>
        {
            var (si, st) = (node.Save(input), node.Save(target));
            var (needI, needT) = (input.RequiresGrad, target.RequiresGrad);
            return g =>
            {
                using var d = si.Sub(st);
                using var slope = derivative(d);
                var gi = g.Mul(slope);
                Tensor? gt = null;
                if (needT) gt = gi.Neg();
                if (!needI)
                {
                    gi.Dispose();
                    return [null, gt];
                }
                return [gi, gt];
            };
        });
    }

    private static void CheckPair(Tensor a, Tensor b, string op, string aName, string bName)
    {
        if (a.DType != DType.Float32 || b.DType != DType.Float32)
            throw new ArgumentException($"{op}: {aName} and {bName} must be float32, got {a.DType.Name()} {ShapeUtil.Format(a.Shape)} and {b.DType.Name()} {ShapeUtil.Format(b.Shape)}; convert with To(DType.Float32).");
        if (!a.Shape.SequenceEqual(b.Shape))
            throw new ArgumentException($"{op}: {aName} {ShapeUtil.Format(a.Shape)} and {bName} {ShapeUtil.Format(b.Shape)} must have the same shape.");
        if (a.Device != b.Device)
            throw new ArgumentException($"{op}: {aName} is on {a.Device}, {bName} on {b.Device}; move one with To(device).");
    }

    /// <summary>Applies the reduction to an element-wise loss (recorded, so the gradient flows through it).</summary>
    private static Tensor Reduce(Tensor loss, Reduction reduction, string op)
    {
        switch (reduction)
        {
            case Reduction.None: return loss;
            case Reduction.Mean: using (loss) return loss.Mean();
            case Reduction.Sum: using (loss) return loss.Sum();
            default: throw new ArgumentOutOfRangeException(nameof(reduction), reduction, $"{op}: unknown reduction.");
        }
    }
}
