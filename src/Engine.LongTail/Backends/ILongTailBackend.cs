// The device-specific half of the long-tail ops, in the manner of Engine.Core's IBackend: the ops in Ops/
// validate arguments, allocate outputs and record autograd; a backend only computes. Conventions for every
// member: tensors in, tensors out; outputs contiguous and allocated by the caller on the backend's device;
// inputs contiguous (the ops pass Contiguous() copies); logits float32 (N, K) row-major, labels int64 (N) with
// background = C (the engine's convention, section 0.1). Losses are written per row (rowLoss, N) together
// with their gradient (already multiplied by the normalizer `scale`, usually 1/N), in one pass. Labels outside a
// member's range ([0, K) for the softmax CE, [0, C] for FCBL, Seesaw and CRAT, non-negative for the sigmoid BCE and
// the confusion update) are refused with an ArgumentException naming the row: by the CPU backend before it writes,
// by the CUDA backend from its error record at the next wait.
namespace Engine.LongTail;

public interface ILongTailBackend
{
    Device Device { get; }

    /// <summary>Element-weighted sigmoid BCE (sections 1.4, 1.5, 1.7, 4.1): with t = logits, y_ij = [j = label_i]
    /// and w_ij = posWeight[j] when j = label_i, else negWeightForeground[j] for rows with label_i &lt; numForeground
    /// and negWeightBackground[j] for the other rows (K weights each):
    /// rowLoss_i = Σ_j w_ij·(softplus(t_ij) − y_ij·t_ij), gradLogits_ij = scale·w_ij·(σ(t_ij) − y_ij).
    /// A label ≥ K (a background row of a head without a background logit) has no positive column.
    /// When gradMagnitudePos/Neg (K) are given they receive Σ over rows of w_ij·|σ(t_ij) − y_ij| split by
    /// y_ij = 1 / 0 (EQLv2's statistics, section 1.5), accumulated in a fixed order.</summary>
    void WeightedSigmoidBce(Tensor logits, Tensor labels, int numForeground, Tensor posWeight, Tensor negWeightForeground,
                            Tensor negWeightBackground, double scale, Tensor rowLoss, Tensor gradLogits,
                            Tensor? gradMagnitudePos, Tensor? gradMagnitudeNeg);

    /// <summary>FCBL (section 4.2) on logits (N, C+1): margins δ_ij = alpha·(ln max(K[y][j], 1e-3) − ln max(K[j][y], 1e-3))
    /// for positive rows (j &lt; C, j ≠ y; 0 elsewhere) with K[a][b] = confusion[a][b] / max(counts[a], 1); when
    /// <paramref name="reweight"/>, the hard-negative mask ω of 4.2 step 2 from the raw logits (threshold
    /// probThreshold), else ω = 1. rowLoss_i = Σ_j ω_ij·BCE(t_ij + δ_ij, y_ij), gradLogits = scale·ω·(σ(t + δ) − y).
    /// confusion (C, C) and counts (C) are float32.</summary>
    void Fcbl(Tensor logits, Tensor labels, Tensor confusion, Tensor counts, double alpha, double probThreshold, bool reweight,
              double scale, Tensor rowLoss, Tensor gradLogits);

    /// <summary>FCBL's state update (section 4.2 step 4) from logits (N, C+1): for each positive row i in row order,
    /// confusion[y_i][:] += softmax(logits[i, 0..C-1]) and counts[y_i] += 1 (in place); rows labelled C or above are
    /// skipped.</summary>
    void AccumulateConfusion(Tensor logits, Tensor labels, Tensor confusion, Tensor counts);

    /// <summary>Class-weighted softmax CE (sections 1.1, 1.3): rowLoss_i = w[y_i]·(logsumexp(z_i) − z_i[y_i]),
    /// gradLogits_i = scale·w[y_i]·(softmax(z_i) − onehot(y_i)); weight float32 (K).</summary>
    void SoftmaxCrossEntropy(Tensor logits, Tensor labels, Tensor weight, double scale, Tensor rowLoss, Tensor gradLogits);

    /// <summary>Seesaw (section 1.6) on logits (N, C+2) = (class logits u, o_fg, o_bg) with cumulative label counts
    /// (int64, at least C entries; only the first C are read): for positive rows, CE of the shifted logits u_j + ln S_yj;
    /// for every row, the objectness CE. rowLoss_i = class term + objectness term; gradLogits = scale·∂rowLoss/∂logits
    /// with S detached.</summary>
    void Seesaw(Tensor logits, Tensor labels, Tensor counts, double p, double q, double eps, double scale, Tensor rowLoss, Tensor gradLogits);

    /// <summary>Segmented softmax along the rows of x (N, K): group g covers columns offsets[g]..offsets[g+1]-1
    /// (offsets int64 (G+1), from 0 to K, strictly increasing, on any device: they are read on the host); y = softmax
    /// within each group, or log-softmax.</summary>
    void GroupSoftmax(Tensor x, Tensor offsets, bool log, Tensor y);

