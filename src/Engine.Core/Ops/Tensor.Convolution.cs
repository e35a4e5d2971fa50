// 2-D convolution (cross-correlation, as PyTorch's conv2d) with stride, padding, dilation and groups, and
// its gradients. The op checks the shapes, builds one Conv2dGeometry and lets the backend compute; its
// backward asks the backend only for the gradients that are needed: backward-data when the input requires
// grad, backward-weights (with the bias gradient fused in) when the weight does.
//   input (N, C, H, W), weight (O, C/groups, kh, kw), bias (O) → output (N, O, OutH, OutW),
//   Out = (In + 2·padding - dilation·(k - 1) - 1) / stride + 1.
using Engine.Native;

namespace Engine;

public sealed partial class Tensor
{
    /// <summary>Convolution with the same stride, padding and dilation along H and W.</summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0,
                                int dilation = 1, int groups = 1) =>
        Conv2d(input, weight, bias, (stride, stride), (padding, padding), (dilation, dilation), groups);

    /// <summary>Convolution of input (N, C, H, W) with weight (O, C/groups, kh, kw) plus bias (O) (may be null);
    /// stride, padding (zeros, on both sides) and dilation (1 = none) are given as (H, W).</summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W) padding,
                                (int H, int W) dilation, int groups = 1)
    {
        var g = Conv2dGeometryOf(input, weight, bias, stride, padding, dilation, groups);
        using var x = input.DenseUnrecorded();
        using var w = weight.DenseUnrecorded();
        using var b = bias?.DenseUnrecorded();
        // A copied weight is a temporary: caching it would leave an entry behind that nothing ever hits again.
        var cacheWeight = ReferenceEquals(w.Storage, weight.Storage);
        var y = Empty([g.N, g.COut, g.OutH, g.OutW], DType.Float32, input.Device);
        input.Backend.Conv2dForward(g, x, w, b, y, cacheWeight);

        Tensor[] inputs = bias is null ? [input, weight] : [input, weight, bias];
        if (Autograd.Tape.IsNeeded(inputs))
        {
            var (needX, needW, needB) = (input.RequiresGrad, weight.RequiresGrad, bias?.RequiresGrad ?? false);
            var (inputShape, weightShape, hasBias) = (input._shape, weight._shape, bias is not null);
            Autograd.Tape.Record(y, "conv2d", inputs, node =>
            {
                var sx = needW ? node.Save(x) : null;
                var sw = needX ? node.Save(w) : null;
                return gy =>
                {
                    using var dy = gy.DenseUnrecorded();
                    Tensor? dx = null, dw = null, db = null;
                    if (needX)
                    {
                        dx = Empty(inputShape, DType.Float32, dy.Device);
                        dy.Backend.Conv2dBackwardData(g, dy, sw!, dx, cacheWeight);
                    }
                    if (needW)
                    {
                        dw = Empty(weightShape, DType.Float32, dy.Device);
                        if (needB) db = Empty([g.COut], DType.Float32, dy.Device);
                        dy.Backend.Conv2dBackwardWeights(g, sx!, dy, dw, db);
                    }
                    else if (needB) db = dy.Sum([0, 2, 3]);   // Σ over n, oy, ox; x is not needed for it
                    return hasBias ? [dx, dw, db] : [dx, dw];
                };
            });
        }
        return y;
    }

    private static Conv2dGeometry Conv2dGeometryOf(Tensor input, Tensor weight, Tensor? bias, (int H, int W) stride,
                                                   (int H, int W) padding, (int H, int W) dilation, int groups)
    {
        string Shapes() => $"input {ShapeUtil.Format(input.Shape)}, weight {ShapeUtil.Format(weight.Shape)}" +
                           (bias is null ? "" : $", bias {ShapeUtil.Format(bias.Shape)}");

        foreach (var (name, t) in new[] { ("input", input), ("weight", weight), ("bias", bias) })
        {
            if (t is null) continue;
            if (t.DType != DType.Float32)
                throw new ArgumentException($"conv2d: {name} has dtype {t.DType.Name()}, conv2d needs float32 ({Shapes()}); convert with To(DType.Float32).");
            if (t.Device != input.Device)
                throw new ArgumentException($"conv2d: {name} is on {t.Device} but the input is on {input.Device} ({Shapes()}); move it with To(device).");
        }
        if (input.Rank != 4)
            throw new ArgumentException($"conv2d: input must be 4-D (N, C, H, W), got {ShapeUtil.Format(input.Shape)} ({Shapes()}); " +
                                        "for a single image add the batch dim with Unsqueeze(0).");
        if (weight.Rank != 4)
            throw new ArgumentException($"conv2d: weight must be 4-D (O, C/groups, kh, kw), got {ShapeUtil.Format(weight.Shape)} ({Shapes()}).");
        if (groups <= 0)
            throw new ArgumentException($"conv2d: groups must be positive, got {groups} ({Shapes()}).");
        var (c, cPerGroup, o) = (input.Size(1), weight.Size(1), weight.Size(0));
        if (c != cPerGroup * groups)
            throw new ArgumentException(
                $"conv2d: input has C = {c} channels but weight with C/groups = {cPerGroup} and groups = {groups} expects " +
                $"C = {cPerGroup * groups} ({Shapes()}); the weight's dim 1 must be input channels / groups.");
        if (o % groups != 0)
            throw new ArgumentException($"conv2d: groups = {groups} must divide the weight's O = {o} ({Shapes()}).");
        if (bias is not null && (bias.Rank != 1 || bias.Size(0) != o))
            throw new ArgumentException($"conv2d: bias must be 1-D with O = {o} elements, got {ShapeUtil.Format(bias.Shape)} ({Shapes()}).");
        try
        {
            return new Conv2dGeometry(input.Size(0), c, input.Size(2), input.Size(3), o, weight.Size(2), weight.Size(3),
                                      stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W, groups);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"conv2d: {Shapes()}, stride {stride}, padding {padding}, dilation {dilation}: {e.Message}", e);
        }
    }

    /// <summary>A contiguous tensor with this one's values and no autograd link: a new reference to this
    /// tensor's storage when it is already contiguous, else a copy. The caller disposes it.</summary>
    internal Tensor DenseUnrecorded()
    {
        if (IsContiguous) return Alias();
        var copy = Empty(_shape, DType, Device);
        Backend.Copy(this, copy);
        return copy;
    }
}
