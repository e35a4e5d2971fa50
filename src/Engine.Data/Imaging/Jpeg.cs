// JPEG decode and encode through libturbojpeg. Decoding always yields 3-channel HWC uint8 in the
// requested channel order: grayscale JPEGs are expanded by the library, CMYK/YCCK JPEGs are decoded
// to CMYK and converted here (libjpeg cannot convert them to RGB itself). Decoding is strict: a
// libjpeg warning (a truncated file, corrupt entropy data) is an error, because a silently
// half-grey training image is worse than a clear failure that names the file.
using System.Runtime.InteropServices;
using Engine.Data.Interop;

namespace Engine.Data.Imaging;

public static unsafe class Jpeg
{
    /// <summary>Decodes the JPEG file at <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">the file does not exist.</exception>
    /// <exception cref="IOException">the file is empty, not a JPEG, truncated or corrupt (TurboJpegException when libturbojpeg says so).</exception>
    public static Image Decode(string path, PixelOrder order = PixelOrder.Rgb)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Jpeg.Decode: image file '{path}' does not exist; check the dataset's image folder.", path);
        return Decode(File.ReadAllBytes(path), order, path);
    }

    /// <summary>Decodes JPEG bytes; <paramref name="source"/> (a file name) is quoted in error messages.</summary>
    public static Image Decode(ReadOnlySpan<byte> jpeg, PixelOrder order = PixelOrder.Rgb, string? source = null)
    {
        var context = source is null ? $"JPEG buffer of {jpeg.Length} bytes" : $"'{source}'";
        if (jpeg.Length == 0) throw new IOException($"Jpeg.Decode: {context} is empty (0 bytes).");
        using var handle = TurboJpegHandle.CreateDecompressor();
        var raw = handle.DangerousGetHandle();
        fixed (byte* src = jpeg)
        {
            var size = new CULong((nuint)jpeg.Length);
            TurboJpeg.Check(TurboJpeg.tjDecompressHeader3(raw, src, size, out var width, out var height, out _, out var colorspace),
                handle, nameof(TurboJpeg.tjDecompressHeader3), context);
            if (width <= 0 || height <= 0)
                throw new IOException($"Jpeg.Decode: {context} is not a valid JPEG: its header declares a {width}×{height} image.");
            const int flags = TurboJpeg.TJFLAG_ACCURATEDCT | TurboJpeg.TJFLAG_STOPONWARNING;

            if ((TJCS)colorspace is TJCS.TJCS_CMYK or TJCS.TJCS_YCCK)
            {
                var cmyk = new byte[checked(width * height * 4)];
                fixed (byte* dst = cmyk)
                    TurboJpeg.Check(TurboJpeg.tjDecompress2(raw, src, size, dst, width, width * 4, height, (int)TJPF.TJPF_CMYK, flags),
                        handle, nameof(TurboJpeg.tjDecompress2), context);
                return CmykToColour(cmyk, width, height, order);
            }

            var pixels = new byte[checked(width * height * 3)];
            var format = order == PixelOrder.Rgb ? TJPF.TJPF_RGB : TJPF.TJPF_BGR;
            fixed (byte* dst = pixels)
                TurboJpeg.Check(TurboJpeg.tjDecompress2(raw, src, size, dst, width, width * 3, height, (int)format, flags),
                    handle, nameof(TurboJpeg.tjDecompress2), context);
            return new Image(width, height, 3, pixels, order);
        }
    }

    /// <summary>Encodes <paramref name="image"/> (colour or grayscale) at <paramref name="quality"/> (1–100). Colour images
    /// keep full-resolution chroma (4:4:4) unless <paramref name="subsampling"/> says otherwise.</summary>
    public static byte[] Encode(Image image, int quality = 95, JpegSubsampling subsampling = JpegSubsampling.Chroma444)
    {
        ArgumentNullException.ThrowIfNull(image);
        var (format, samp) = image.Channels == 1
            ? (TJPF.TJPF_GRAY, TJSAMP.TJSAMP_GRAY)
            : (image.Order == PixelOrder.Rgb ? TJPF.TJPF_RGB : TJPF.TJPF_BGR, (TJSAMP)subsampling);
        return Compress(image.Data, image.Width, image.Height, image.Channels, format, samp, quality, nameof(Encode));
    }

    /// <summary>Encodes an interleaved CMYK buffer (libjpeg's inverted "Adobe" convention, as Decode reads it) to a YCCK JPEG.</summary>
    internal static byte[] EncodeCmyk(byte[] cmyk, int width, int height, int quality) =>
        Compress(cmyk, width, height, 4, TJPF.TJPF_CMYK, TJSAMP.TJSAMP_444, quality, nameof(EncodeCmyk));

    private static byte[] Compress(byte[] pixels, int width, int height, int channels, TJPF format, TJSAMP samp, int quality, string op)
    {
        if (quality is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(quality), quality, $"Jpeg.{op}: quality must be in 1..100.");
        if (pixels.LongLength != (long)width * height * channels)
            throw new ArgumentException($"Jpeg.{op}: buffer of {pixels.LongLength} bytes does not hold {width}×{height}×{channels}.");
        using var handle = TurboJpegHandle.CreateCompressor();
        byte* jpeg = null;
        var size = new CULong(0);
        try
        {
            fixed (byte* src = pixels)
                TurboJpeg.Check(TurboJpeg.tjCompress2(handle.DangerousGetHandle(), src, width, width * channels, height, (int)format,
                        &jpeg, &size, (int)samp, quality, TurboJpeg.TJFLAG_ACCURATEDCT),
                    handle, nameof(TurboJpeg.tjCompress2), $"Jpeg.{op} of a {width}×{height}×{channels} image");
            return new ReadOnlySpan<byte>(jpeg, checked((int)size.Value)).ToArray();
        }
        finally
        {
            if (jpeg != null) TurboJpeg.tjFree(jpeg);
        }
    }

    /// <summary>libjpeg-turbo's CMYK convention stores inverted ink amounts (255 = no ink), so
    /// R = C·K/255, G = M·K/255, B = Y·K/255 (rounded).</summary>
    private static Image CmykToColour(byte[] cmyk, int width, int height, PixelOrder order)
    {
        var pixels = new byte[width * height * 3];
        var (r, b) = order == PixelOrder.Rgb ? (0, 2) : (2, 0);
        for (int i = 0, o = 0; i < cmyk.Length; i += 4, o += 3)
        {
            int k = cmyk[i + 3];
            pixels[o + r] = (byte)((cmyk[i] * k + 127) / 255);
            pixels[o + 1] = (byte)((cmyk[i + 1] * k + 127) / 255);
            pixels[o + b] = (byte)((cmyk[i + 2] * k + 127) / 255);
        }
        return new Image(width, height, 3, pixels, order);
    }
}

/// <summary>Chrominance subsampling of an encoded colour JPEG (values of TJSAMP).</summary>
public enum JpegSubsampling
{
    Chroma444 = 0,
    Chroma422 = 1,
    Chroma420 = 2,
}
