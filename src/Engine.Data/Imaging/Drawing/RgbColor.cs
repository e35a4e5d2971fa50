// An opaque 8-bit colour, always given as red, green, blue whatever the channel order of the image it is
// painted on; the painter writes it in the image's order (or as luma on a grayscale image).
namespace Engine.Data.Imaging.Drawing;

public readonly record struct RgbColor(byte R, byte G, byte B)
{
    public static RgbColor Black => new(0, 0, 0);
    public static RgbColor White => new(255, 255, 255);

    /// <summary>ITU-R BT.601 luma, 0.299 R + 0.587 G + 0.114 B, rounded: the gray level a grayscale image receives.</summary>
    public byte Luma => (byte)Math.Round(0.299 * R + 0.587 * G + 0.114 * B, MidpointRounding.AwayFromZero);

    /// <summary>Black or white, whichever reads better on this colour (black when its luma is at least half).</summary>
    public RgbColor Contrasting => Luma >= 128 ? Black : White;

    public override string ToString() => $"#{R:x2}{G:x2}{B:x2}";
}
