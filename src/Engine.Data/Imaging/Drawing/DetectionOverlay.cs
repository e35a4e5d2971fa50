// Draws a detector's output on the image it came from: each kept detection's box outline in its class colour
// (ClassPalette) and a label "name 0.87" on a filled background of the same colour, in black or white for
// contrast. A label sits on top of its box's top edge, outside the box, when there is room above; otherwise
// inside the box at its top edge. Labels are shifted left when they would run past the right border.
//
// Which detections are drawn: score ≥ ScoreThreshold (a NaN score never is) and a drawable box (finite, x2 > x1,
// y2 > y1); of those the MaxDetections highest-scored (ties: the earlier one). They are painted lowest score
// first, so where boxes overlap the best detection's outline and label end up on top.
namespace Engine.Data.Imaging.Drawing;

public sealed record OverlayOptions
{
    public double ScoreThreshold { get; init; } = 0.5;
    public int MaxDetections { get; init; } = 100;

    /// <summary>Box outline width in pixels.</summary>
    public int Thickness { get; init; } = 2;

    /// <summary>Font pixel size: each 5×7 glyph pixel becomes FontScale×FontScale image pixels.</summary>
    public int FontScale { get; init; } = 1;

    /// <summary>Outline and font sized for an image: 1 pixel and scale 1 up to a 320-pixel short side, then
    /// one more of each per 320 (outline) and 480 (font) pixels, so labels stay legible on large photos.</summary>
    public static OverlayOptions ForImage(int width, int height, double scoreThreshold = 0.5, int maxDetections = 100)
    {
        var shortSide = Math.Max(1, Math.Min(width, height));
        return new OverlayOptions
        {
            ScoreThreshold = scoreThreshold,
            MaxDetections = maxDetections,
            Thickness = Math.Max(1, (shortSide + 319) / 320),
            FontScale = Math.Max(1, (shortSide + 479) / 480),
        };
    }

    internal void Validate()
    {
        if (double.IsNaN(ScoreThreshold))
            throw new ArgumentException("DetectionOverlay: ScoreThreshold is NaN; give a number (0 draws every detection).");
        if (MaxDetections < 0) throw new ArgumentException($"DetectionOverlay: MaxDetections {MaxDetections} must be ≥ 0.");
        if (Thickness < 1) throw new ArgumentException($"DetectionOverlay: Thickness {Thickness} must be ≥ 1 pixel.");
        if (FontScale < 1) throw new ArgumentException($"DetectionOverlay: FontScale {FontScale} must be ≥ 1.");
    }
}

public static class DetectionOverlay
{
    /// <summary>The label of a detection: its class name and its score with two decimals.</summary>
    public static string Label(string name, float score) =>
        $"{name} {score.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary><paramref name="names"/>[classIndex], or "class {index}" where the list has no name for it.</summary>
    public static string ClassName(IReadOnlyList<string>? names, long classIndex) =>
        names is not null && classIndex >= 0 && classIndex < names.Count ? names[(int)classIndex] : $"class {classIndex}";

    /// <summary>Indices of the detections that are drawn, highest score first (see the file comment).</summary>
    /// <param name="boxes">(R, 4) x1, y1, x2, y2 row-major.</param>
    public static int[] Select(ReadOnlySpan<float> boxes, ReadOnlySpan<float> scores, double scoreThreshold, int maxDetections)
    {
        if (boxes.Length != 4 * scores.Length)
            throw new ArgumentException($"DetectionOverlay.Select: {boxes.Length} box values for {scores.Length} scores; boxes must be (R, 4) with R = {scores.Length}.");
        var kept = new List<int>();
        for (var i = 0; i < scores.Length; i++)
        {
            var b = boxes.Slice(4 * i, 4);
            if (scores[i] >= scoreThreshold && Painter.IsDrawable(b[0], b[1], b[2], b[3])) kept.Add(i);
        }
        var s = scores.ToArray();
        // List.Sort is unstable; the index as a second key keeps ties in input order.
        kept.Sort((a, b) => s[b].CompareTo(s[a]) is var c && c != 0 ? c : a.CompareTo(b));
        return kept.Take(Math.Max(0, maxDetections)).ToArray();
    }

    /// <summary>Draws the selected detections on <paramref name="image"/> in place; returns how many were drawn.</summary>
    /// <param name="boxes">(R, 4) x1, y1, x2, y2 in the image's pixel coordinates, row-major.</param>
    /// <param name="classes">(R) class indices; <paramref name="classNames"/>[k] names class k.</param>
    /// <param name="scores">(R) detection scores.</param>
    public static int Draw(Image image, ReadOnlySpan<float> boxes, ReadOnlySpan<long> classes, ReadOnlySpan<float> scores,
                           IReadOnlyList<string>? classNames, OverlayOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        options ??= new OverlayOptions();
        options.Validate();
        if (classes.Length != scores.Length || boxes.Length != 4 * scores.Length)
            throw new ArgumentException($"DetectionOverlay.Draw: {boxes.Length / 4.0} boxes ({boxes.Length} values), {classes.Length} classes and {scores.Length} scores; " +
                                        "give one box (4 values), one class and one score per detection.");
        for (var i = 0; i < classes.Length; i++)
            if (classes[i] < 0)
                throw new ArgumentException($"DetectionOverlay.Draw: detection {i} has class index {classes[i]}; class indices start at 0.");
        var order = Select(boxes, scores, options.ScoreThreshold, options.MaxDetections);
        var painter = new Painter(image);
        for (var k = order.Length - 1; k >= 0; k--)
        {
            var i = order[k];
            var b = boxes.Slice(4 * i, 4);
            var color = ClassPalette.Color(classes[i]);
            painter.DrawBox(b[0], b[1], b[2], b[3], options.Thickness, color);
            DrawLabel(painter, Label(ClassName(classNames, classes[i]), scores[i]), b, color, options.FontScale);
        }
        return order.Length;
    }

    /// <summary>Where the label of a box goes: its background rectangle (x, y, width, height) for a text of
    /// <paramref name="text"/>'s size at <paramref name="scale"/>, with a padding of one font pixel.</summary>
    public static (int X, int Y, int Width, int Height) LabelRectangle(string text, ReadOnlySpan<float> box, int imageWidth, int imageHeight, int scale)
    {
        var (tw, th) = BitmapFont.Measure(text, scale);
        var (w, h) = (tw + 2 * scale, th + 2 * scale);
        var bounds = Painter.PixelBounds(box[0], box[1], box[2], box[3], imageWidth, imageHeight)
                     ?? throw new ArgumentException($"DetectionOverlay.LabelRectangle: box [{string.Join(", ", box.ToArray())}] has no area or a non-finite coordinate.");
        var top = bounds.Top - h >= 0 ? bounds.Top - h : Math.Max(0, bounds.Top);
        var left = Math.Clamp(bounds.Left, 0, Math.Max(0, imageWidth - w));
        return (left, top, w, h);
    }

    private static void DrawLabel(Painter painter, string text, ReadOnlySpan<float> box, RgbColor color, int scale)
    {
        var (x, y, w, h) = LabelRectangle(text, box, painter.Image.Width, painter.Image.Height, scale);
        painter.FillRectangle(x, y, w, h, color);
        painter.DrawText(text, x + scale, y + scale, color.Contrasting, scale);
    }
}
