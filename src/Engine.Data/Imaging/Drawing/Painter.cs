// Opaque drawing on an engine Image (HWC uint8, RGB, BGR or grayscale), enough to show detections: filled
// rectangles, box outlines and text in the BitmapFont. Everything is clipped to the image: a shape that leaves
// the image loses its outside part, nothing wraps to another row, and drawing wholly outside changes nothing.
//
// Boxes are given as detectors give them, (x1, y1, x2, y2) in continuous pixel coordinates where pixel (i, j)
// covers [i, i+1) × [j, j+1). A box covers every pixel its area touches: columns floor(x1) … ceil(x2) − 1 and
// rows floor(y1) … ceil(y2) − 1, so [10, 10, 20, 20] covers pixels 10…19 each way. The outline lies inside
// the box, `thickness` pixels wide, so a box inside the image keeps its outline inside too; a box at most
// 2·thickness pixels across is filled. A box with a non-finite coordinate, x2 ≤ x1 or y2 ≤ y1 is not drawn.
namespace Engine.Data.Imaging.Drawing;

public sealed class Painter
{
    public Painter(Image image)
    {
        ArgumentNullException.ThrowIfNull(image);
        Image = image;
    }

    public Image Image { get; }

    /// <summary>The pixel at (x, y) as RGB (gray as R = G = B on a grayscale image).</summary>
    public RgbColor GetPixel(int x, int y)
    {
        if ((uint)x >= (uint)Image.Width || (uint)y >= (uint)Image.Height)
            throw new ArgumentOutOfRangeException(nameof(x), $"Painter.GetPixel: ({x}, {y}) lies outside the {Image.Width}×{Image.Height} image.");
        if (Image.Channels == 1)
        {
            var v = Image[y, x, 0];
            return new RgbColor(v, v, v);
        }
        return Image.Order == PixelOrder.Rgb
            ? new RgbColor(Image[y, x, 0], Image[y, x, 1], Image[y, x, 2])
            : new RgbColor(Image[y, x, 2], Image[y, x, 1], Image[y, x, 0]);
    }

    /// <summary>Sets pixel (x, y); a pixel outside the image is ignored.</summary>
    public void SetPixel(int x, int y, RgbColor color) => FillRectangle(x, y, 1, 1, color);

    /// <summary>Fills the <paramref name="width"/>×<paramref name="height"/> pixels whose top-left is (x, y), clipped to
    /// the image; a non-positive width or height fills nothing.</summary>
    public void FillRectangle(int x, int y, int width, int height, RgbColor color)
    {
        if (width <= 0 || height <= 0) return;
        // long arithmetic: x + width may exceed int range for rectangles far outside the image.
        var x0 = (int)Math.Max(0L, x);
        var y0 = (int)Math.Max(0L, y);
        var x1 = (int)Math.Min(Image.Width, (long)x + width);
        var y1 = (int)Math.Min(Image.Height, (long)y + height);
        if (x0 >= x1 || y0 >= y1) return;
        var c = Image.Channels;
        Span<byte> pixel = stackalloc byte[3];
        if (c == 1) pixel[0] = color.Luma;
        else if (Image.Order == PixelOrder.Rgb) (pixel[0], pixel[1], pixel[2]) = (color.R, color.G, color.B);
        else (pixel[0], pixel[1], pixel[2]) = (color.B, color.G, color.R);
        pixel = pixel[..c];
        for (var row = y0; row < y1; row++)
        {
            var span = Image.Row(row).Slice(x0 * c, (x1 - x0) * c);
            if (c == 1) span.Fill(pixel[0]);
            else
                for (var i = 0; i < span.Length; i += 3) pixel.CopyTo(span.Slice(i, 3));
        }
    }

    /// <summary>Whether a box has finite coordinates and an area (x2 > x1, y2 > y1); other boxes are never drawn.</summary>
    public static bool IsDrawable(double x1, double y1, double x2, double y2) =>
        double.IsFinite(x1) && double.IsFinite(y1) && double.IsFinite(x2) && double.IsFinite(y2) && x2 > x1 && y2 > y1;

    /// <summary>The pixel bounds (inclusive) a box covers, or null for a box with a non-finite coordinate or no
    /// area (x2 ≤ x1 or y2 ≤ y1). Bounds far outside the image are clamped to a margin of
    /// <paramref name="margin"/> + 1 pixels beyond it, which moves no pixel of a margin-wide outline into the image.</summary>
    public static (int Left, int Top, int Right, int Bottom)? PixelBounds(double x1, double y1, double x2, double y2, int width, int height, int margin = 0)
    {
        if (!IsDrawable(x1, y1, x2, y2)) return null;
        var mx = (double)margin + 1;
        int Clamp(double v, int size) => (int)Math.Clamp(v, -mx, size + mx);
        return (Clamp(Math.Floor(x1), width), Clamp(Math.Floor(y1), height), Clamp(Math.Ceiling(x2) - 1, width), Clamp(Math.Ceiling(y2) - 1, height));
    }

    /// <summary>Draws the outline of box (x1, y1, x2, y2) <paramref name="thickness"/> pixels wide inside the box
    /// (see the file comment for the pixel rule). Returns false, drawing nothing, for a box with a non-finite
    /// coordinate or no area.</summary>
    public bool DrawBox(double x1, double y1, double x2, double y2, int thickness, RgbColor color)
    {
        if (thickness < 1) throw new ArgumentOutOfRangeException(nameof(thickness), thickness, "Painter.DrawBox: thickness must be ≥ 1 pixel.");
        if (PixelBounds(x1, y1, x2, y2, Image.Width, Image.Height, thickness) is not { } bounds) return false;
        var (left, top, right, bottom) = bounds;
        var w = right - left + 1;
        var h = bottom - top + 1;
        if (w <= 2 * thickness || h <= 2 * thickness)
        {
            FillRectangle(left, top, w, h, color);
            return true;
        }
        FillRectangle(left, top, w, thickness, color);                                   // top edge
        FillRectangle(left, bottom - thickness + 1, w, thickness, color);                // bottom edge
        FillRectangle(left, top + thickness, thickness, h - 2 * thickness, color);       // left edge
        FillRectangle(right - thickness + 1, top + thickness, thickness, h - 2 * thickness, color); // right edge
        return true;
    }

    /// <summary>Draws <paramref name="text"/> (one line) with its top-left at (x, y), each font pixel a
    /// <paramref name="scale"/>×<paramref name="scale"/> block, clipped to the image. Only set glyph pixels are
    /// painted; characters outside printable ASCII draw as '?'.</summary>
    public void DrawText(string text, int x, int y, RgbColor color, int scale = 1)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), scale, "Painter.DrawText: scale must be ≥ 1.");
        // Rows wholly above or below the image draw nothing; returning here also keeps y + row·scale in int range.
        if (y >= Image.Height || (long)y + (long)BitmapFont.GlyphHeight * scale <= 0) return;
        for (var i = 0; i < text.Length; i++)
        {
            var gx = x + (long)i * BitmapFont.CellWidth * scale;
            if (gx >= Image.Width) break;
            if (gx + (long)BitmapFont.GlyphWidth * scale <= 0) continue;
            var glyph = BitmapFont.Glyph(text[i]);
            for (var row = 0; row < BitmapFont.GlyphHeight; row++)
                for (var col = 0; col < BitmapFont.GlyphWidth; col++)
                    if ((glyph[row] >> (BitmapFont.GlyphWidth - 1 - col) & 1) != 0)
                        FillRectangle((int)(gx + col * scale), y + row * scale, scale, scale, color);
        }
    }
}
