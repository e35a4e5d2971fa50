// Mirrors the image left–right with probability P. In pixel-edge coordinates (pixel x spans [x, x+1))
// a point x maps to W − x, so a box (x1, y1, x2, y2) becomes (W − x2, y1, W − x1, y2) and polygon
// vertices x → W − x; flipping twice is the identity.
using Engine.Data.Imaging;

namespace Engine.Data.Transforms;

public sealed class RandomHorizontalFlip : ITransform
{
    public RandomHorizontalFlip(double probability = 0.5)
    {
        if (probability is < 0 or > 1 || double.IsNaN(probability))
            throw new ArgumentException($"RandomHorizontalFlip: probability {probability} must be in [0, 1].");
        Probability = probability;
    }

    public double Probability { get; }

    public Sample Apply(Sample sample, Generator generator)
    {
        // Always draw, so the number of draws per sample does not depend on the outcome.
        var flip = generator.NextDouble() < Probability;
        return flip ? Flip(sample) : sample;
    }

    public static Sample Flip(Sample sample)
    {
        var image = sample.Image;
        float w = image.Width;
        var instances = sample.Instances.Select(a => a with
        {
            BoxXyxy = [w - a.BoxXyxy[2], a.BoxXyxy[1], w - a.BoxXyxy[0], a.BoxXyxy[3]],
            Polygons = a.Polygons.Select(p =>
            {
                var r = (float[])p.Clone();
                for (var i = 0; i < r.Length; i += 2) r[i] = w - r[i];
                return r;
            }).ToArray(),
        }).ToArray();
        return sample with { Image = FlipPixels(image), Instances = instances };
    }

    public static Image FlipPixels(Image image)
    {
        var c = image.Channels;
        var dst = new byte[image.Data.Length];
        for (var y = 0; y < image.Height; y++)
        {
            var src = image.Row(y);
            var o = dst.AsSpan(y * image.Stride, image.Stride);
            for (var x = 0; x < image.Width; x++)
                src.Slice(x * c, c).CopyTo(o.Slice((image.Width - 1 - x) * c, c));
        }
        return new Image(image.Width, image.Height, c, dst, image.Order);
    }
}
