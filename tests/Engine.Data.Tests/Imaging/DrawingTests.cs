// The painter and the detection overlay, pixel by pixel. Box outlines are compared with a reference written
// from the rule in Painter's file comment (a pixel is on the outline when it lies in the box's pixel bounds at
// distance < thickness from one of its sides), on hand-picked boxes and on random boxes that leave the image;
// text is compared with the font's bitmap; the overlay must leave below-threshold and over-the-limit
// detections untouched.
using Engine.Data.Imaging;
using Engine.Data.Imaging.Drawing;

namespace Engine.Data.Tests.Imaging;

public sealed class DrawingTests
{
    private static readonly RgbColor Red = new(255, 0, 0);
    private static readonly RgbColor Gray = new(90, 90, 90);

    private static Image Filled(int width, int height, RgbColor color, PixelOrder order = PixelOrder.Rgb)
    {
        var image = Image.Create(width, height, 3, order);
        new Painter(image).FillRectangle(0, 0, width, height, color);
        return image;
    }

    /// <summary>The outline pixels of a box from its defining rule, independent of how Painter draws it.</summary>
    private static bool OnOutline(int x, int y, double x1, double y1, double x2, double y2, int thickness)
    {
        if (!(double.IsFinite(x1) && double.IsFinite(y1) && double.IsFinite(x2) && double.IsFinite(y2) && x2 > x1 && y2 > y1)) return false;
        double l = Math.Floor(x1), t = Math.Floor(y1), r = Math.Ceiling(x2) - 1, b = Math.Ceiling(y2) - 1;
        if (x < l || x > r || y < t || y > b) return false;
        return Math.Min(Math.Min(x - l, r - x), Math.Min(y - t, b - y)) < thickness;
    }

    private static void AssertOutline(Image image, RgbColor background, RgbColor color, double x1, double y1, double x2, double y2, int thickness, string context)
    {
        var p = new Painter(image);
        for (var y = 0; y < image.Height; y++)
            for (var x = 0; x < image.Width; x++)
            {
                var expected = OnOutline(x, y, x1, y1, x2, y2, thickness) ? color : background;
                var actual = p.GetPixel(x, y);
                Assert.True(expected == actual, $"{context}: box [{x1}, {y1}, {x2}, {y2}] thickness {thickness} on {image}: pixel ({x}, {y}) is {actual}, expected {expected}");
            }
    }

    [Fact]
    public void BoxOutlineCoversTheBoxPixelBoundsInward()
    {
        var image = Image.Create(12, 10);
        Assert.True(new Painter(image).DrawBox(2, 3, 9, 8, 1, Red));
        AssertOutline(image, RgbColor.Black, Red, 2, 3, 9, 8, 1, "thickness 1");
        var p = new Painter(image);
        // The corners of [2, 9) × [3, 8): pixels (2, 3), (8, 3), (2, 7), (8, 7); just outside them is untouched.
        foreach (var (x, y) in new[] { (2, 3), (8, 3), (2, 7), (8, 7) }) Assert.Equal(Red, p.GetPixel(x, y));
        foreach (var (x, y) in new[] { (1, 3), (9, 3), (2, 2), (2, 8), (3, 4), (7, 6) }) Assert.Equal(RgbColor.Black, p.GetPixel(x, y));

        // Fractional coordinates cover every pixel the box touches: the same pixels as above.
        var frac = Image.Create(12, 10);
        new Painter(frac).DrawBox(2.5, 3.2, 8.1, 7.9, 1, Red);
        Assert.Equal(image.Data, frac.Data);

        var thick = Image.Create(12, 10);
        new Painter(thick).DrawBox(1, 1, 11, 9, 2, Red);
        AssertOutline(thick, RgbColor.Black, Red, 1, 1, 11, 9, 2, "thickness 2");
        Assert.Equal(RgbColor.Black, new Painter(thick).GetPixel(3, 3));
        Assert.Equal(Red, new Painter(thick).GetPixel(2, 5));

        // At most 2·thickness pixels across: filled.
        var small = Image.Create(12, 10);
        new Painter(small).DrawBox(4, 4, 8, 6, 2, Red);
        AssertOutline(small, RgbColor.Black, Red, 4, 4, 8, 6, 2, "small box");
        Assert.Equal(Red, new Painter(small).GetPixel(5, 5));
    }

