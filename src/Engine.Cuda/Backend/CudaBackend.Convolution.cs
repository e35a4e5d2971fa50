// 2-D convolution on the GPU through an IConvolutionEngine (cuDNN's legacy or graph API, as
// CudaBackendOptions.ConvolutionApi says; the graph API by default). An empty batch
// writes zero weight and bias gradients (cuDNN rejects N = 0). cacheWeight is accepted and ignored: cuDNN
// reads the plain weight layout directly, so there is no transformed copy to keep.
using Engine.Native;

namespace Engine.Cuda.Backend;

public sealed unsafe partial class CudaBackend
{
    private IConvolutionEngine? _convolution;
    private readonly Lock _convolutionGate = new();

    /// <summary>The convolution library; replace it (before the first convolution) to use another implementation.</summary>
    public IConvolutionEngine Convolution
    {
        get
        {
            lock (_convolutionGate)
                return _convolution ??= Options.ConvolutionApi == CudnnApi.Graph
                    ? new CudnnGraphConvolution(CudaDevice, Stream, Memory, Options.AllowTf32, Options.ConvolutionSearchLimit)
                    : new CudnnConvolution(CudaDevice, Stream, Memory, Options.AllowTf32);
        }
        set
        {
            lock (_convolutionGate)
            {
                _convolution?.Dispose();
                _convolution = value;
            }
        }
    }

    public void Conv2dForward(Conv2dGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y, bool cacheWeight)
    {
        CheckConvOperand("x", x, g.SrcLength, g);
        CheckConvOperand("w", w, g.WeightLength, g);
        if (bias is not null) CheckConvOperand("bias", bias, g.BiasLength, g);
        CheckConvOperand("y", y, g.DstLength, g);
        Convolution.Forward(g, Ptr(x), Ptr(w), PtrOrZero(bias), Ptr(y));
    }

    public void Conv2dBackwardData(Conv2dGeometry g, Tensor dy, Tensor w, Tensor dx, bool cacheWeight)
    {
        CheckConvOperand("dy", dy, g.DstLength, g);
        CheckConvOperand("w", w, g.WeightLength, g);
        CheckConvOperand("dx", dx, g.SrcLength, g);
        Convolution.BackwardData(g, Ptr(dy), Ptr(w), Ptr(dx));
    }

    public void Conv2dBackwardWeights(Conv2dGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? dbias)
    {
        CheckConvOperand("x", x, g.SrcLength, g);
        CheckConvOperand("dy", dy, g.DstLength, g);
        CheckConvOperand("dw", dw, g.WeightLength, g);
        if (dbias is not null) CheckConvOperand("dbias", dbias, g.BiasLength, g);
        if (g.N == 0)
        {
            Fill(dw, 0);
            if (dbias is not null) Fill(dbias, 0);
            return;
        }
        Convolution.BackwardWeights(g, Ptr(x), Ptr(dy), Ptr(dw), PtrOrZero(dbias));
    }

    private void CheckConvOperand(string name, Tensor t, long expected, Conv2dGeometry g)
    {
        Require("conv2d", name, t);
        if (t.DType != DType.Float32 || !t.IsContiguous || t.Numel != expected)
            throw new InvalidOperationException(
                $"CudaBackend.conv2d: {name} must be a contiguous float32 tensor of {expected} elements, got {t.DType.Name()} " +
                $"{ShapeUtil.Format(t.Shape)}{(t.IsContiguous ? "" : " (non-contiguous)")} ({g}).");
    }
}
