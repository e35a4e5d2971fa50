// Backend primitives of 2-D convolution (Ops/Tensor.Convolution.cs): forward, the gradient of the
// input (backward-data) and the gradients of the weights and bias (backward-weights), all described by
// one Conv2dGeometry. Layouts: x (N, CIn, H, W), w (COut, CIn/G, kh, kw), bias (COut),
// y (N, COut, OutH, OutW), every tensor contiguous float32; outputs are overwritten, never accumulated into.
using Engine.Native;

namespace Engine;

public partial interface IBackend
{
    /// <summary>y = conv(x, w) + bias; <paramref name="bias"/> may be null. When <paramref name="cacheWeight"/>
    /// is true, w is a long-lived tensor (a parameter) whose storage version is bumped by every write to it,
    /// so the backend may keep w transformed into its own layout, keyed by w's storage id and version.</summary>
    void Conv2dForward(Conv2dGeometry g, Tensor x, Tensor w, Tensor? bias, Tensor y, bool cacheWeight);

    /// <summary>dx = ∂L/∂x from dy = ∂L/∂y and the forward weights (cacheWeight as in Conv2dForward).</summary>
    void Conv2dBackwardData(Conv2dGeometry g, Tensor dy, Tensor w, Tensor dx, bool cacheWeight);

    /// <summary>dw = ∂L/∂w and, unless <paramref name="dbias"/> is null, dbias = ∂L/∂bias, from the forward
    /// input x and dy.</summary>
    void Conv2dBackwardWeights(Conv2dGeometry g, Tensor x, Tensor dy, Tensor dw, Tensor? dbias);
}
