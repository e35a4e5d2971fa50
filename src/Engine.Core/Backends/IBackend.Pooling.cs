// Backend primitives of 2-D max pooling and nearest-neighbour upsampling on NCHW float32 maps (ResNet stem
// pool, FPN top-down ×2 upsampling and the P6 level). Inputs are contiguous (the op copies views); outputs are
// contiguous and fully written. Window geometry travels as one plain struct.
namespace Engine;

/// <summary>A 2-D pooling window: kernel (Kh, Kw), stride (Sh, Sw), padding (Ph, Pw) added on each side.
/// Output size per axis is floor((In + 2·P − K) / S) + 1.</summary>
public readonly record struct Pool2dWindow(int KernelH, int KernelW, int StrideH, int StrideW, int PadH, int PadW)
{
    public int OutputH(int h) => (h + 2 * PadH - KernelH) / StrideH + 1;
    public int OutputW(int w) => (w + 2 * PadW - KernelW) / StrideW + 1;
    public override string ToString() => $"kernel {KernelH}x{KernelW}, stride {StrideH}x{StrideW}, padding {PadH}x{PadW}";
}

public partial interface IBackend
{
    /// <summary>y (N, C, Ho, Wo) = max over each window of x (N, C, H, W), padding counting as −inf; indices
    /// (int64, same shape as y) = h·W + w of the chosen element within its (H, W) plane: the first maximum in
    /// row-major window order, or the last NaN when the window holds NaN (NaN propagates, as in PyTorch).</summary>
    void MaxPool2d(Tensor x, Pool2dWindow window, Tensor y, Tensor indices);

    /// <summary>gx (N, C, H, W) = Σ of gy (N, C, Ho, Wo) over the outputs whose index points at each input element
    /// (zero elsewhere); overlapping windows accumulate.</summary>
    void MaxPool2dBackward(Tensor gy, Tensor indices, Tensor gx);

    /// <summary>y (N, C, Ho, Wo) [n, c, i, j] = x (N, C, H, W) [n, c, ⌊i·H/Ho⌋, ⌊j·W/Wo⌋] (exact integer arithmetic).</summary>
    void UpsampleNearest2d(Tensor x, Tensor y);

    /// <summary>gx (N, C, H, W) = Σ of gy (N, C, Ho, Wo) over the output pixels copied from each input pixel.</summary>
    void UpsampleNearest2dBackward(Tensor gy, Tensor gx);
}
