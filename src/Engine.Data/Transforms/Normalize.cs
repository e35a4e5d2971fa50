// Per-channel pixel normalization, (p − mean_c) / std_c, in the channel order the model's weights
// expect. detectron2's MSRA-initialized ResNets take BGR in 0..255 with mean
// [103.530, 116.280, 123.675] and std [1, 1, 1]; torchvision's take RGB with mean
// [0.485, 0.456, 0.406]·255 and std [0.229, 0.224, 0.225]·255. Mean and std are given in Order.
using Engine.Data.Imaging;

namespace Engine.Data.Transforms;

public sealed record Normalize
{
    public Normalize(PixelOrder order, IReadOnlyList<double> mean, IReadOnlyList<double> std)
    {
        if (mean is not { Count: 3 } || std is not { Count: 3 })
            throw new ArgumentException($"Normalize: mean and std need 3 values each (one per channel), got {mean?.Count ?? 0} and {std?.Count ?? 0}.");
        if (std.Any(s => !(s > 0)))
            throw new ArgumentException($"Normalize: every std must be positive, got [{string.Join(", ", std)}].");
        Order = order;
        Mean = mean.ToArray();
        Std = std.ToArray();
    }

    public PixelOrder Order { get; }
    public IReadOnlyList<double> Mean { get; }
    public IReadOnlyList<double> Std { get; }

    public static Normalize Detectron2Msra { get; } = new(PixelOrder.Bgr, [103.530, 116.280, 123.675], [1, 1, 1]);

    public static Normalize TorchVision { get; } = new(PixelOrder.Rgb, [0.485 * 255, 0.456 * 255, 0.406 * 255], [0.229 * 255, 0.224 * 255, 0.225 * 255]);

    /// <summary>Writes <paramref name="image"/> normalized as CHW float32 into the top-left corner of <paramref name="dst"/>, a (3, H, W)
    /// plane set with row pitch <paramref name="dstWidth"/> and plane size <paramref name="dstPlane"/>. A grayscale image fills all three channels.</summary>
    public void WriteChw(Image image, Span<float> dst, int dstWidth, int dstPlane)
    {
        Span<float> scale = stackalloc float[3];
        Span<float> shift = stackalloc float[3];
        Span<int> source = stackalloc int[3];
        for (var c = 0; c < 3; c++)
        {
            scale[c] = (float)(1.0 / Std[c]);
            shift[c] = (float)(-Mean[c] / Std[c]);
            // Output channel c of Order reads input channel source[c] of the image's order.
            source[c] = image.Channels == 1 ? 0 : image.Order == Order ? c : 2 - c;
        }
        var ch = image.Channels;
        for (var c = 0; c < 3; c++)
        {
            var plane = dst.Slice(c * dstPlane, dstPlane);
            for (var y = 0; y < image.Height; y++)
            {
                var row = image.Row(y);
                var o = plane.Slice(y * dstWidth, image.Width);
                var s = source[c];
                for (var x = 0; x < o.Length; x++) o[x] = row[x * ch + s] * scale[c] + shift[c];
            }
        }
    }
}
