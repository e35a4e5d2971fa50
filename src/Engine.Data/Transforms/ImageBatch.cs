// A batch of N transformed images ready for the model: pixels normalized into one zero-padded
// (N, 3, Hp, Wp) float32 tensor whose Hp, Wp are the largest height and width rounded up to a
// multiple of SizeDivisibility (32 for an FPN with strides up to 32), each image's own (h, w) so the
// padding can be ignored, and the per-image targets: boxes (R_i, 4) xyxy float32 and class indices
// (R_i) int64, plus polygons for mask targets. Owns its tensors: Dispose frees them.
using Engine.Data.Records;

namespace Engine.Data.Transforms;

public sealed class ImageBatch : IDisposable
{
    internal ImageBatch(long index, Tensor images, IReadOnlyList<(int Height, int Width)> imageSizes,
                        IReadOnlyList<(int Height, int Width)> originalSizes, IReadOnlyList<long> imageIds,
                        IReadOnlyList<Tensor> boxes, IReadOnlyList<Tensor> classes, IReadOnlyList<IReadOnlyList<InstanceAnnotation>> instances)
    {
        Index = index;
        Images = images;
        ImageSizes = imageSizes;
        OriginalSizes = originalSizes;
        ImageIds = imageIds;
        Boxes = boxes;
        Classes = classes;
        Instances = instances;
    }

    /// <summary>Position of this batch in the loader's stream (0, 1, ...).</summary>
    public long Index { get; }

    /// <summary>(N, 3, Hp, Wp) float32, zero beyond each image's own size.</summary>
    public Tensor Images { get; }

    /// <summary>(h, w) of each image after the transforms.</summary>
    public IReadOnlyList<(int Height, int Width)> ImageSizes { get; }

    /// <summary>(h, w) of each image as stored, to map predictions back.</summary>
    public IReadOnlyList<(int Height, int Width)> OriginalSizes { get; }

    public IReadOnlyList<long> ImageIds { get; }

    /// <summary>Per image (R_i, 4) float32 boxes (x1, y1, x2, y2) in transformed pixels.</summary>
    public IReadOnlyList<Tensor> Boxes { get; }

    /// <summary>Per image (R_i) int64 class indices in 0..K-1.</summary>
    public IReadOnlyList<Tensor> Classes { get; }

    /// <summary>Per image the transformed instances (boxes, classes and polygons) the tensors were made from.</summary>
    public IReadOnlyList<IReadOnlyList<InstanceAnnotation>> Instances { get; }

    public int Count => ImageSizes.Count;

    /// <summary>Collates transformed samples: normalizes and pads the pixels, and stacks each image's targets.</summary>
    public static ImageBatch Collate(IReadOnlyList<Sample> samples, Normalize normalize, int sizeDivisibility = 32, long index = 0)
    {
        ArgumentNullException.ThrowIfNull(normalize);
        if (samples.Count == 0) throw new ArgumentException("ImageBatch.Collate: a batch needs at least one sample.");
        if (sizeDivisibility < 1) throw new ArgumentException($"ImageBatch.Collate: sizeDivisibility {sizeDivisibility} must be ≥ 1.");
        var maxH = samples.Max(s => s.Image.Height);
        var maxW = samples.Max(s => s.Image.Width);
        var hp = (maxH + sizeDivisibility - 1) / sizeDivisibility * sizeDivisibility;
        var wp = (maxW + sizeDivisibility - 1) / sizeDivisibility * sizeDivisibility;

        var boxes = new List<Tensor>(samples.Count);
        var classes = new List<Tensor>(samples.Count);
        Tensor? images = null;
        try
        {
            images = Tensor.Empty([samples.Count, 3, hp, wp]);
            var all = images.AsSpan<float>();
            var plane = hp * wp;
            for (var n = 0; n < samples.Count; n++)
            {
                var dst = all.Slice(n * 3 * plane, 3 * plane);
                dst.Clear();
                normalize.WriteChw(samples[n].Image, dst, wp, plane);
                var inst = samples[n].Instances;
                var b = new float[inst.Count * 4];
                var c = new long[inst.Count];
                for (var i = 0; i < inst.Count; i++)
                {
                    inst[i].BoxXyxy.AsSpan().CopyTo(b.AsSpan(4 * i, 4));
                    c[i] = inst[i].CategoryIndex;
                }
                boxes.Add(Tensor.From<float>(b, [inst.Count, 4]));
                classes.Add(Tensor.From<long>(c, [inst.Count]));
            }
            return new ImageBatch(index, images,
                samples.Select(s => (s.Image.Height, s.Image.Width)).ToArray(),
                samples.Select(s => (s.Record.Height, s.Record.Width)).ToArray(),
                samples.Select(s => s.Record.ImageId).ToArray(), boxes, classes,
                samples.Select(s => s.Instances).ToArray());
        }
        catch
        {
            images?.Dispose();
            foreach (var t in boxes.Concat(classes)) t.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Images.Dispose();
        foreach (var t in Boxes) t.Dispose();
        foreach (var t in Classes) t.Dispose();
    }
}
