// Backend primitives of the softmax family: softmax / log-softmax along one dim (forward and backward)
// and the fused cross-entropy (log-softmax + target gather + class weights + label smoothing) with its
// one backward. Each works on contiguous tensors viewed as (outer, n, inner) or (N, C), so one kernel
// covers every dim and the op layer never chains small element-wise launches for these.
namespace Engine;

public partial interface IBackend
{
    /// <summary>y = softmax(x) (or log_softmax(x) when <paramref name="log"/>) along n of contiguous float32 x
    /// viewed as (outer, n, inner); y is contiguous with x's shape. Max-subtracted, so finite for any finite x.</summary>
    void Softmax(Tensor x, long outer, long n, long inner, bool log, Tensor y);

    /// <summary>Gradient of softmax / log_softmax from the forward output y and the output gradient g (both
    /// contiguous, (outer, n, inner)): softmax gx = y·(g − Σₙ g·y); log_softmax gx = g − exp(y)·Σₙ g.</summary>
    void SoftmaxBackward(Tensor y, Tensor g, long outer, long n, long inner, bool log, Tensor gx);

    /// <summary>Per-row cross-entropy of contiguous float32 logits (N, C) against int64 target (N), with
    /// optional float32 class weights w (C) and label smoothing ε (PyTorch semantics):
    /// loss_i = (1−ε)·w[y_i]·(lse_i − x[i, y_i]) + (ε/C)·Σ_c w[c]·(lse_i − x[i, c]), 0 for rows whose target is
    /// <paramref name="ignoreIndex"/>. Writes loss (N), rowWeight (N) = w[y_i] (1 unweighted; 0 when ignored)
    /// and logSumExp (N) = lse_i for the backward. Throws ArgumentException naming the value, row and C when
    /// a target is neither ignoreIndex nor in [0, C).</summary>
    void CrossEntropyForward(Tensor logits, Tensor target, Tensor? weight, long ignoreIndex, double labelSmoothing,
                             Tensor loss, Tensor rowWeight, Tensor logSumExp);

    /// <summary>gradLogits (N, C) = ∂(Σ_i gradRow_i · loss_i)/∂logits for the loss of CrossEntropyForward, from the
    /// same logits, target, weight and the saved logSumExp. gradRow (N) may be strided (stride 0 when a
    /// reduction broadcasts one scalar gradient); rows whose target is ignoreIndex get zeros.</summary>
    void CrossEntropyBackward(Tensor logits, Tensor target, Tensor? weight, Tensor logSumExp, Tensor gradRow,
                              long ignoreIndex, double labelSmoothing, Tensor gradLogits);
}
