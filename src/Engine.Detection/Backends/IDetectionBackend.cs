// The device-specific half of the detection ops, in the manner of Engine.Core's IBackend: the ops in
// Layers/, Structures/ and Modeling/ validate arguments, allocate outputs and record autograd; a backend
// only computes. Conventions: tensors in, tensors out, outputs contiguous and allocated by the caller on
// the backend's device; inputs contiguous unless a member says otherwise (the ops pass Contiguous() copies).
namespace Engine.Detection;

/// <summary>The fixed parameters of one ROIAlign call (torchvision roi_align semantics).</summary>
/// <param name="PooledHeight">Ph, output bins per RoI vertically.</param>
/// <param name="PooledWidth">Pw.</param>
/// <param name="Scales">spatial scale (feature size / image size, e.g. 1/8) of each feature level.</param>
/// <param name="SamplingRatio">samples per bin along each axis; 0 = adaptive, ceil(roi size / pooled size).</param>
/// <param name="Aligned">shift box coordinates by -0.5 so that pixel centers sit at integer + 0.5 (Detectron2's
/// ROIAlignV2); when false, RoIs are at least 1×1 feature pixels as in the original ROIAlign.</param>
public sealed record RoiAlignGeometry(int PooledHeight, int PooledWidth, IReadOnlyList<double> Scales, int SamplingRatio, bool Aligned);

/// <summary>Weights (wx, wy, ww, wh) of the R-CNN box parameterization and the clamp on dw, dh before exp.</summary>
public readonly record struct BoxCoderWeights(double X, double Y, double W, double H);

/// <summary>The proposal matcher's rule: quality thresholds (ascending, without the ±∞ ends) and one label
/// per interval (labels.Count = thresholds.Count + 1, each -1 ignore, 0 negative, 1 positive).</summary>
public sealed record MatcherRule(IReadOnlyList<double> Thresholds, IReadOnlyList<int> Labels, bool AllowLowQualityMatches);

/// <summary>The FPN level rule of Lin et al., "Feature Pyramid Networks", Eqn. 1, as detectron2's assign_boxes_to_levels:
/// a box of size s = sqrt(area) pools from level floor(CanonicalLevel + log2(s / CanonicalBoxSize + 1e-8)), clamped to
/// [MinLevel, MaxLevel], evaluated in float32.</summary>
public readonly record struct FpnLevelRule(int MinLevel, int MaxLevel, int CanonicalBoxSize = 224, int CanonicalLevel = 4);

public interface IDetectionBackend
{
    Device Device { get; }

    /// <summary>iou (N, M) = detectron2 pairwise_iou of boxes a (N, 4) and b (M, 4), XYXY float32:
    /// intersection / union where the intersection is positive, else 0.</summary>
    void PairwiseIou(Tensor a, Tensor b, Tensor iou);

    /// <summary>deltas (R, 4) that turn src (R, 4) into target (R, 4) under the R-CNN parameterization.
    /// Throws when a source box has a non-positive width or height.</summary>
    void EncodeBoxes(Tensor src, Tensor target, BoxCoderWeights weights, Tensor deltas);

    /// <summary>output (R, K·4) = deltas (R, K·4) applied to boxes (R, 4); dw, dh clamped above at scaleClamp.</summary>
    void DecodeBoxes(Tensor deltas, Tensor boxes, BoxCoderWeights weights, double scaleClamp, Tensor output);

    /// <summary>output (R, C, Ph, Pw) from feature levels (N, C, H_l, W_l) and rois (R, 5) = (batch index, x1, y1,
    /// x2, y2) in image coordinates; levels (R) int64 picks each RoI's feature level (null: all on level 0).
    /// Every output element is written.</summary>
    void RoiAlignForward(RoiAlignGeometry geometry, IReadOnlyList<Tensor> features, Tensor rois, Tensor? levels, Tensor output);

    /// <summary>Gradient of RoiAlignForward with respect to each feature level: gradFeatures[l] (same shape as level
    /// l, or null when that level needs no gradient) is overwritten with the bilinear scatter of gradOutput
    /// (R, C, Ph, Pw). Deterministic: the same inputs give bit-identical gradients on every run.</summary>
    void RoiAlignBackward(RoiAlignGeometry geometry, Tensor gradOutput, Tensor rois, Tensor? levels, IReadOnlyList<Tensor?> gradFeatures);

    /// <summary>levels (R) int64 = each RoI's FPN level under <paramref name="rule"/>, relative to MinLevel (in [0, MaxLevel −
    /// MinLevel]), from rois (R, 5) = (batch index, x1, y1, x2, y2). An RoI whose size is NaN (an inverted box, a NaN
    /// coordinate) goes to the finest level.</summary>
    void AssignFpnLevels(Tensor rois, FpnLevelRule rule, Tensor levels);

    /// <summary>Greedy NMS. boxes (R, 4), scores (R) float32; classIds (R) int64 or null (one class). Writes the kept
    /// indices, by decreasing score (ties: lower index first), to the start of keep (R) int64 and returns their count.
    /// A box is suppressed by a kept box of the same class with IoU strictly above iouThreshold.</summary>
    int Nms(Tensor boxes, Tensor scores, Tensor? classIds, double iouThreshold, Tensor keep);

    /// <summary>Matches N predictions to M ground-truth elements from quality (M, N) float32 (all ≥ 0): matches (N) int64
    /// gets the best element (first on ties), labels (N) int64 the label of the interval its quality falls in.</summary>
    void MatchProposals(Tensor quality, MatcherRule rule, Tensor matches, Tensor labels);
}