    [Fact]
    public void BoxesLeavingTheImageAreClippedWithoutWrapping()
    {
        // Top-left corner outside: only the right and bottom edges remain, inside the 8×6 image.
        var image = Image.Create(8, 6);
        Assert.True(new Painter(image).DrawBox(-3, -2, 5, 4, 1, Red));
        AssertOutline(image, RgbColor.Black, Red, -3, -2, 5, 4, 1, "top-left outside");
        Assert.Equal(Red, new Painter(image).GetPixel(4, 0));
        Assert.Equal(Red, new Painter(image).GetPixel(0, 3));
        Assert.Equal(RgbColor.Black, new Painter(image).GetPixel(0, 0));

        // Leaving at the right: nothing may appear at the start of the next row.
        var right = Image.Create(8, 6);
        new Painter(right).DrawBox(5, 1, 12, 4, 2, Red);
        AssertOutline(right, RgbColor.Black, Red, 5, 1, 12, 4, 2, "right side outside");
        for (var y = 0; y < 6; y++) Assert.Equal(RgbColor.Black, new Painter(right).GetPixel(0, y));

        // Wholly outside, or huge: the first changes nothing, the second leaves only the parts inside.
        var outside = Image.Create(8, 6);
        Assert.True(new Painter(outside).DrawBox(20, 20, 30, 30, 3, Red));
        Assert.All(outside.Data, v => Assert.Equal(0, v));
        var huge = Image.Create(8, 6);
        new Painter(huge).DrawBox(-1e30, 2, 1e30, 1e30, 1, Red);
        AssertOutline(huge, RgbColor.Black, Red, -1e30, 2, 1e30, 1e30, 1, "huge box");
    }

    [Fact]
    public void RandomBoxesMatchTheOutlineRule()
    {
        var g = TestSupport.Fresh(out var seed);
        for (var trial = 0; trial < 200; trial++)
        {
            int w = 1 + (int)g.NextInt64(23), h = 1 + (int)g.NextInt64(17);
            double Coord(int size) => -6 + g.NextDouble() * (size + 12);
            double x1 = Coord(w), x2 = Coord(w), y1 = Coord(h), y2 = Coord(h);
            var thickness = 1 + (int)g.NextInt64(4);
            var image = Filled(w, h, Gray, trial % 2 == 0 ? PixelOrder.Rgb : PixelOrder.Bgr);
            var drawn = new Painter(image).DrawBox(x1, y1, x2, y2, thickness, Red);
            Assert.True(drawn == (x2 > x1 && y2 > y1), $"seed {seed} trial {trial}: DrawBox returned {drawn} for [{x1}, {y1}, {x2}, {y2}]");
            AssertOutline(image, Gray, Red, x1, y1, x2, y2, thickness, $"seed {seed} trial {trial}");
        }
    }

