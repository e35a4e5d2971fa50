// The shape of one 2-D convolution, shared by the oneDNN calls, the references and the tensor layer:
// input (N, CIn, H, W), weight (COut, CIn/Groups, KernelH, KernelW), bias (COut), output (N, COut, OutH, OutW).
// Construction validates everything and computes the output size
//   out = (in + 2*pad - dilation*(kernel-1) - 1) / stride + 1      (floor division)
// so that a bad geometry fails here, with its shapes in the message, and never inside native code.
namespace Engine.Native;

public sealed record Conv2dGeometry
{
    public int N { get; }
    public int CIn { get; }
    public int H { get; }
    public int W { get; }
    public int COut { get; }
    public int KernelH { get; }
    public int KernelW { get; }
    public int StrideH { get; }
    public int StrideW { get; }
    public int PadH { get; }
    public int PadW { get; }
    public int DilationH { get; }
    public int DilationW { get; }
    public int Groups { get; }
    public int OutH { get; }
    public int OutW { get; }

    /// <summary>Example: (N 1, CIn 3, 8×8, COut 4, 3×3, stride 2, pad 1) gives OutH = OutW = (8 + 2 - 2 - 1)/2 + 1 = 4.</summary>
    public Conv2dGeometry(int n, int cIn, int h, int w, int cOut, int kernelH, int kernelW,
                          int strideH = 1, int strideW = 1, int padH = 0, int padW = 0,
                          int dilationH = 1, int dilationW = 1, int groups = 1)
    {
        (N, CIn, H, W, COut, KernelH, KernelW) = (n, cIn, h, w, cOut, kernelH, kernelW);
        (StrideH, StrideW, PadH, PadW, DilationH, DilationW, Groups) = (strideH, strideW, padH, padW, dilationH, dilationW, groups);

        if (n < 0) Fail("the batch size N must be >= 0");
        if (cIn <= 0 || cOut <= 0 || h <= 0 || w <= 0) Fail("CIn, COut, H and W must be positive");
        if (kernelH <= 0 || kernelW <= 0) Fail("kernel sizes must be positive");
        if (strideH <= 0 || strideW <= 0) Fail("strides must be positive");
        if (dilationH <= 0 || dilationW <= 0) Fail("dilations must be positive (1 = no dilation)");
        if (padH < 0 || padW < 0) Fail("padding must be >= 0");
        if (groups <= 0) Fail("groups must be positive");
        if (cIn % groups != 0 || cOut % groups != 0)
            Fail($"groups={groups} must divide both CIn={cIn} and COut={cOut}; pick channel counts that are multiples of groups");
        var spanH = dilationH * (kernelH - 1) + 1;
        var spanW = dilationW * (kernelW - 1) + 1;
        if (h + 2 * padH < spanH || w + 2 * padW < spanW)
            Fail($"the dilated kernel ({spanH}x{spanW}) is larger than the padded input ({h + 2 * padH}x{w + 2 * padW}); " +
                 "use a larger input, more padding or a smaller kernel/dilation");
        OutH = (h + 2 * padH - spanH) / strideH + 1;
        OutW = (w + 2 * padW - spanW) / strideW + 1;
    }

    /// <summary>Square kernel, stride, padding and dilation.</summary>
    public static Conv2dGeometry Square(int n, int cIn, int h, int w, int cOut, int kernel, int stride = 1, int pad = 0,
                                        int dilation = 1, int groups = 1) =>
        new(n, cIn, h, w, cOut, kernel, kernel, stride, stride, pad, pad, dilation, dilation, groups);

    public int CInPerGroup => CIn / Groups;
    public int COutPerGroup => COut / Groups;
    public long SrcLength => (long)N * CIn * H * W;
    public long WeightLength => (long)COut * CInPerGroup * KernelH * KernelW;
    public long DstLength => (long)N * COut * OutH * OutW;
    public long BiasLength => COut;

    /// <summary>Multiply-adds × 2 of the forward pass; backward-data and backward-weights do the same count.</summary>
    public double Flops => 2.0 * N * COut * OutH * OutW * CInPerGroup * KernelH * KernelW;

    public EngineConv2dDesc ToNative() => new()
    {
        N = N, CIn = CIn, H = H, W = W, COut = COut, KernelH = KernelH, KernelW = KernelW,
        StrideH = StrideH, StrideW = StrideW, PadH = PadH, PadW = PadW,
        DilationH = DilationH, DilationW = DilationW, Groups = Groups, OutH = OutH, OutW = OutW,
    };

    public override string ToString() =>
        $"conv2d input ({N}, {CIn}, {H}, {W}), weight ({COut}, {CInPerGroup}, {KernelH}, {KernelW}), " +
        $"stride {StrideH}x{StrideW}, pad {PadH}x{PadW}, dilation {DilationH}x{DilationW}, groups {Groups}, " +
        $"output ({N}, {COut}, {OutH}, {OutW})";

    private void Fail(string what) =>
        throw new ArgumentException(
            $"Conv2dGeometry: {what} (input ({N}, {CIn}, {H}, {W}), kernel {KernelH}x{KernelW}, COut {COut}, " +
            $"stride {StrideH}x{StrideW}, pad {PadH}x{PadW}, dilation {DilationH}x{DilationW}, groups {Groups}).");
}
