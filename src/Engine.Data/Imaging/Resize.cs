// Bilinear resize of HWC uint8 images with half-pixel centres (output pixel x samples the input at
// (x + 0.5)·in/out − 0.5, clamped to the image), the convention of OpenCV's INTER_LINEAR and PyTorch's
// interpolate(align_corners=False). Horizontal taps are computed once per output column; rows run in
// parallel when the image is large enough to pay for it. Tested against ResizeReference.
namespace Engine.Data.Imaging;

public static class Resize
{
    private const long ParallelThreshold = 1 << 16;

    public static Image Bilinear(Image src, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(src);
        if (width <= 0 || height <= 0)
            throw new ArgumentException($"Resize.Bilinear: target size {width}×{height} of {src} must be positive.");
        if (width == src.Width && height == src.Height) return src.Clone();
        var c = src.Channels;
        var x0 = new int[width];
        var x1 = new int[width];
        var fx = new float[width];
        for (var x = 0; x < width; x++)
        {
            var (i0, i1, f) = Taps(x, src.Width, width);
            (x0[x], x1[x], fx[x]) = (i0 * c, i1 * c, f);
        }
        var dst = new byte[width * height * c];
        var srcData = src.Data;
        var srcStride = src.Stride;

        void Row(int y)
        {
            var (y0, y1, fy) = Taps(y, src.Height, height);
            var r0 = srcData.AsSpan(y0 * srcStride, srcStride);
            var r1 = srcData.AsSpan(y1 * srcStride, srcStride);
            var o = dst.AsSpan(y * width * c, width * c);
            var gy = 1 - fy;
            for (var x = 0; x < width; x++)
            {
                var a = x0[x];
                var b = x1[x];
                var wx = fx[x];
                var gx = 1 - wx;
                for (var k = 0; k < c; k++)
                {
                    var top = gx * r0[a + k] + wx * r0[b + k];
                    var bottom = gx * r1[a + k] + wx * r1[b + k];
                    o[x * c + k] = (byte)(gy * top + fy * bottom + 0.5f);
                }
            }
        }

        if ((long)width * height * c < ParallelThreshold)
            for (var y = 0; y < height; y++) Row(y);
        else
            Parallel.For(0, height, Row);
        return new Image(width, height, c, dst, src.Order);
    }

    /// <summary>The two source indices and the weight of the second for output index <paramref name="o"/>.</summary>
    private static (int I0, int I1, float F) Taps(int o, int inSize, int outSize)
    {
        var s = Math.Max(0.0, (o + 0.5) * inSize / outSize - 0.5);
        var i0 = Math.Min((int)s, inSize - 1);
        var i1 = Math.Min(i0 + 1, inSize - 1);
        return (i0, i1, (float)(s - i0));
    }
}
