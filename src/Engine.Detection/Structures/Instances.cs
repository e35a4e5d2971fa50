// The per-image annotations and predictions that flow between the detector's stages, as detectron2's
// Instances: ground truth (boxes XYXY (R, 4) float32 in the image's pixels, classes int64 (R) in [0, K)) on
// the way in, detections (boxes (R, 4), scores (R), classes int64 (R)) on the way out. Fields are optional so
// one type serves both directions; the object owns and disposes the tensors it holds.
namespace Engine.Detection;

public sealed class Instances : IDisposable
{
    public Instances((int Height, int Width) imageSize) => ImageSize = imageSize;

    /// <summary>Ground truth of one image: boxes (R, 4) XYXY and classes int64 (R); both are owned from now on.</summary>
    public static Instances FromGroundTruth((int Height, int Width) imageSize, Tensor boxes, Tensor classes)
    {
        Boxes.Check(boxes, "Instances.FromGroundTruth", "gt boxes");
        if (classes.DType != DType.Int64 || classes.Rank != 1 || classes.Size(0) != boxes.Size(0))
            throw new ArgumentException($"Instances.FromGroundTruth: gt classes must be int64 ({boxes.Size(0)}) to match boxes {ShapeUtil.Format(boxes.Shape)}, " +
                                        $"got {classes.DType.Name()}{ShapeUtil.Format(classes.Shape)}.");
        return new Instances(imageSize) { GtBoxes = boxes, GtClasses = classes };
    }

    /// <summary>(h, w) of the image the boxes refer to.</summary>
    public (int Height, int Width) ImageSize { get; }

    /// <summary>(R, 4) XYXY ground-truth boxes.</summary>
    public Tensor? GtBoxes { get; init; }

    /// <summary>(R) int64 ground-truth classes in [0, K).</summary>
    public Tensor? GtClasses { get; init; }

    /// <summary>(R, 4) XYXY predicted boxes.</summary>
    public Tensor? PredBoxes { get; init; }

    /// <summary>(R) float32 detection scores, descending.</summary>
    public Tensor? Scores { get; init; }

    /// <summary>(R) int64 predicted classes in [0, K).</summary>
    public Tensor? PredClasses { get; init; }

    /// <summary>Number of instances (rows of whichever box field is set).</summary>
    public int Count => (GtBoxes ?? PredBoxes)?.Size(0) ?? 0;

    public void Dispose()
    {
        GtBoxes?.Dispose();
        GtClasses?.Dispose();
        PredBoxes?.Dispose();
        Scores?.Dispose();
        PredClasses?.Dispose();
    }
}
