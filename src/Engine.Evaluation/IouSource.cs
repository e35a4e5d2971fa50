// Where the IoU matrix of one (image, category) group comes from: boxes for bbox evaluation, masks for
// segm. Chosen once per evaluation, so the matching loop does not branch on the IoU type.
namespace Engine.Evaluation;

internal abstract class IouSource
{
    /// <summary>Fills iou[d * gtCount + g] (dt-major) for kept detections [detStart, detStart + detCount) of the
    /// selection and kept annotations [gtStart, gtStart + gtCount) of the GT index, all in image
    /// <paramref name="image"/>. Detections are in matching order (score descending), GT in file order.</summary>
    public abstract void Compute(int image, int detStart, int detCount, int gtStart, int gtCount, Span<double> iou);
}

internal sealed class BoxIouSource : IouSource
{
    private readonly GroundTruthIndex _gt;
    private readonly DetectionSelection _dets;

    public BoxIouSource(GroundTruthIndex gt, DetectionSelection dets)
    {
        _gt = gt;
        _dets = dets;
        for (int j = 0; j < gt.GtHasBox.Length; j++)
        {
            if (!gt.GtHasBox[j])
                throw new FormatException($"ground truth: annotation {gt.Dataset.Annotations[gt.GtSource[j]].Id} has no \"bbox\"; bbox evaluation needs one on every annotation");
        }
    }

    public override void Compute(int image, int detStart, int detCount, int gtStart, int gtCount, Span<double> iou) =>
        BoxIou.Compute(_dets.Box.AsSpan(4 * detStart, 4 * detCount), _gt.GtBox.AsSpan(4 * gtStart, 4 * gtCount), default, iou);
}
