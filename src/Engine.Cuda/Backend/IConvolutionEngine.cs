// What the CUDA backend needs from a convolution library: the three passes of a 2-D convolution on device
// pointers in the layouts of IBackend.Convolution.cs, queued on the backend's stream. CudnnConvolution
// implements it with cuDNN's legacy API, CudnnGraphConvolution with the graph API; CudaBackendOptions.ConvolutionApi
// picks one, and the backend's Convolution property takes any other implementation.
using Engine.Native;

namespace Engine.Cuda.Backend;

public interface IConvolutionEngine : IDisposable
{
    /// <summary>y = conv(x, w) (+ bias when not 0); x (N, CIn, H, W), w (COut, CIn/G, kh, kw), y (N, COut, OutH, OutW).</summary>
    void Forward(Conv2dGeometry g, ulong x, ulong w, ulong bias, ulong y);

    /// <summary>dx = ∂L/∂x from dy and w; dx overwritten.</summary>
    void BackwardData(Conv2dGeometry g, ulong dy, ulong w, ulong dx);

    /// <summary>dw = ∂L/∂w from x and dy, and dbias = Σ dy over (N, OutH, OutW) when not 0; both overwritten.</summary>
    void BackwardWeights(Conv2dGeometry g, ulong x, ulong dy, ulong dw, ulong dbias);

    /// <summary>What was chosen for each geometry and pass so far (one line each), for benchmarks and diagnostics.</summary>
    string Describe();
}
