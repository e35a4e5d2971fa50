// Backend primitives of the normalization family: group normalization (statistics per sample and group of
// channels) and batch normalization (statistics per channel over the batch and the spatial positions), each
// a fused statistics-and-write forward and a closed-form backward, so a norm layer costs two passes over its
// input instead of a chain of element-wise launches with full-size temporaries.
// Every tensor here is contiguous float32; x, y, dy and dx are viewed as (N, C, S) with S the product of the
// dims after the channel dim. weight and bias are (C) and may be null (no affine: w = 1, b = 0).
namespace Engine;

public partial interface IBackend
{
    /// <summary>Group normalization of x (N, C, S) with G = <paramref name="groups"/> (C divisible by G): per
    /// (n, g), over its C/G channels × S positions, μ and the biased variance σ²; rstd = 1/sqrt(σ² + eps) and
    /// y = (x − μ)·rstd·w[c] + b[c]. Writes y (N, C, S), mean (N, G) = μ and rstd (N, G) for the backward.</summary>
    void GroupNormForward(Tensor x, int groups, Tensor? weight, Tensor? bias, double eps, Tensor y, Tensor mean, Tensor rstd);

    /// <summary>Gradients of GroupNormForward from the output gradient dy (N, C, S), the same x and weight and the
    /// saved mean and rstd (N, G). With x̂ = (x − μ)·rstd, m = (C/G)·S and per (n, g) the sums
    /// A = Σ dy·w and B = Σ dy·w·x̂: dx = rstd·(dy·w[c] − A/m − x̂·B/m); dweight[c] = Σ_{n,s} dy·x̂;
    /// dbias[c] = Σ_{n,s} dy. Each output may be null when it is not needed.</summary>
    void GroupNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, int groups, Tensor? weight,
                           Tensor? dx, Tensor? dweight, Tensor? dbias);

    /// <summary>Training-mode batch normalization of x (N, C, S): per channel over its N·S values the mean μ and the
    /// biased variance σ², rstd = 1/sqrt(σ² + eps) and y = (x − μ)·rstd·w[c] + b[c]. Writes y, and mean, variance
    /// (biased) and rstd (C) for the running statistics and the backward.</summary>
    void BatchNormTrainingForward(Tensor x, Tensor? weight, Tensor? bias, double eps, Tensor y, Tensor mean, Tensor variance, Tensor rstd);

    /// <summary>y = (x − mean[c])·rstd[c]·w[c] + b[c] for x, y (N, C, S) and given mean, rstd (C): batch normalization
    /// in evaluation mode, with the running statistics. With <paramref name="relu"/>, y = relu of that in the same pass
    /// (NaN stays NaN, as UnaryOp.Relu): a frozen batch norm followed by its ReLU.</summary>
    void BatchNormForward(Tensor x, Tensor mean, Tensor rstd, Tensor? weight, Tensor? bias, Tensor y, bool relu = false);

    /// <summary>The input gradient of BatchNormForward in evaluation mode: dx = dy·scale[c], scale[c] the float rounding
    /// of rstd[c]·w[c]; with <paramref name="reluOutput"/>, the forward's output when it applied the ReLU (positive exactly
    /// where the ReLU passed its input), dx = (y > 0 ? dy : 0)·scale[c]. The same bits as BinaryOp.ReluBackward (when
    /// masked) followed by the product with the channel scale, in one pass over dy (and y).</summary>
    void BatchNormScaleBackward(Tensor dy, Tensor? reluOutput, Tensor rstd, Tensor? weight, Tensor dx);

    /// <summary>Gradients of BatchNormForward. With x̂ = (x − mean)·rstd, m = N·S and per channel s0 = Σ dy,
    /// s1 = Σ dy·x̂: dweight = s1, dbias = s0; when <paramref name="training"/> mean and rstd are the batch's own
    /// statistics and dx = w·rstd·(dy − s0/m − x̂·s1/m), otherwise they are constants and dx = w·rstd·dy.
    /// Each output may be null when it is not needed.</summary>
    void BatchNormBackward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor? weight, bool training,
                           Tensor? dx, Tensor? dweight, Tensor? dbias);
}
