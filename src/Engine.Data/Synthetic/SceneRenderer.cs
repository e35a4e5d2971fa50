// Draws one synthetic image: a muted, noisy background (tinted grey, a linear gradient, a low ripple and
// per-pixel noise), then the planned objects from largest to smallest, so a small object is never
// hidden and a large one is at most partly covered. Object extents are log-uniform between the minimum
// size and MaxObjectFraction of the image; each gets an aspect jitter of 0.75–1.33 and a rotation of up
// to ±15°. A position is tried up to 24 times and the first with little overlap is taken (every earlier
// box keeps ≥ 70% of its area uncovered by this box and IoU ≤ 0.3); otherwise the least overlapping try.
// All randomness comes from the image's own generator, so images can be drawn on any thread.
namespace Engine.Data.Synthetic;

internal sealed record PlannedObject(int ClassIndex);

internal sealed record DrawnObject(int ClassIndex, double[] Polygon, double MinX, double MinY, double MaxX, double MaxY, double Area);

internal static class SceneRenderer
{
    private const int PlacementTries = 24;
    private const double AcceptableOverlap = 0.3;

    public static (byte[] Pixels, DrawnObject[] Objects) Render(IReadOnlyList<PlannedObject> planned, IReadOnlyList<SyntheticClass> classes,
                                                               SyntheticOptions options, Generator g, ulong noiseSeed)
    {
        var s = options.ImageSize;
        var minSize = Math.Min(options.MinObjectSize, 0.5 * s);
        var maxSize = Math.Max(minSize, options.MaxObjectFraction * s);

        // Geometry first (sizes and shapes), then placement from the largest down.
        var shapes = new List<(int Planned, double[] Outline, double Area)>(planned.Count);
        for (var i = 0; i < planned.Count; i++)
        {
            var cls = classes[planned[i].ClassIndex];
            var size = minSize * Math.Exp(g.NextDouble() * Math.Log(maxSize / minSize));
            var aspect = Math.Exp((g.NextDouble() * 2 - 1) * Math.Log(4.0 / 3.0));
            var angle = (g.NextDouble() * 2 - 1) * Math.PI / 12;
            var outline = Shapes.Outline(cls.Shape, 0.5 * size * Math.Sqrt(aspect), 0.5 * size / Math.Sqrt(aspect), angle);
            var (x0, y0, x1, y1) = Extent(outline);
            // Shrink outlines that do not fit in the image (rotation and aspect can push a large one past it).
            var fit = Math.Min(1.0, (s - 2) / Math.Max(x1 - x0, y1 - y0));
            if (fit < 1) for (var k = 0; k < outline.Length; k++) outline[k] *= fit;
            shapes.Add((i, outline, (x1 - x0) * (y1 - y0) * fit * fit));
        }
        shapes.Sort((a, b) => a.Area != b.Area ? b.Area.CompareTo(a.Area) : a.Planned.CompareTo(b.Planned));

        var drawn = new List<DrawnObject>(planned.Count);
        var pixels = new byte[s * s * 3];
        var colour = new float[s * s * 3];
        DrawBackground(colour, s, g, noiseSeed);
        var coverage = new float[s * s];
        foreach (var (index, outline, _) in shapes)
        {
            var (x0, y0, x1, y1) = Extent(outline);
            double bestDx = 0, bestDy = 0, bestScore = double.MaxValue;
            for (var t = 0; t < PlacementTries; t++)
            {
                // Offsets keep the whole outline inside [0, S].
                var dx = -x0 + g.NextDouble() * (s - (x1 - x0));
                var dy = -y0 + g.NextDouble() * (s - (y1 - y0));
                var score = 0.0;
                foreach (var d in drawn)
                    score = Math.Max(score, Overlap(x0 + dx, y0 + dy, x1 + dx, y1 + dy, d));
                if (score < bestScore) (bestDx, bestDy, bestScore) = (dx, dy, score);
                if (score <= AcceptableOverlap) break;
            }
            var polygon = new double[outline.Length];
            for (var k = 0; k < outline.Length; k += 2)
            {
                // Two decimals: the polygon written to JSON is exactly the one drawn.
                polygon[k] = Math.Clamp(Math.Round(outline[k] + bestDx, 2), 0, s);
                polygon[k + 1] = Math.Clamp(Math.Round(outline[k + 1] + bestDy, 2), 0, s);
            }
            var (px0, py0, px1, py1) = Extent(polygon);
            var obj = new DrawnObject(planned[index].ClassIndex, polygon, px0, py0, px1, py1, Rasterizer.Area(polygon));
            DrawObject(colour, coverage, s, obj, classes[obj.ClassIndex], g, noiseSeed ^ (ulong)(drawn.Count + 1) * 0x9E3779B97F4A7C15UL);
            drawn.Add(obj);
        }

        for (var i = 0; i < pixels.Length; i++) pixels[i] = (byte)Math.Clamp((int)MathF.Round(colour[i]), 0, 255);
        return (pixels, drawn.ToArray());
    }

    private static double Overlap(double ax0, double ay0, double ax1, double ay1, DrawnObject b)
    {
        var iw = Math.Min(ax1, b.MaxX) - Math.Max(ax0, b.MinX);
        var ih = Math.Min(ay1, b.MaxY) - Math.Max(ay0, b.MinY);
        if (iw <= 0 || ih <= 0) return 0;
        var inter = iw * ih;
        var areaA = (ax1 - ax0) * (ay1 - ay0);
        var areaB = (b.MaxX - b.MinX) * (b.MaxY - b.MinY);
        var iou = inter / (areaA + areaB - inter);
        // The larger of IoU and the fraction of the earlier (larger) box this one covers.
        return Math.Max(iou, inter / areaB);
    }

