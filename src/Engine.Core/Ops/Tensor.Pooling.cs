// 2-D max pooling and nearest-neighbour upsampling on NCHW float32 maps, with their gradients. Max pooling
// keeps the int64 position of each window's maximum from the forward pass, so the backward routes every
// output gradient to exactly that input element (accumulating where windows overlap); nearest upsampling's
// backward sums each input pixel's copies. Uses: the ResNet stem (3×3, stride 2, padding 1), FPN's P6 level
// (1×1, stride 2) and FPN's top-down ×2 upsampling.
namespace Engine;

public sealed partial class Tensor
{
    /// <summary>Max over kernel×kernel windows moved by stride, with padding (−inf) on every side; (N, C, H, W) →
    /// (N, C, ⌊(H + 2p − k)/s⌋ + 1, ⌊(W + 2p − k)/s⌋ + 1). The gradient goes to the first maximum of each window.</summary>
    public Tensor MaxPool2d(int kernel, int stride, int padding = 0) =>
        MaxPool2d((kernel, kernel), (stride, stride), (padding, padding));

    /// <summary>Max pooling with separate (height, width) kernel, stride and padding.</summary>
    public Tensor MaxPool2d((int H, int W) kernel, (int H, int W) stride, (int H, int W) padding = default)
    {
        var (values, indices) = MaxPool2dWithIndices(kernel, stride, padding);
        indices.Dispose();
        return values;
    }

    /// <summary>Max pooling that also returns, per output element, the int64 position h·W + w of the chosen input
    /// element within its (H, W) plane (PyTorch's return_indices convention).</summary>
    public (Tensor Values, Tensor Indices) MaxPool2dWithIndices((int H, int W) kernel, (int H, int W) stride, (int H, int W) padding = default)
    {
        const string op = "MaxPool2d";
        if (DType != DType.Float32 || Rank != 4)
            throw new ArgumentException($"{op}: needs a float32 (N, C, H, W) tensor, got {DType.Name()} {ShapeUtil.Format(_shape)}.");
        var window = new Pool2dWindow(kernel.H, kernel.W, stride.H, stride.W, padding.H, padding.W);
        if (kernel.H < 1 || kernel.W < 1 || stride.H < 1 || stride.W < 1 || padding.H < 0 || padding.W < 0)
            throw new ArgumentException($"{op}: {window} is invalid for input {ShapeUtil.Format(_shape)}; kernel and stride must be ≥ 1, padding ≥ 0.");
        if (2 * padding.H > kernel.H || 2 * padding.W > kernel.W)
            throw new ArgumentException($"{op}: {window} pads more than half the kernel, so some windows would hold only padding; use padding ≤ kernel / 2.");
        var (h, w) = (_shape[2], _shape[3]);
        if (h + 2 * padding.H < kernel.H || w + 2 * padding.W < kernel.W)
            throw new ArgumentException($"{op}: kernel {kernel.H}x{kernel.W} is larger than the padded input {h + 2 * padding.H}x{w + 2 * padding.W} " +
                                        $"(input {ShapeUtil.Format(_shape)}, {window}); use a smaller kernel or more padding.");
        int[] outShape = [_shape[0], _shape[1], window.OutputH(h), window.OutputW(w)];
        var values = Empty(outShape, DType.Float32, Device);
        var indices = Empty(outShape, DType.Int64, Device);
        if (values.Numel > 0)
            using (var x = ForKernel()) Backend.MaxPool2d(x, window, values, indices);
        if (Autograd.Tape.IsNeeded(this))
        {
            var inputShape = _shape;
            Autograd.Tape.Record(values, "max_pool2d", [this], node =>
            {
                var si = node.Save(indices);
                return g =>
                {
                    var gx = Empty(inputShape, DType.Float32, g.Device);
                    if (gx.Numel == 0) return [gx];
                    using var gc = g.ForKernel();
                    g.Backend.MaxPool2dBackward(gc, si, gx);
                    return [gx];
                };
            });
        }
        return (values, indices);
    }

    /// <summary>Nearest-neighbour upsampling by an integer factor: (N, C, H, W) → (N, C, s·H, s·W), each input pixel
    /// copied to an s×s block.</summary>
    public Tensor UpsampleNearest2d(int scale)
    {
        if (scale < 1) throw new ArgumentException($"UpsampleNearest2d: scale must be a positive integer, got {scale} (input {ShapeUtil.Format(_shape)}).");
        PoolingLayout.CheckUpsampleInput(this);
        return UpsampleNearest2d(checked(_shape[2] * scale), checked(_shape[3] * scale));
    }

    /// <summary>Nearest-neighbour resize to (outH, outW): output pixel (i, j) copies input pixel (⌊i·H/outH⌋, ⌊j·W/outW⌋).
    /// This is PyTorch's 'nearest' mode in exact integer arithmetic; PyTorch evaluates i·(H/outH) in float32,
    /// which for a few size pairs (e.g. 2 → 82, i = 41) lands just below an integer and picks the previous
    /// pixel. The two agree whenever outH is H or 2H (FPN), which PyTorch special-cases.</summary>
    public Tensor UpsampleNearest2d(int outH, int outW)
    {
        const string op = "UpsampleNearest2d";
        PoolingLayout.CheckUpsampleInput(this);
        if (outH < 1 || outW < 1)
            throw new ArgumentException($"{op}: output size {outH}x{outW} must be positive (input {ShapeUtil.Format(_shape)}).");
        var y = Empty([_shape[0], _shape[1], outH, outW], DType.Float32, Device);
        if (y.Numel > 0)
            using (var x = ForKernel()) Backend.UpsampleNearest2d(x, y);
        if (Autograd.Tape.IsNeeded(this))
        {
            var inputShape = _shape;
            Autograd.Tape.Record(y, "upsample_nearest2d", [this], _ => g =>
            {
                var gx = Empty(inputShape, DType.Float32, g.Device);
                if (gx.Numel == 0) return [gx];
                using var gc = g.ForKernel();
                g.Backend.UpsampleNearest2dBackward(gc, gx);
                return [gx];
            });
        }
        return y;
    }
}

/// <summary>Helpers of this file only (file-local so that other op families may use the same names).</summary>
file static class PoolingLayout
{
    public static void CheckUpsampleInput(Tensor t)
    {
        if (t.DType != DType.Float32 || t.Rank != 4)
            throw new ArgumentException($"UpsampleNearest2d: needs a float32 (N, C, H, W) tensor, got {t.DType.Name()} {ShapeUtil.Format(t.Shape)}.");
        if (t.Size(2) == 0 || t.Size(3) == 0)
            throw new ArgumentException($"UpsampleNearest2d: input {ShapeUtil.Format(t.Shape)} has an empty spatial size; there is nothing to copy from.");
    }
}
