// A decoded image in host memory: height × width × channels bytes, row-major, channels interleaved
// (HWC uint8), the layout libturbojpeg reads and writes. Colour images carry their channel order so
// that Normalize can hand the model BGR or RGB whichever way the pixels were decoded.
namespace Engine.Data.Imaging;

/// <summary>Order of the three colour channels of an interleaved pixel.</summary>
public enum PixelOrder
{
    Rgb,
    Bgr,
}

public sealed class Image
{
    public Image(int width, int height, int channels, byte[] data, PixelOrder order = PixelOrder.Rgb)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentException($"Image: size {width}×{height} must be positive in both dimensions.");
        if (channels is not (1 or 3))
            throw new ArgumentException($"Image: {channels} channels; only 1 (grayscale) or 3 (colour) are supported.");
        ArgumentNullException.ThrowIfNull(data);
        if (data.LongLength != (long)width * height * channels)
            throw new ArgumentException($"Image: buffer holds {data.LongLength} bytes but {width}×{height}×{channels} needs {(long)width * height * channels}.");
        Width = width;
        Height = height;
        Channels = channels;
        Data = data;
        Order = order;
    }

    /// <summary>A zero-filled (black) image.</summary>
    public static Image Create(int width, int height, int channels = 3, PixelOrder order = PixelOrder.Rgb) =>
        new(width, height, channels, new byte[checked(width * height * channels)], order);

    public int Width { get; }
    public int Height { get; }
    public int Channels { get; }
    public PixelOrder Order { get; }

    /// <summary>HWC bytes, Height·Width·Channels of them.</summary>
    public byte[] Data { get; }

    public int Stride => Width * Channels;

    public Span<byte> Row(int y) => Data.AsSpan(y * Stride, Stride);

    /// <summary>Channel <paramref name="c"/> of pixel (x, y).</summary>
    public byte this[int y, int x, int c]
    {
        get => Data[(y * Width + x) * Channels + c];
        set => Data[(y * Width + x) * Channels + c] = value;
    }

    /// <summary>This image with its channels in <paramref name="order"/> (itself when it already is, or grayscale).</summary>
    public Image WithOrder(PixelOrder order)
    {
        if (order == Order || Channels == 1) return this;
        var swapped = new byte[Data.Length];
        for (var i = 0; i < Data.Length; i += 3)
        {
            swapped[i] = Data[i + 2];
            swapped[i + 1] = Data[i + 1];
            swapped[i + 2] = Data[i];
        }
        return new Image(Width, Height, 3, swapped, order);
    }

    public Image Clone() => new(Width, Height, Channels, (byte[])Data.Clone(), Order);

    public override string ToString() => $"Image {Width}×{Height}×{Channels} {Order}";
}
