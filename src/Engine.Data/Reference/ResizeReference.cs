// Plain bilinear resize in double, written from the definition, for testing Resize.Bilinear: output
// pixel (x, y) samples the input at sx = max(0, (x + 0.5)·W/W' − 0.5), sy likewise, and blends the four
// neighbours ⌊s⌋ and ⌊s⌋ + 1 (clamped to the last pixel) with weights (1 − f, f), rounded half up.
namespace Engine.Data.Reference;

public static class ResizeReference
{
    public static byte[] Bilinear(byte[] src, int width, int height, int channels, int outWidth, int outHeight)
    {
        var dst = new byte[outWidth * outHeight * channels];
        for (var y = 0; y < outHeight; y++)
        {
            var sy = Math.Max(0.0, (y + 0.5) * height / outHeight - 0.5);
            var y0 = Math.Min((int)Math.Floor(sy), height - 1);
            var y1 = Math.Min(y0 + 1, height - 1);
            var fy = sy - y0;
            for (var x = 0; x < outWidth; x++)
            {
                var sx = Math.Max(0.0, (x + 0.5) * width / outWidth - 0.5);
                var x0 = Math.Min((int)Math.Floor(sx), width - 1);
                var x1 = Math.Min(x0 + 1, width - 1);
                var fx = sx - x0;
                for (var c = 0; c < channels; c++)
                {
                    double P(int yy, int xx) => src[(yy * width + xx) * channels + c];
                    var v = (1 - fy) * ((1 - fx) * P(y0, x0) + fx * P(y0, x1)) + fy * ((1 - fx) * P(y1, x0) + fx * P(y1, x1));
                    dst[(y * outWidth + x) * channels + c] = (byte)Math.Floor(v + 0.5);
                }
            }
        }
        return dst;
    }
}
