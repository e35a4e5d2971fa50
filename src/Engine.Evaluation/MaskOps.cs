// Segmentations as COCO masks for segm evaluation (lvis-eval.md section 3): GT polygons rasterised at
// the image size with COCO's rasteriser and unioned (a list whose first entry has exactly 4 numbers is
// read as [x, y, w, h] boxes, the pycocotools rule), RLEs used at their own size, and a detection
// without a segmentation given its box as a 4-point polygon, as LVISResults does. Masks are built per
// (image, category) group inside the parallel loop and dropped after it, so memory stays bounded.
using Engine.Lvis;
using Engine.Lvis.Masks;

namespace Engine.Evaluation;

internal sealed class MaskOps : IMaskOps
{
    public static readonly MaskOps Instance = new();

    public double Area(LvisSegmentation segmentation, LvisImage image) => MaskApi.Area(ToRle(segmentation, image));

    public double[] Box(LvisSegmentation segmentation, LvisImage image)
    {
        var (x, y, w, h) = MaskApi.ToBox(ToRle(segmentation, image));
        return [x, y, w, h];
    }

    public IouSource CreateIouSource(GroundTruthIndex gt, DetectionSelection dets, LvisResults results) => new MaskIouSource(gt, dets, results);

    internal static Rle ToRle(LvisSegmentation segmentation, LvisImage image)
    {
        try
        {
            switch (segmentation)
            {
                case PolygonSegmentation p:
                    if (p.Polygons.Count == 0)
                        throw new FormatException($"image {image.Id}: a polygon segmentation holds no polygon");
                    if (p.Polygons[0].Length == 4)
                    {
                        var boxes = new Rle[p.Polygons.Count];
                        for (int i = 0; i < boxes.Length; i++)
                        {
                            var b = p.Polygons[i];
                            if (b.Length != 4)
                                throw new FormatException($"image {image.Id}: a segmentation read as boxes (first entry has 4 numbers) has an entry of {b.Length} numbers");
                            boxes[i] = MaskApi.FromBox(b[0], b[1], b[2], b[3], image.Height, image.Width);
                        }
                        return MaskApi.Merge(boxes);
                    }
                    return MaskApi.FromPolygons(p.Polygons, image.Height, image.Width);
                case CompressedRleSegmentation c:
                    return MaskApi.FromCompressedString(c.Counts, c.Height, c.Width);
                case UncompressedRleSegmentation u:
                    return MaskApi.FromUncompressedCounts(u.Counts, u.Height, u.Width);
                default:
                    throw new FormatException($"image {image.Id}: unknown segmentation type {segmentation.GetType().Name}");
            }
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"image {image.Id} ({image.Height}x{image.Width}): invalid segmentation: {e.Message}", e);
        }
    }

    private sealed class MaskIouSource(GroundTruthIndex gt, DetectionSelection dets, LvisResults results) : IouSource
    {
        public override void Compute(int image, int detStart, int detCount, int gtStart, int gtCount, Span<double> iou)
        {
            var img = gt.Images[image];
            var dtMasks = new Rle[detCount];
            for (int d = 0; d < detCount; d++)
            {
                int source = dets.Source[detStart + d];
                var seg = results.Segmentation(source);
                if (seg is not null)
                {
                    dtMasks[d] = ToRle(seg, img);
                }
                else if (results.HasBox[source])
                {
                    var b = results.Boxes.Slice(4 * source, 4);
                    dtMasks[d] = MaskApi.FromBox(b[0], b[1], b[2], b[3], img.Height, img.Width);
                }
                else
                {
                    throw new ArgumentException($"results: detection #{source} (image {img.Id}) has neither a segmentation nor a bbox");
                }
            }
            var gtMasks = new Rle[gtCount];
            for (int g = 0; g < gtCount; g++)
            {
                var ann = gt.Dataset.Annotations[gt.GtSource[gtStart + g]];
                gtMasks[g] = ToRle(ann.Segmentation ?? throw new FormatException(
                    $"ground truth: annotation {ann.Id} has no segmentation; segm evaluation needs one on every annotation"), img);
            }
            MaskApi.Iou(dtMasks, gtMasks, default, iou);
        }
    }
}
