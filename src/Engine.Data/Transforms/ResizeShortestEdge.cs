// Resizes so the shorter side equals a size drawn per image from a list (multi-scale training), unless
// the longer side would then exceed MaxSize, in which case the longer side is MaxSize: the rule of
// detectron2's ResizeShortestEdge ("choice" sampling). New size: round(h·s) × round(w·s). Boxes and
// polygons are scaled by the exact ratios new/old of each axis, so they stay on the same pixels.
using Engine.Data.Imaging;
using Engine.Data.Records;

namespace Engine.Data.Transforms;

public sealed class ResizeShortestEdge : ITransform
{
    public ResizeShortestEdge(IReadOnlyList<int> shortEdgeSizes, int maxSize)
    {
        if (shortEdgeSizes is null || shortEdgeSizes.Count == 0 || shortEdgeSizes.Any(s => s <= 0))
            throw new ArgumentException($"ResizeShortestEdge: give at least one positive short-edge size (got [{string.Join(", ", shortEdgeSizes ?? [])}]).");
        if (maxSize <= 0) throw new ArgumentException($"ResizeShortestEdge: maxSize {maxSize} must be positive.");
        ShortEdgeSizes = shortEdgeSizes.ToArray();
        MaxSize = maxSize;
    }

    public IReadOnlyList<int> ShortEdgeSizes { get; }
    public int MaxSize { get; }

    /// <summary>Output (height, width) for an image of <paramref name="height"/>×<paramref name="width"/> and target short edge.</summary>
    public static (int Height, int Width) OutputSize(int height, int width, int shortEdge, int maxSize)
    {
        var scale = (double)shortEdge / Math.Min(height, width);
        if (Math.Max(height, width) * scale > maxSize) scale = (double)maxSize / Math.Max(height, width);
        return (Math.Max(1, (int)Math.Round(height * scale, MidpointRounding.AwayFromZero)),
                Math.Max(1, (int)Math.Round(width * scale, MidpointRounding.AwayFromZero)));
    }

    public Sample Apply(Sample sample, Generator generator)
    {
        var shortEdge = ShortEdgeSizes.Count == 1 ? ShortEdgeSizes[0] : ShortEdgeSizes[(int)generator.NextInt64(ShortEdgeSizes.Count)];
        var (h, w) = OutputSize(sample.Image.Height, sample.Image.Width, shortEdge, MaxSize);
        if (h == sample.Image.Height && w == sample.Image.Width) return sample;
        var sx = (float)((double)w / sample.Image.Width);
        var sy = (float)((double)h / sample.Image.Height);
        var instances = sample.Instances.Select(a => a with
        {
            BoxXyxy = [a.BoxXyxy[0] * sx, a.BoxXyxy[1] * sy, a.BoxXyxy[2] * sx, a.BoxXyxy[3] * sy],
            Polygons = a.Polygons.Select(p => Scale(p, sx, sy)).ToArray(),
        }).ToArray();
        return sample with { Image = Resize.Bilinear(sample.Image, w, h), Instances = instances };
    }

    private static float[] Scale(float[] polygon, float sx, float sy)
    {
        var r = new float[polygon.Length];
        for (var i = 0; i < r.Length; i += 2)
        {
            r[i] = polygon[i] * sx;
            r[i + 1] = polygon[i + 1] * sy;
        }
        return r;
    }
}
