// A batch of images of different sizes as one padded tensor, as detectron2's ImageList: images are placed at
// the top-left of an (N, C, H, W) tensor whose H and W are the largest image's, rounded up to a multiple of
// sizeDivisibility (32 for an FPN over res5), padded with padValue. Each image's own (h, w) is kept, since
// anchors, proposals and detections must be clipped to the real image, not the padding; the original size
// (before the data layer's resize) is kept so detections can be rescaled to it.
namespace Engine.Detection;

public sealed class ImageList : IDisposable
{
    /// <param name="tensor">(N, C, H, W), owned by the list from now on.</param>
    /// <param name="imageSizes">(h, w) of each image inside the padded tensor.</param>
    /// <param name="originalSizes">(h, w) of each image before resizing; defaults to imageSizes.</param>
    public ImageList(Tensor tensor, IReadOnlyList<(int Height, int Width)> imageSizes, IReadOnlyList<(int Height, int Width)>? originalSizes = null)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Rank != 4 || tensor.Size(0) != imageSizes.Count)
            throw new ArgumentException($"ImageList: tensor {ShapeUtil.Format(tensor.Shape)} must be (N, C, H, W) with N = {imageSizes.Count} (one size per image).");
        for (var i = 0; i < imageSizes.Count; i++)
            if (imageSizes[i].Height <= 0 || imageSizes[i].Width <= 0 || imageSizes[i].Height > tensor.Size(2) || imageSizes[i].Width > tensor.Size(3))
                throw new ArgumentException($"ImageList: image {i} size {imageSizes[i].Height}×{imageSizes[i].Width} must be positive and fit the padded tensor {ShapeUtil.Format(tensor.Shape)}.");
        if (originalSizes is not null && originalSizes.Count != imageSizes.Count)
            throw new ArgumentException($"ImageList: {originalSizes.Count} original sizes for {imageSizes.Count} images; give one per image.");
        Tensor = tensor;
        ImageSizes = imageSizes.ToArray();
        OriginalSizes = (originalSizes ?? imageSizes).ToArray();
    }

    /// <summary>(N, C, H, W) padded batch.</summary>
    public Tensor Tensor { get; }

    public IReadOnlyList<(int Height, int Width)> ImageSizes { get; }

    public IReadOnlyList<(int Height, int Width)> OriginalSizes { get; }

    public int Count => ImageSizes.Count;

    /// <summary>Pads and batches images (each (C, h, w), same C) into an ImageList; the inputs are copied, not owned.</summary>
    public static ImageList FromTensors(IReadOnlyList<Tensor> images, int sizeDivisibility = 0, double padValue = 0,
                                        IReadOnlyList<(int Height, int Width)>? originalSizes = null)
    {
        if (images.Count == 0) throw new ArgumentException("ImageList.FromTensors: no images given; a batch needs at least one.");
        var c = images[0].Rank == 3 ? images[0].Size(0) : -1;
        foreach (var im in images)
            if (im.Rank != 3 || im.Size(0) != c || im.DType != DType.Float32)
                throw new ArgumentException($"ImageList.FromTensors: every image must be float32 (C, h, w) with the same C; got {im.DType.Name()}{ShapeUtil.Format(im.Shape)} (first C = {c}).");
        if (sizeDivisibility < 0) throw new ArgumentException($"ImageList.FromTensors: sizeDivisibility {sizeDivisibility} must be ≥ 0.");
        var h = images.Max(im => im.Size(1));
        var w = images.Max(im => im.Size(2));
        if (sizeDivisibility > 1)
        {
            h = (h + sizeDivisibility - 1) / sizeDivisibility * sizeDivisibility;
            w = (w + sizeDivisibility - 1) / sizeDivisibility * sizeDivisibility;
        }
        var batch = Tensor.Full([images.Count, c, h, w], padValue, DType.Float32, images[0].Device);
        using (GradMode.NoGrad())
            for (var i = 0; i < images.Count; i++)
            {
                using var slot = batch.Select(0, i);
                using var rows = slot.Narrow(1, 0, images[i].Size(1));
                using var region = rows.Narrow(2, 0, images[i].Size(2));
                region.CopyFrom(images[i]);
            }
        return new ImageList(batch, images.Select(im => (im.Size(1), im.Size(2))).ToArray(), originalSizes);
    }

    public void Dispose() => Tensor.Dispose();
}
