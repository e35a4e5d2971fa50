// Tests of Synthetic/Rasterizer.cs: coverage against a brute-force reference that point-samples each
// pixel on the same four sub-scanlines at 64 horizontal positions with the winding number, total
// coverage against the shoelace area, the ring's hole, and the shoelace area itself on hand-worked
// polygons.
using Engine.Data.Synthetic;

namespace Engine.Data.Tests.Synthetic;

public class RasterizerTests
{
    [Fact]
    public void ShoelaceAreaOfHandWorkedPolygons()
    {
        // Unit square scaled to 3×2 → 6; right triangle with legs 4 and 3 → 6; clockwise order gives the same area.
        Assert.Equal(6, Rasterizer.Area([1, 1, 4, 1, 4, 3, 1, 3]), 12);
        Assert.Equal(6, Rasterizer.Area([0, 0, 4, 0, 0, 3]), 12);
        Assert.Equal(6, Rasterizer.Area([0, 0, 0, 3, 4, 0]), 12);
    }

    [Fact]
    public void CoverageMatchesPointSamplingReference()
    {
        var g = TestSupport.Fresh(out var seed);
        const int size = 28;
        foreach (var shape in Enum.GetValues<ShapeKind>())
        {
            var polygon = Shapes.Outline(shape, 4 + 7 * g.NextDouble(), 4 + 7 * g.NextDouble(), (g.NextDouble() - 0.5) * 0.6);
            for (var i = 0; i < polygon.Length; i += 2)
            {
                polygon[i] += 14 + (g.NextDouble() - 0.5) * 4;
                polygon[i + 1] += 14 + (g.NextDouble() - 0.5) * 4;
            }
            var fast = new float[size * size];
            Rasterizer.Fill(polygon, size, size, fast);
            var reference = ReferenceCoverage(polygon, size, size);
            for (var p = 0; p < fast.Length; p++)
                // The reference samples 64 points per sub-scanline: each of a scanline's (at most a few) crossings inside a
                // pixel is located to 1/64 px, weighted 1/4 → ≤ 1/256 per crossing; 0.02 allows several.
                Assert.True(Math.Abs(fast[p] - reference[p]) <= 0.02,
                    $"{shape}: pixel ({p % size}, {p / size}) coverage {fast[p]:F4}, reference {reference[p]:F4} (seed {seed})");
            var total = fast.Sum(v => (double)v);
            var area = Rasterizer.Area(polygon);
            // Exact horizontally, so the only error is the vertical midpoint rule over bands of height 1/4: in each band
            // |∫w − w(mid)/4| ≤ (max w − min w)/4, summing to ≤ TV(w)/4, and the total variation of the chord length w(y)
            // is at most the summed horizontal travel Σ|Δx| of the edges.
            var travel = 0.0;
            for (var i = 0; i < polygon.Length; i += 2) travel += Math.Abs(polygon[(i + 2) % polygon.Length] - polygon[i]);
            Assert.True(Math.Abs(total - area) <= travel / 4, $"{shape}: coverage sums to {total:F2}, shoelace area {area:F2}, bound {travel / 4:F2} (seed {seed})");
        }
    }

    [Fact]
    public void RingHoleIsEmptyAndAreaIsOuterMinusInner()
    {
        var ring = Shapes.Outline(ShapeKind.Ring, 20, 20);
        for (var i = 0; i < ring.Length; i++) ring[i] += 25;
        var cov = new float[50 * 50];
        Rasterizer.Fill(ring, 50, 50, cov);
        Assert.Equal(0, cov[25 * 50 + 25]);            // centre: in the hole
        Assert.Equal(1, cov[25 * 50 + 25 + 16], 5);    // 16 px right of centre: between radii 11 and 20
        Assert.Equal(0, cov[2 * 50 + 2]);              // corner: outside
        var outer = Rasterizer.Area(Shapes.Outline(ShapeKind.Circle, 20, 20));
        var inner = Rasterizer.Area(Shapes.Outline(ShapeKind.Circle, 11, 11));
        Assert.Equal(outer - inner, Rasterizer.Area(ring), 9);
    }

    [Fact]
    public void CoverageIsClippedToTheGrid()
    {
        // A square hanging over every edge of a 10×10 grid covers every pixel exactly once.
        var cov = new float[100];
        Rasterizer.Fill([-5, -5, 15, -5, 15, 15, -5, 15], 10, 10, cov);
        Assert.All(cov, v => Assert.Equal(1f, v, 5));
    }

    private static double[] ReferenceCoverage(double[] polygon, int width, int height)
    {
        const int samplesX = 64;
        var cov = new double[width * height];
        var xs = polygon.Where((_, i) => i % 2 == 0).ToArray();
        var ys = polygon.Where((_, i) => i % 2 == 1).ToArray();
        // Pixels outside the polygon's extent have no sample inside it: they stay 0.
        for (var y = Math.Max(0, (int)ys.Min()); y < Math.Min(height, (int)Math.Ceiling(ys.Max())); y++)
            for (var x = Math.Max(0, (int)xs.Min()); x < Math.Min(width, (int)Math.Ceiling(xs.Max())); x++)
            {
                var hits = 0;
                for (var k = 0; k < Rasterizer.SubScanlines; k++)
                    for (var s = 0; s < samplesX; s++)
                        if (Winding(polygon, x + (s + 0.5) / samplesX, y + (k + 0.5) / Rasterizer.SubScanlines) != 0) hits++;
                cov[y * width + x] = (double)hits / (samplesX * Rasterizer.SubScanlines);
            }
        return cov;
    }

    /// <summary>Winding number of the closed polygon around (px, py), by signed upward/downward crossings of the ray to +x.</summary>
    private static int Winding(double[] p, double px, double py)
    {
        var n = p.Length / 2;
        var w = 0;
        for (var i = 0; i < n; i++)
        {
            var j = (i + 1) % n;
            double x0 = p[2 * i], y0 = p[2 * i + 1], x1 = p[2 * j], y1 = p[2 * j + 1];
            if (y0 <= py && y1 > py && Cross(x0, y0, x1, y1, px, py) > 0) w++;
            else if (y0 > py && y1 <= py && Cross(x0, y0, x1, y1, px, py) < 0) w--;
        }
        return w;
    }

    private static double Cross(double x0, double y0, double x1, double y1, double px, double py) => (x1 - x0) * (py - y0) - (px - x0) * (y1 - y0);
}
