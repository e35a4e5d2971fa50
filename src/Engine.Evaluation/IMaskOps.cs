// The mask operations the evaluator needs from the format library, behind an interface so the bbox
// path does not touch masks at all: the area and box of a detection's segmentation (results without
// boxes), and the IoU source for segm evaluation.
using Engine.Lvis;

namespace Engine.Evaluation;

internal interface IMaskOps
{
    /// <summary>Pixel count of a segmentation rasterised at the image's size (or the RLE's own size).</summary>
    double Area(LvisSegmentation segmentation, LvisImage image);

    /// <summary>Tight [x, y, w, h] box of a segmentation's mask.</summary>
    double[] Box(LvisSegmentation segmentation, LvisImage image);

    IouSource CreateIouSource(GroundTruthIndex gt, DetectionSelection dets, Lvis.LvisResults results);
}
