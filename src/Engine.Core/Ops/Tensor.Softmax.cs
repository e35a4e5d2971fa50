// Softmax and log-softmax along one dim, each one fused backend call forward and one backward. The input
// is made contiguous and viewed as (outer, n, inner) with n the softmax dim, so any dim is handled by the
// same primitive. Both are max-subtracted: finite for any finite logits.
namespace Engine;

public sealed partial class Tensor
{
    /// <summary>exp(x − max) / Σ exp(x − max) along <paramref name="dim"/> (negative counts from the end).</summary>
    public Tensor Softmax(int dim) => SoftmaxCore(dim, log: false);

    /// <summary>x − max − log Σ exp(x − max) along <paramref name="dim"/>; gradient g − exp(y)·Σ g.</summary>
    public Tensor LogSoftmax(int dim) => SoftmaxCore(dim, log: true);

    private Tensor SoftmaxCore(int dim, bool log)
    {
        var name = log ? "log_softmax" : "softmax";
        if (DType != DType.Float32)
            throw new ArgumentException($"{name}: needs a float32 tensor, got {DType.Name()} {ShapeUtil.Format(_shape)}; convert with To(DType.Float32).");
        // a 0-d tensor is one row of one element (as in PyTorch, dim 0 and -1 are accepted)
        var rank = Math.Max(Rank, 1);
        var d = ShapeUtil.NormalizeDim(dim, rank, name);
        var (outer, n, inner) = SoftmaxLayout.Split(_shape, d);
        var y = Empty(_shape, DType.Float32, Device);
        using (var x = ForKernel()) Backend.Softmax(x, outer, n, inner, log, y);
        if (Autograd.Tape.IsNeeded(this))
            Autograd.Tape.Record(y, name, [this], node =>
            {
                var sy = node.Save(y);
                return g =>
                {
                    using var gc = g.ForKernel();
                    var gx = Empty(sy._shape, DType.Float32, sy.Device);
                    sy.Backend.SoftmaxBackward(sy, gc, outer, n, inner, log, gx);
                    return [gx];
                };
            });
        return y;
    }
}

/// <summary>Helpers of this file only (file-local so that other op families may use the same names).</summary>
file static class SoftmaxLayout
{
    /// <summary>(outer, n, inner) sizes of a shape around dim d (a 0-d tensor is (1, 1, 1)).</summary>
    public static (long Outer, long N, long Inner) Split(int[] shape, int d)
    {
        if (shape.Length == 0) return (1, 1, 1);
        long outer = 1, inner = 1;
        for (var i = 0; i < d; i++) outer *= shape[i];
        for (var i = d + 1; i < shape.Length; i++) inner *= shape[i];
        return (outer, shape[d], inner);
    }
}
