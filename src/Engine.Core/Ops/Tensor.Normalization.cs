// Group normalization (Wu & He, 2018, Eqn. 1–3) and batch normalization (Ioffe & Szegedy, 2015, Alg. 1) as
// fused ops: one backend call computes the statistics and writes the output, one computes every gradient in
// closed form. Both take an (N, C, *) input; the dims after C are the spatial positions S.
//   group_norm: statistics per (n, group of C/G channels) over (C/G)·S values; saves mean, rstd (N, G).
//   batch_norm: statistics per channel over N·S values (training) or the running statistics (evaluation);
//               training updates the running statistics in place as PyTorch: r ← (1 − momentum)·r + momentum·b,
//               with the unbiased variance (·m/(m − 1)) for running_var and the biased one for normalizing.
namespace Engine;

public sealed partial class Tensor
{
    /// <summary>Group normalization of input (N, C, *) with <paramref name="groups"/> groups (C divisible by it):
    /// y = (x − μ)/sqrt(σ² + eps)·weight[c] + bias[c], μ and the biased σ² per (sample, group). weight and bias (C)
    /// may be null (then 1 and 0).</summary>
    public static Tensor GroupNorm(Tensor input, int groups, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
    {
        const string op = "group_norm";
        CheckNormArguments(op, input, weight, bias, eps);
        var c = input.Size(1);
        if (groups <= 0 || c % groups != 0)
            throw new ArgumentException($"{op}: {c} channels of input {ShapeUtil.Format(input.Shape)} cannot be split into {groups} groups; " +
                                        "groups must be positive and divide the channel count.");
        var n = input.Size(0);
        var y = Empty(input._shape, DType.Float32, input.Device);
        using var x = input.DenseUnrecorded();
        using var w = weight?.DenseUnrecorded();
        using var b = bias?.DenseUnrecorded();
        using var mean = Empty([n, groups], DType.Float32, input.Device);   // (N, G)
        using var rstd = Empty([n, groups], DType.Float32, input.Device);   // (N, G)
        if (y.Numel > 0) input.Backend.GroupNormForward(x, groups, w, b, eps, y, mean, rstd);

        RecordNorm(y, op, input, weight, bias, x, w, mean, rstd, c,
                   (dy, sx, sm, sr, sw, dx, dw, db) => dy.Backend.GroupNormBackward(dy, sx, sm, sr, groups, sw, dx, dw, db));
        return y;
    }

    /// <summary>Batch normalization of input (N, C, *), as PyTorch's batch_norm. Training: per channel the batch mean
    /// and biased variance over N·S values normalize x, and runningMean / runningVar (C), when given, are updated in
    /// place with <paramref name="momentum"/> (running_var with the unbiased variance). Evaluation: the running
    /// statistics normalize x and nothing is updated. y = (x − μ)/sqrt(σ² + eps)·weight[c] + bias[c]; weight and
    /// bias (C) may be null.</summary>
    public static Tensor BatchNorm(Tensor input, Tensor? runningMean, Tensor? runningVar, Tensor? weight, Tensor? bias,
                                   bool training, double momentum = 0.1, double eps = 1e-5)
    {
        const string op = "batch_norm";
        CheckNormArguments(op, input, weight, bias, eps);
        var c = input.Size(1);
        foreach (var (name, t) in new[] { ("runningMean", runningMean), ("runningVar", runningVar) })
            if (t is not null && (t.DType != DType.Float32 || t.Rank != 1 || t.Size(0) != c || t.Device != input.Device))
                throw new ArgumentException($"{op}: {name} must be a float32 ({c}) tensor on {input.Device} for input {ShapeUtil.Format(input.Shape)}, " +
                                            $"got {t.DType.Name()} {ShapeUtil.Format(t.Shape)} on {t.Device}.");
        if ((runningMean is null) != (runningVar is null))
            throw new ArgumentException($"{op}: pass both runningMean and runningVar or neither (input {ShapeUtil.Format(input.Shape)}).");
        if (!(momentum >= 0 && momentum <= 1))
            throw new ArgumentOutOfRangeException(nameof(momentum), $"{op}: momentum must be in [0, 1], got {momentum}.");
        var count = input.Numel / Math.Max(c, 1);   // values per channel, N·S
        if (training && count <= 1 && input.Numel > 0)
            throw new ArgumentException($"{op}: training mode needs more than one value per channel to estimate a variance, got input {ShapeUtil.Format(input.Shape)}; " +
                                        "use a larger batch or evaluation mode.");
        if (!training && runningMean is null)
            throw new ArgumentException($"{op}: evaluation mode normalizes with the running statistics, but none were given (input {ShapeUtil.Format(input.Shape)}).");

        var y = Empty(input._shape, DType.Float32, input.Device);
        using var x = input.DenseUnrecorded();
        using var w = weight?.DenseUnrecorded();
        using var b = bias?.DenseUnrecorded();
        Tensor mean, rstd;                                                  // (C) each
        using (GradMode.NoGrad())
        using (DisposeScope.Suspend())
        {
            if (training)
            {
                mean = Empty([c], DType.Float32, input.Device);
                rstd = Empty([c], DType.Float32, input.Device);
                using var variance = Empty([c], DType.Float32, input.Device);
                if (input.Numel > 0)
                {
                    input.Backend.BatchNormTrainingForward(x, w, b, eps, y, mean, variance, rstd);
                    if (runningMean is not null && runningVar is not null)
                    {
                        runningMean.MulInPlace(1 - momentum).AddInPlace(mean, momentum);
                        runningVar.MulInPlace(1 - momentum).AddInPlace(variance, momentum * count / (count - 1));
                    }
                }
            }
            else
            {
                mean = runningMean!.Clone();   // a copy: later training steps update the running buffer in place
                rstd = InverseStd(runningVar!, eps);
                if (input.Numel > 0) input.Backend.BatchNormForward(x, mean, rstd, w, b, y);
            }
        }
        using (mean)
        using (rstd)
        {
            RecordNorm(y, op, input, weight, bias, x, w, mean, rstd, c,
                       (dy, sx, sm, sr, sw, dx, dw, db) => dy.Backend.BatchNormBackward(dy, sx, sm, sr, sw, training, dx, dw, db));
        }
        return y;
    }

    /// <summary>Records a normalization's backward: the dense input, weight, mean and rstd are saved, and
    /// <paramref name="backward"/> fills dx (input's shape), dweight and dbias (C) where each is needed.</summary>
    private static void RecordNorm(Tensor y, string op, Tensor input, Tensor? weight, Tensor? bias, Tensor x, Tensor? w, Tensor mean, Tensor rstd, int c,
                                   Action<Tensor, Tensor, Tensor, Tensor, Tensor?, Tensor?, Tensor?, Tensor?> backward)
    {
        var inputs = NormInputs(input, weight, bias);
        if (!Autograd.Tape.IsNeeded(inputs)) return;
        var (needX, needW, needB) = (input.RequiresGrad, weight?.RequiresGrad ?? false, bias?.RequiresGrad ?? false);
        var (shape, hasW, hasB) = (input._shape, weight is not null, bias is not null);
        Autograd.Tape.Record(y, op, inputs, node =>
        {
            var sx = node.Save(x);
            var sm = node.Save(mean);
            var sr = node.Save(rstd);
            var sw = w is null ? null : node.Save(w);
            return gy =>
            {
                using var dy = gy.DenseUnrecorded();
                var dx = needX ? Empty(shape, DType.Float32, dy.Device) : null;
                var dw = needW ? Empty([c], DType.Float32, dy.Device) : null;
                var db = needB ? Empty([c], DType.Float32, dy.Device) : null;
                backward(dy, sx, sm, sr, sw, dx, dw, db);
                return NormGradients(dx, hasW, dw, hasB, db);
            };
        });
    }

    /// <summary>1/sqrt(v + eps), (C).</summary>
    private static Tensor InverseStd(Tensor variance, double eps)
    {
        using var shifted = variance.Add(eps);
        using var sd = shifted.Sqrt();
        return sd.Reciprocal();
    }

    private static void CheckNormArguments(string op, Tensor input, Tensor? weight, Tensor? bias, double eps)
    {
        if (input.DType != DType.Float32 || input.Rank < 2)
            throw new ArgumentException($"{op}: needs a float32 (N, C, ...) input, got {input.DType.Name()} {ShapeUtil.Format(input.Shape)}.");
        if (!(eps >= 0))
            throw new ArgumentOutOfRangeException(nameof(eps), $"{op}: eps must be ≥ 0, got {eps}.");
        var c = input.Size(1);
        foreach (var (name, t) in new[] { ("weight", weight), ("bias", bias) })
        {
            if (t is null) continue;
            if (t.DType != DType.Float32 || t.Rank != 1 || t.Size(0) != c)
                throw new ArgumentException($"{op}: {name} must be a float32 ({c}) tensor, one value per channel of input {ShapeUtil.Format(input.Shape)}; " +
                                            $"got {t.DType.Name()} {ShapeUtil.Format(t.Shape)}.");
            if (t.Device != input.Device)
                throw new ArgumentException($"{op}: {name} is on {t.Device} but the input is on {input.Device}; move it with To(device).");
        }
    }

    private static Tensor[] NormInputs(Tensor input, Tensor? weight, Tensor? bias) =>
        (weight, bias) switch
        {
            (null, null) => [input],
            (not null, null) => [input, weight],
            (null, not null) => [input, bias],
            _ => [input, weight, bias],
        };

    /// <summary>Gradients in the order of NormInputs.</summary>
    private static Tensor?[] NormGradients(Tensor? dx, bool hasWeight, Tensor? dweight, bool hasBias, Tensor? dbias) =>
        (hasWeight, hasBias) switch
        {
            (false, false) => [dx],
            (true, false) => [dx, dweight],
            (false, true) => [dx, dbias],
            _ => [dx, dweight, dbias],
        };
}
