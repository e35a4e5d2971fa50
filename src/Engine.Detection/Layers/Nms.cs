// Non-maximum suppression: greedy IoU NMS with torchvision's semantics (a box is dropped when a kept box of
// higher score overlaps it with IoU strictly above the threshold) and the class-aware batched form, which only
// compares boxes of the same class. Results are int64 indices into the input, by decreasing score; equal scores
// keep their input order. Not differentiable (indices only).
namespace Engine.Detection;

public static partial class DetectionOps
{
    /// <summary>Indices of the boxes (R, 4) kept by greedy NMS over scores (R), by decreasing score.</summary>
    public static Tensor Nms(Tensor boxes, Tensor scores, double iouThreshold) => NmsCore("Nms", boxes, scores, null, iouThreshold);

    /// <summary>Class-aware NMS: boxes of different classIds (R, int64) never suppress each other. Each class is processed
    /// on its own (cost Σ n_c² rather than R²); the result merges all classes by decreasing score.</summary>
    public static Tensor BatchedNms(Tensor boxes, Tensor scores, Tensor classIds, double iouThreshold) =>
        NmsCore("BatchedNms", boxes, scores, classIds, iouThreshold);

    private static Tensor NmsCore(string op, Tensor boxes, Tensor scores, Tensor? classIds, double iouThreshold)
    {
        Boxes.Check(boxes, op);
        var r = boxes.Size(0);
        if (scores.DType != DType.Float32 || scores.Rank != 1 || scores.Size(0) != r)
            throw new ArgumentException($"{op}: scores must be float32 of shape ({r}) to match boxes {ShapeUtil.Format(boxes.Shape)}, got {scores.DType.Name()}{ShapeUtil.Format(scores.Shape)}.");
        if (classIds is not null && (classIds.DType is not (DType.Int64 or DType.Int32) || classIds.Rank != 1 || classIds.Size(0) != r))
            throw new ArgumentException($"{op}: classIds must be int64 (or int32) of shape ({r}) to match boxes {ShapeUtil.Format(boxes.Shape)}, got {classIds.DType.Name()}{ShapeUtil.Format(classIds.Shape)}.");
        if (double.IsNaN(iouThreshold))
            throw new ArgumentException($"{op}: the IoU threshold is NaN; give a value such as 0.5 or 0.7.");
        if (scores.Device != boxes.Device || (classIds is not null && classIds.Device != boxes.Device))
            throw new ArgumentException($"{op}: boxes, scores and class ids must be on one device (boxes on {boxes.Device}, scores on {scores.Device}{(classIds is null ? "" : $", class ids on {classIds.Device}")}).");

        using var noGrad = GradMode.NoGrad();
        using var b = boxes.Contiguous();
        using var s = scores.Contiguous();
        using var c = classIds is null ? null : classIds.DType == DType.Int64 ? classIds.Contiguous() : classIds.To(DType.Int64);
        var keep = Tensor.Empty([r], DType.Int64, boxes.Device);
        int count;
        try { count = DetectionBackends.For(boxes.Device).Nms(b, s, c, iouThreshold, keep); }
        catch
        {
            keep.Dispose();
            throw;
        }
        if (count == r) return keep;
        using (keep)
        using (var head = keep.Narrow(0, 0, count))
            return head.Clone();
    }
}