    /// <summary>Gradient of GroupSoftmax from its output y and the output gradient gradY, per group:
    /// softmax gx = y·(g − Σ g·y); log-softmax gx = g − exp(y)·Σ g.</summary>
    void GroupSoftmaxBackward(Tensor y, Tensor gradY, Tensor offsets, bool log, Tensor gradX);

    /// <summary>LogN's EMA update (section 2.1) in place: per column k of logits (N ≥ 2, K), batch mean a_k and
    /// unbiased variance b_k (two passes, double), then mean = (1 − m)·mean + m·a, variance = (1 − m)·variance + m·b.</summary>
    void UpdateRunningStatistics(Tensor logits, double momentum, Tensor mean, Tensor variance);

    /// <summary>LogN `repo` mode's batch standardization (section 2.3) of logits (N ≥ 2, K), per column k: batch mean a_k
    /// and S_k = Σ_i (z_ik − a_k)² (two passes, double), r_k = 1/sqrt(S_k/N + eps) written to inverseSd (K), and
    /// y = (z − a)·r formed in double and rounded once. When mean and variance (K) are given, the same pass applies
    /// UpdateRunningStatistics' EMA to them (momentum m, unbiased S_k/(N − 1)).</summary>
    void StandardizeLogits(Tensor logits, double eps, Tensor y, Tensor inverseSd, Tensor? mean, Tensor? variance, double momentum);

    /// <summary>Gradient of StandardizeLogits from its output y, the output gradient gradY (N, K) and r (K), per column:
    /// gradX = r·(gradY − mean over rows of gradY − y·mean over rows of gradY·y), the sums in double.</summary>
    void StandardizeLogitsBackward(Tensor y, Tensor gradY, Tensor inverseSd, Tensor gradX);

    /// <summary>LogN's exact statistics (section 2.1) in place: merges the batch into the running count (int64 [1]),
    /// per-column mean and sum of squared deviations m2 (K) by Chan's pairwise update, in double per column.</summary>
    void MergeStatistics(Tensor logits, Tensor count, Tensor mean, Tensor m2);

    /// <summary>y = x·factor[0] for contiguous float32 x (any shape) and a one-element float32 factor on this device
    /// (the backward of a fused loss: the saved gradient times the upstream scalar gradient, without a host read).</summary>
    void Scale(Tensor x, Tensor factor, Tensor y);

    /// <summary>LogN's calibrated probabilities (section 2.2): per row of logits (N, K), t_j = (z_j − shift_j) / sd_j,
    /// then y = softmax(t) (or y = t when <paramref name="softmax"/> is false). shift and sd are float32 (K).</summary>
    void Calibrate(Tensor logits, Tensor shift, Tensor sd, bool softmax, Tensor y);

    /// <summary>CRAT's box transfusion step (section 3) for R RoIs with C = parameters.NumClasses, D = parameters.EmbeddingDim,
    /// N = <paramref name="normalizer"/> ≥ max(R, 1) and positives P = {n : labels_n &lt; C} (labels int64 (R) in 0..C):
    /// boxDeltas (R, 4C) class-major, embeddings (R, D) and targets (R, 4) float32; fisher float32 (C, 4D) is the bank,
    /// feature-major, coordinate-minor. When <paramref name="updateFisher"/> and P is not empty, first, in place,
    /// F[c] ← (1 − a)·F[c] + a·g_c² for every class present among the positives, g_c[4f+k] = (1/N)·Σ_{n∈P, y_n=c}
    /// sign(r_{n,c,k})·x_{n,f} with r_{n,c,k} = Δ_{n,4c+k} − t_{n,k} (the sum in double, in row order); otherwise the
    /// bank is only read. Then, from the bank as it now is, per positive row n: s_{n,c} = cos(q_n, F_c)/T with the query
    /// of parameters.Query, and the outputs (each overwritten in full, zero on background rows and everywhere when P is empty):
    /// weights (R, C) the gated w_{n,c} = u_c·softmax_{c ≠ y_n}(s_{n,c}) (u_c = [Σ F_c ≠ 0], w_{n,y_n} = 0);
    /// ungatedWeights (R, C, optional) the same softmax without the gate (the mask term's weights);
    /// extraGradient (R, 4C) λ_b·w_{n,c}·sign(r_{n,c,k}) (0 where w = 0), to add to the regressor's incoming gradient;
    /// rowLoss (R) λ_b·Σ_c w_{n,c}·Σ_k |r_{n,c,k}|, whose sum is the extra loss. The computation runs in double (the
    /// per-sample cosines come from a float32 product of unit-scale operands) and each output element is rounded to
    /// float32 once. A label outside 0..C is an error.</summary>
    void CratTransfuse(CratParameters parameters, Tensor boxDeltas, Tensor embeddings, Tensor targets, Tensor labels, int normalizer,
                       Tensor fisher, bool updateFisher, Tensor weights, Tensor? ungatedWeights, Tensor extraGradient, Tensor rowLoss);
}
