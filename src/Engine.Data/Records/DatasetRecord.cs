// What the loader needs to know about one training or evaluation image: where it is, its size, and its
// annotated instances with contiguous class indices. Dataset formats (LVIS/COCO JSON, the synthetic
// generator) convert to these records; everything downstream of the reader sees only them.
namespace Engine.Data.Records;

/// <summary>One annotated object. <paramref name="CategoryIndex"/> is contiguous in 0..K-1 (LVIS category id minus one for
/// datasets whose ids are 1..K). <paramref name="BoxXyxy"/> is (x1, y1, x2, y2) in pixels; each polygon is
/// (x0, y0, x1, y1, ...) in the same coordinates.</summary>
public sealed record InstanceAnnotation(int CategoryIndex, float[] BoxXyxy, IReadOnlyList<float[]> Polygons)
{
    public float Width => BoxXyxy[2] - BoxXyxy[0];
    public float Height => BoxXyxy[3] - BoxXyxy[1];
}

/// <summary>An image of a dataset and its instances. <paramref name="Height"/> and <paramref name="Width"/> are those the
/// dataset declares (the decoded JPEG must agree).</summary>
public sealed record DatasetRecord(long ImageId, string FilePath, int Height, int Width, IReadOnlyList<InstanceAnnotation> Instances)
{
    /// <summary>The distinct class indices present in this image's annotations, ascending.</summary>
    public int[] ClassesPresent() => Instances.Select(a => a.CategoryIndex).Distinct().Order().ToArray();
}