    [Fact]
    public void DegenerateAndNonFiniteBoxesAreSkippedAndBadThicknessIsRejected()
    {
        double[][] boxes =
        [
            [double.NaN, 1, 5, 5], [1, double.NaN, 5, 5], [1, 1, double.NaN, 5], [1, 1, 5, double.NaN],
            [double.NegativeInfinity, 1, 5, 5], [1, 1, double.PositiveInfinity, 5],
            [3, 1, 3, 5], [1, 3, 5, 3], [5, 1, 3, 5], [1, 5, 5, 3],
        ];
        foreach (var b in boxes)
        {
            var image = Image.Create(8, 8);
            Assert.False(new Painter(image).DrawBox(b[0], b[1], b[2], b[3], 1, Red), $"box [{string.Join(", ", b)}] must not be drawn");
            Assert.All(image.Data, v => Assert.Equal(0, v));
        }
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Painter(Image.Create(8, 8)).DrawBox(1, 1, 5, 5, 0, Red));
        Assert.Contains("thickness", e.Message);
    }

    [Fact]
    public void ColoursFollowTheImageChannelOrderAndGrayscaleGetsLuma()
    {
        var color = new RgbColor(200, 100, 30);
        var bgr = Image.Create(3, 2, 3, PixelOrder.Bgr);
        new Painter(bgr).SetPixel(1, 1, color);
        Assert.Equal([30, 100, 200], new[] { bgr[1, 1, 0], bgr[1, 1, 1], bgr[1, 1, 2] });
        var rgb = Image.Create(3, 2);
        new Painter(rgb).SetPixel(1, 1, color);
        Assert.Equal([200, 100, 30], new[] { rgb[1, 1, 0], rgb[1, 1, 1], rgb[1, 1, 2] });
        var gray = Image.Create(3, 2, 1);
        new Painter(gray).FillRectangle(0, 0, 3, 2, color);
        // 0.299·200 + 0.587·100 + 0.114·30 = 121.92
        Assert.All(gray.Data, v => Assert.Equal(122, v));
    }

    [Fact]
    public void TextRendersEachGlyphBitmapAtItsCellAndScale()
    {
        foreach (var scale in new[] { 1, 2, 3 })
        {
            const string text = "A7g";
            var (tw, th) = BitmapFont.Measure(text, scale);
            Assert.Equal((text.Length * 6 * scale - scale, 7 * scale), (tw, th));
            var image = Image.Create(tw + 4, th + 4);
            new Painter(image).DrawText(text, 2, 2, RgbColor.White, scale);
            var p = new Painter(image);
            for (var y = 0; y < image.Height; y++)
                for (var x = 0; x < image.Width; x++)
                {
                    var set = false;
                    var (u, v) = (x - 2, y - 2);
                    if (u >= 0 && v >= 0 && u / scale / 6 < text.Length)
                        set = BitmapFont.IsSet(text[u / scale / 6], u / scale % 6, v / scale);
                    Assert.True((set ? RgbColor.White : RgbColor.Black) == p.GetPixel(x, y), $"scale {scale}: pixel ({x}, {y}) of \"{text}\"");
                }
        }
        // 'A' by hand: the apex is the middle column of the top row, the crossbar the fifth row, both feet reach the bottom.
        Assert.True(BitmapFont.IsSet('A', 2, 0) && !BitmapFont.IsSet('A', 0, 0) && !BitmapFont.IsSet('A', 4, 0));
        Assert.True(Enumerable.Range(0, 5).All(x => BitmapFont.IsSet('A', x, 4)));
        Assert.True(BitmapFont.IsSet('A', 0, 6) && BitmapFont.IsSet('A', 4, 6) && !BitmapFont.IsSet('A', 2, 6));
    }

    [Fact]
    public void FontCoversPrintableAsciiWithDistinctGlyphs()
    {
        var seen = new Dictionary<string, char>();
        for (var c = (char)BitmapFont.FirstChar; c <= (char)BitmapFont.LastChar; c++)
        {
            var glyph = BitmapFont.Glyph(c).ToArray();
            Assert.Equal(BitmapFont.GlyphHeight, glyph.Length);
            Assert.All(glyph, row => Assert.True(row < 1 << BitmapFont.GlyphWidth, $"'{c}' has a row wider than 5 pixels"));
            Assert.True(c == ' ' || glyph.Any(r => r != 0), $"'{c}' has an empty glyph");
            var key = Convert.ToHexString(glyph);
            Assert.False(seen.TryGetValue(key, out var other), $"'{c}' and '{other}' have the same glyph");
            seen[key] = c;
        }
        Assert.Equal(BitmapFont.Glyph('?').ToArray(), BitmapFont.Glyph('é').ToArray());
        Assert.Equal(BitmapFont.Glyph('?').ToArray(), BitmapFont.Glyph('\n').ToArray());
    }

    [Fact]
    public void TextIsClippedAtEveryBorder()
    {
        const string text = "Hi!";
        foreach (var (x0, y0) in new[] { (-4, -3), (5, 4), (-20, 2), (3, -10), (-100000, int.MaxValue - 2), (int.MinValue + 1, 0) })
        {
            var image = Image.Create(9, 7);
            new Painter(image).DrawText(text, x0, y0, RgbColor.White);
            var p = new Painter(image);
            for (var y = 0; y < image.Height; y++)
                for (var x = 0; x < image.Width; x++)
                {
                    long u = (long)x - x0, v = (long)y - y0;
                    var set = u >= 0 && v >= 0 && u / 6 < text.Length && BitmapFont.IsSet(text[(int)(u / 6)], (int)(u % 6), (int)v);
                    Assert.True((set ? RgbColor.White : RgbColor.Black) == p.GetPixel(x, y), $"text at ({x0}, {y0}): pixel ({x}, {y})");
                }
        }
    }

    [Fact]
    public void PaletteIsDeterministicAndTheFirst40ClassesAreFarApart()
    {
        var colors = Enumerable.Range(0, 40).Select(i => ClassPalette.Color(i)).ToArray();
        var min = double.MaxValue;
        (int, int) closest = default;
        for (var i = 0; i < colors.Length; i++)
            for (var j = i + 1; j < colors.Length; j++)
            {
                var (a, b) = (colors[i], colors[j]);
                var d = Math.Sqrt(Math.Pow(a.R - b.R, 2) + Math.Pow(a.G - b.G, 2) + Math.Pow(a.B - b.B, 2));
                if (d < min) (min, closest) = (d, (i, j));
            }
        // 40 of a possible 441 (black to white): two label backgrounds that differ this much are told apart at a glance.
        Assert.True(min >= 40, $"classes {closest.Item1} ({colors[closest.Item1]}) and {closest.Item2} ({colors[closest.Item2]}) are only {min:F1} apart in RGB");
        Assert.Equal(colors, Enumerable.Range(0, 40).Select(i => ClassPalette.Color(i)));
        Assert.Equal(new RgbColor(255, 0, 0), ClassPalette.FromHsv(0, 1, 1));
        Assert.Equal(new RgbColor(0, 255, 0), ClassPalette.FromHsv(1 / 3.0, 1, 1));
        Assert.Equal(new RgbColor(0, 0, 255), ClassPalette.FromHsv(2 / 3.0, 1, 1));
        Assert.Equal(new RgbColor(128, 128, 128), ClassPalette.FromHsv(0.3, 0, 128 / 255.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ClassPalette.Color(-1));
    }

    [Fact]
    public void OverlaySkipsBelowThresholdAndOverTheLimitDetections()
    {
        // Three boxes side by side below a 24-pixel band for the labels (each label is 49 pixels wide, so it stays
        // above its own box); scores 0.9, 0.3 (below 0.5) and 0.6.
        float[] boxes = [4, 24, 60, 50, 70, 24, 126, 50, 136, 24, 192, 50];
        long[] classes = [0, 1, 2];
        float[] scores = [0.9f, 0.3f, 0.6f];
        string[] names = ["cat", "dog", "eel"];

        bool Untouched(Image image, int left, int right) =>
            Enumerable.Range(0, image.Height).All(y => Enumerable.Range(left, right - left).All(x => new Painter(image).GetPixel(x, y) == Gray));

        var image = Filled(200, 56, Gray);
        Assert.Equal(2, DetectionOverlay.Draw(image, boxes, classes, scores, names, new OverlayOptions { ScoreThreshold = 0.5, Thickness = 1 }));
        var p = new Painter(image);
        Assert.Equal(ClassPalette.Color(0), p.GetPixel(4, 40));
        Assert.Equal(ClassPalette.Color(2), p.GetPixel(191, 40));
        Assert.True(Untouched(image, 62, 134), "the detection scored 0.3 is below the 0.5 threshold and must not be drawn");

        // A limit of one keeps only the best (0.9); the threshold 0 admits the 0.3 one, which the limit then drops too.
        var limited = Filled(200, 56, Gray);
        Assert.Equal(1, DetectionOverlay.Draw(limited, boxes, classes, scores, names, new OverlayOptions { ScoreThreshold = 0, MaxDetections = 1, Thickness = 1 }));
        Assert.Equal(ClassPalette.Color(0), new Painter(limited).GetPixel(4, 40));
        Assert.True(Untouched(limited, 62, 200), "only the best-scored detection may be drawn with MaxDetections = 1");

        // Degenerate and NaN-scored detections are never drawn and do not use up the limit.
        float[] odd = [10, 10, 10, 30, 10, 10, 40, 40, 50, 30, 90, 50];
        Assert.Equal([2], DetectionOverlay.Select(odd, [0.99f, float.NaN, 0.7f], 0.5, 1));
        Assert.Equal([0, 2, 1], DetectionOverlay.Select(boxes, [0.5f, 0.4f, 0.5f], 0, 10));
        Assert.Empty(DetectionOverlay.Select(boxes, scores, 0.5, 0));
    }

    [Fact]
    public void LabelSitsAboveTheBoxWhenThereIsRoomAndInsideOtherwise()
    {
        const string label = "dog 0.87";
        var (tw, th) = BitmapFont.Measure(label);
        float[] low = [10, 30, 70, 60];
        Assert.Equal(label, DetectionOverlay.Label("dog", 0.87f));
        Assert.Equal((10, 30 - (th + 2), tw + 2, th + 2), DetectionOverlay.LabelRectangle(label, low, 100, 80, 1));
        float[] top = [10, 3, 70, 60];
        Assert.Equal((10, 3, tw + 2, th + 2), DetectionOverlay.LabelRectangle(label, top, 100, 80, 1));
        float[] right = [90, 30, 99, 60];
        Assert.Equal((100 - (tw + 2), 30 - (th + 2), tw + 2, th + 2), DetectionOverlay.LabelRectangle(label, right, 100, 80, 1));

        // Drawn: the label background has the class colour and holds the text in the contrasting colour.
        var image = Filled(100, 80, Gray);
        DetectionOverlay.Draw(image, low, [1], [0.87f], ["cat", "dog"], new OverlayOptions { Thickness = 1 });
        var p = new Painter(image);
        var color = ClassPalette.Color(1);
        Assert.Equal(color, p.GetPixel(10, 30 - (th + 2)));
        for (var y = 0; y < th; y++)
            for (var x = 0; x < tw; x++)
                Assert.Equal(BitmapFont.IsSet(label[x / 6], x % 6, y) ? color.Contrasting : color, p.GetPixel(11 + x, 30 - (th + 2) + 1 + y));
        Assert.Equal("class 7", DetectionOverlay.ClassName(["a"], 7));
    }

    [Fact]
    public void OverlayRejectsMismatchedInputsWithTheCounts()
    {
        var image = Image.Create(10, 10);
        var e = Assert.Throws<ArgumentException>(() => DetectionOverlay.Draw(image, new float[8], new long[2], new float[3], null));
        Assert.Contains("3 scores", e.Message);
        Assert.Throws<ArgumentException>(() => DetectionOverlay.Draw(image, new float[4], [-1], [1f], null));
        Assert.Throws<ArgumentException>(() => DetectionOverlay.Draw(image, new float[4], [0], [1f], null, new OverlayOptions { Thickness = 0 }));
        Assert.Throws<ArgumentException>(() => DetectionOverlay.Draw(image, new float[4], [0], [1f], null, new OverlayOptions { ScoreThreshold = double.NaN }));
    }
}