    internal static (double X0, double Y0, double X1, double Y1) Extent(ReadOnlySpan<double> p)
    {
        double x0 = double.MaxValue, y0 = double.MaxValue, x1 = double.MinValue, y1 = double.MinValue;
        for (var i = 0; i < p.Length; i += 2)
        {
            x0 = Math.Min(x0, p[i]);
            x1 = Math.Max(x1, p[i]);
            y0 = Math.Min(y0, p[i + 1]);
            y1 = Math.Max(y1, p[i + 1]);
        }
        return (x0, y0, x1, y1);
    }

    private static void DrawBackground(float[] rgb, int s, Generator g, ulong noiseSeed)
    {
        var level = 70 + 100 * g.NextDouble();
        Span<double> tint = [(g.NextDouble() * 2 - 1) * 20, (g.NextDouble() * 2 - 1) * 20, (g.NextDouble() * 2 - 1) * 20];
        var gx = (g.NextDouble() * 2 - 1) * 30;
        var gy = (g.NextDouble() * 2 - 1) * 30;
        var fx = 0.05 + 0.25 * g.NextDouble();
        var fy = 0.05 + 0.25 * g.NextDouble();
        var phx = 2 * Math.PI * g.NextDouble();
        var phy = 2 * Math.PI * g.NextDouble();
        var colX = new double[s];
        var rowY = new double[s];
        for (var i = 0; i < s; i++)
        {
            colX[i] = gx * i / s + 8 * Math.Sin(fx * i + phx);
            rowY[i] = gy * i / s + 8 * Math.Sin(fy * i + phy);
        }
        for (var y = 0; y < s; y++)
            for (var x = 0; x < s; x++)
            {
                var h = Hash(noiseSeed, (ulong)(y * s + x));
                var o = (y * s + x) * 3;
                var baseValue = level + colX[x] + rowY[y];
                for (var c = 0; c < 3; c++)
                    rgb[o + c] = (float)(baseValue + tint[c] + Noise(h, c, 12));
            }
    }

    private static void DrawObject(float[] rgb, float[] coverage, int s, DrawnObject obj, SyntheticClass cls, Generator g, ulong noiseSeed)
    {
        var bx0 = Math.Max(0, (int)Math.Floor(obj.MinX));
        var by0 = Math.Max(0, (int)Math.Floor(obj.MinY));
        var bx1 = Math.Min(s, (int)Math.Ceiling(obj.MaxX));
        var by1 = Math.Min(s, (int)Math.Ceiling(obj.MaxY));
        for (var y = by0; y < by1; y++) Array.Clear(coverage, y * s + bx0, bx1 - bx0);
        Rasterizer.Fill(obj.Polygon, s, s, coverage, by0, by1);

        var brightness = 0.85 + 0.25 * g.NextDouble();
        Span<float> primary = [Shade(cls.R, brightness), Shade(cls.G, brightness), Shade(cls.B, brightness)];
        // Dark colours get a light pattern, the others a dark one, so every texture is visible.
        var luma = 0.299 * cls.R + 0.587 * cls.G + 0.114 * cls.B;
        Span<float> secondary = stackalloc float[3];
        for (var c = 0; c < 3; c++)
            secondary[c] = luma < 80 ? primary[c] + (255 - primary[c]) * 0.55f : primary[c] * 0.35f;
        var extent = Math.Max(obj.MaxX - obj.MinX, obj.MaxY - obj.MinY);
        var period = Math.Clamp(extent / 5, 4, 14);
        var (sin, cos) = Math.SinCos(g.NextDouble() * Math.PI);
        var cx = 0.5 * (obj.MinX + obj.MaxX);
        var cy = 0.5 * (obj.MinY + obj.MaxY);

        for (var y = by0; y < by1; y++)
            for (var x = bx0; x < bx1; x++)
            {
                var a = Math.Min(1f, coverage[y * s + x]);
                if (a <= 0) continue;
                // Pattern coordinates relative to the object centre, turned by a per-object angle.
                var dx = x + 0.5 - cx;
                var dy = y + 0.5 - cy;
                var u = (cos * dx + sin * dy) / period;
                var v = (-sin * dx + cos * dy) / period;
                var alt = cls.Texture switch
                {
                    TextureKind.Stripes => u - Math.Floor(u) < 0.5,
                    TextureKind.Checker => ((long)Math.Floor(u) + (long)Math.Floor(v)) % 2 == 0,
                    TextureKind.Dots => Square(u - Math.Round(u)) + Square(v - Math.Round(v)) < 0.09,
                    _ => false,
                };
                var h = Hash(noiseSeed, (ulong)(y * s + x));
                var o = (y * s + x) * 3;
                for (var c = 0; c < 3; c++)
                {
                    var value = (alt ? secondary[c] : primary[c]) + (float)Noise(h, c, 6);
                    rgb[o + c] = rgb[o + c] * (1 - a) + value * a;
                }
            }
    }

    private static float Shade(byte value, double brightness) => (float)Math.Min(255, value * brightness);

    private static double Square(double v) => v * v;

    /// <summary>Uniform noise in [−amplitude, amplitude] from byte <paramref name="channel"/> of the hash.</summary>
    private static double Noise(ulong hash, int channel, double amplitude) => ((hash >> (8 * channel)) & 0xFF) / 255.0 * 2 * amplitude - amplitude;

    private static ulong Hash(ulong seed, ulong index)
    {
        var z = seed + 0x9E3779B97F4A7C15UL * (index + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
