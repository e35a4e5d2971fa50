// The last step of every pipeline: boxes are clipped to the image, [0, W] × [0, H], and instances whose
// clipped box is thinner than MinSize (1e-3 px) in either direction are dropped, so no degenerate box
// reaches the matcher or the box-regression targets (which divide by width and height).
namespace Engine.Data.Transforms;

public static class ClipBoxes
{
    public const float MinSize = 1e-3f;

    public static Sample Apply(Sample sample)
    {
        float w = sample.Image.Width, h = sample.Image.Height;
        var kept = new List<Records.InstanceAnnotation>(sample.Instances.Count);
        foreach (var a in sample.Instances)
        {
            var b = a.BoxXyxy;
            float[] clipped = [Math.Clamp(b[0], 0, w), Math.Clamp(b[1], 0, h), Math.Clamp(b[2], 0, w), Math.Clamp(b[3], 0, h)];
            // NaN coordinates fail both comparisons and are dropped too.
            if (!(clipped[2] - clipped[0] >= MinSize && clipped[3] - clipped[1] >= MinSize)) continue;
            kept.Add(clipped.AsSpan().SequenceEqual(b) ? a : a with { BoxXyxy = clipped });
        }
        return kept.Count == sample.Instances.Count && kept.Zip(sample.Instances).All(p => ReferenceEquals(p.First, p.Second))
            ? sample
            : sample with { Instances = kept };
    }
}
