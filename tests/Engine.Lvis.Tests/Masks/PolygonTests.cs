// The polygon rasteriser: small polygons worked by hand from COCO's rule (written out in PolygonRasterizer),
// and random polygons (inside, across and outside the image, on integer, half-integer and arbitrary
// coordinates) against the literal point-by-point walk of MaskReference.PolygonDense.
using Engine.Lvis.Masks;

namespace Engine.Lvis.Tests.Masks;

public class PolygonTests
{
    private static Rle Polygon(int height, int width, params double[] xy) => MaskApi.FromPolygons([xy], height, width);

    [Fact]
    public void IntegerRectangle_GivesItsPixels()
    {
        // Rectangle x in [1, 4], y in [1, 3] -> fine grid x 5..20, y 5..15. The vertical edges never change x.
        // The top edge crosses the pixel-centre columns 5c + 2 = 7, 12, 17 (c = 1, 2, 3; 22 is past x = 20) at
        // fine y 5 -> row ceil((5 + 0.5)/5 - 0.5) = ceil(0.6) = 1; the bottom edge at y 15 -> ceil(2.6) = 3.
        // Toggles at rows 1 and 3 of columns 1..3: rows 1..2 set, the pixels [1, 4) x [1, 3).
        var expected = MaskReference.MaskOf(5, 6, MaskReference.Block(1, 4, 1, 3));
        MaskReference.EqualMasks(expected, Polygon(5, 6, 1, 1, 1, 3, 4, 3, 4, 1), "rectangle (1,1)-(4,3)");
        MaskReference.EqualMasks(expected, MaskApi.FromBox(1, 1, 3, 2, 5, 6), "box [1, 1, 3, 2]");
    }

    [Fact]
    public void HalfIntegerRectangle_RoundsUpOnBothSides()
    {
        // x, y in [0.5, 2.5] -> fine (int)(2.5 + 0.5) = 3 and (int)(12.5 + 0.5) = 13. Pixel-centre columns
        // crossed between 3 and 13: 7 and 12 (c = 1, 2; 2 is left of 3). Rows: ceil((3.5)/5 - 0.5) = ceil(0.2) = 1
        // and ceil((13.5)/5 - 0.5) = ceil(2.2) = 3. So pixels [1, 3) x [1, 3): the centres 0.5 on the left/top
        // edge are out, the centres 2.5 on the right/bottom edge are in.
        var expected = MaskReference.MaskOf(4, 4, MaskReference.Block(1, 3, 1, 3));
        MaskReference.EqualMasks(expected, Polygon(4, 4, 0.5, 0.5, 2.5, 0.5, 2.5, 2.5, 0.5, 2.5), "rectangle (0.5,0.5)-(2.5,2.5)");
        MaskReference.EqualMasks(expected, MaskApi.FromBox(0.5, 0.5, 2, 2, 4, 4), "box [0.5, 0.5, 2, 2]");
    }

    [Fact]
    public void RightTriangle_HandWorked()
    {
        // (0,0), (4,0), (0,4) -> fine (0,0), (20,0), (0,20).
        // Edge 1, y = 0: crosses columns 2, 7, 12, 17 (c = 0..3) at fine y 0 -> row ceil(-0.4 -> 0) = 0.
        // Edge 2, (20,0)->(0,20): |dx| = |dy|, walked along x from its left end (0,20) with slope -1: y(t) = 20 - t;
        //   the step t -> t+1 at t = 2, 7, 12, 17 has min y 17, 12, 7, 2 -> rows 3, 2, 1, 0 for c = 0, 1, 2, 3.
        // Edge 3 is vertical. Toggles: column 0 rows 0, 3; column 1 rows 0, 2; column 2 rows 0, 1; column 3 row 0
        // twice (cancels). Pixels: (0,0..2), (1,0..1), (2,0): the centres strictly inside x + y < 4.
        var expected = MaskReference.MaskOf(6, 6, (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0));
        MaskReference.EqualMasks(expected, Polygon(6, 6, 0, 0, 4, 0, 0, 4), "triangle");
        Assert.Equal(new Rle(6, 6, [0, 3, 3, 2, 4, 1, 23]), Polygon(6, 6, 0, 0, 4, 0, 0, 4));
    }

    [Fact]
    public void Diamond_HandWorked()
    {
        // (2,0), (4,2), (2,4), (0,2) -> fine (10,0), (20,10), (10,20), (0,10); every edge has |dx| = |dy| = 10 and
        // is walked along x from its left end, y(t) = y_left +- t. Steps crossing columns 2, 7, 12, 17:
        //   (10,0)->(20,10):  t = 2, 7 (columns 12, 17): min y 2, 7  -> (c2, r0), (c3, r1)
        //   (20,10)->(10,20): from (10,20), y = 20 - t: min y 17, 12 -> (c2, r3), (c3, r2)
        //   (10,20)->(0,10):  from (0,10), y = 10 + t: t = 2, 7 (columns 2, 7): min y 12, 17 -> (c0, r2), (c1, r3)
        //   (0,10)->(10,0):   y = 10 - t: min y 7, 2 -> (c0, r1), (c1, r0)
        // Columns: 0 rows [1,2), 1 rows [0,3), 2 rows [0,3), 3 rows [1,2): 8 pixels, the diamond's area.
        var expected = MaskReference.MaskOf(5, 5, (0, 1), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (3, 1));
        MaskReference.EqualMasks(expected, Polygon(5, 5, 2, 0, 4, 2, 2, 4, 0, 2), "diamond");
        // Same polygon, other orientation and other first vertex: same points, same mask.
        MaskReference.EqualMasks(expected, Polygon(5, 5, 0, 2, 2, 4, 4, 2, 2, 0), "diamond reversed");
        MaskReference.EqualMasks(expected, Polygon(5, 5, 2, 4, 0, 2, 2, 0, 4, 2), "diamond rotated");
    }

    [Fact]
    public void PolygonsPartlyOutside_AreClipped()
    {
        // (-2,-2)..(3,3) in 4x4: fine (int)(-10 + 0.5) = -9 (truncation toward zero) and 15. Columns crossed
        // between -9 and 15 at 5c + 2 with c >= 0: 2, 7, 12 (c = 0..2). Rows: top y -9 -> below 0 -> 0; bottom
        // ceil((15.5)/5 - 0.5) = ceil(2.6) = 3. Pixels [0, 3) x [0, 3).
        MaskReference.EqualMasks(
            MaskReference.MaskOf(4, 4, MaskReference.Block(0, 3, 0, 3)), Polygon(4, 4, -2, -2, 3, -2, 3, 3, -2, 3), "top-left overhang");
        // (2,2)..(6,6) in 4x4: fine 10..30; columns 12, 17 (c = 2, 3; c = 4, 5 are past W - 1 = 3). Rows: top
        // ceil(1.6) = 2, bottom ceil(5.6) = 6 -> clamped to H = 4, i.e. the boundary at the next column's top.
        MaskReference.EqualMasks(
            MaskReference.MaskOf(4, 4, MaskReference.Block(2, 4, 2, 4)), Polygon(4, 4, 2, 2, 6, 2, 6, 6, 2, 6), "bottom-right overhang");
        // Entirely outside: no pixel.
        Assert.Equal(new Rle(4, 4, [16]), Polygon(4, 4, 5, 5, 9, 5, 9, 9));
        Assert.Equal(new Rle(4, 4, [16]), Polygon(4, 4, -5, 1, -1, 1, -1, 3));
        // Covering the whole image.
        Assert.Equal(new Rle(4, 4, [0, 16]), Polygon(4, 4, -1, -1, 9, -1, 9, 9, -1, 9));
    }

    [Fact]
    public void TwoOverlappingPolygons_GiveTheirUnion()
    {
        // [0,3) x [0,2) and [1,4) x [1,3) in a 4x5 image (integer rectangles give exactly their pixels).
        var pixels = MaskReference.Block(0, 3, 0, 2).Union(MaskReference.Block(1, 4, 1, 3)).ToArray();
        var union = MaskApi.FromPolygons([[0, 0, 3, 0, 3, 2, 0, 2], [1, 1, 4, 1, 4, 3, 1, 3]], 4, 5);
        MaskReference.EqualMasks(MaskReference.MaskOf(4, 5, pixels), union, "union of two rectangles");
        Assert.Equal(pixels.Length, MaskApi.Area(union));
    }

    [Fact]
    public void RandomPolygons_MatchTheLiteralWalk()
    {
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        for (var trial = 0; trial < 600; trial++)
        {
            var (h, w) = trial % 50 == 0 ? (rng.Next(0, 2), rng.Next(0, 3)) : (rng.Next(1, 60), rng.Next(1, 60));
            var polygons = Enumerable.Range(0, rng.Next(1, 4)).Select(_ => RandomPolygon(rng, h, w, trial)).ToArray();
            var context = $"seed {seed}, trial {trial}, {h}x{w}, polygons [{string.Join("], [", polygons.Select(p => string.Join(", ", p)))}]";
            var union = new byte[h * w];
            foreach (var p in polygons)
            {
                var one = MaskReference.PolygonDense(p, h, w);
                MaskReference.EqualMasks(one, MaskApi.FromPolygons([p], h, w), context);
                for (var i = 0; i < union.Length; i++) union[i] |= one[i];
            }
            var merged = MaskApi.FromPolygons(polygons, h, w);
            Assert.True(MaskApi.Encode(union, h, w).Equals(merged), $"{context}: union {merged}");
        }
    }

    [Fact]
    public void RandomBoxes_MatchTheLiteralWalk()
    {
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        for (var trial = 0; trial < 300; trial++)
        {
            var (h, w) = (rng.Next(1, 40), rng.Next(1, 40));
            double x = Coordinate(rng, w, trial), y = Coordinate(rng, h, trial);
            double bw = rng.Next(3) == 0 ? 0 : Math.Abs(Coordinate(rng, w, trial)), bh = Math.Abs(Coordinate(rng, h, trial));
            double[] corners = [x, y, x, y + bh, x + bw, y + bh, x + bw, y];
            MaskReference.EqualMasks(
                MaskReference.PolygonDense(corners, h, w), MaskApi.FromBox(x, y, bw, bh, h, w), $"seed {seed}: box [{x}, {y}, {bw}, {bh}] in {h}x{w}");
        }
    }

    [Fact]
    public void BadPolygons_Throw()
    {
        Assert.Contains("odd number", Assert.Throws<ArgumentException>(() => MaskApi.FromPolygons([[0, 0, 1, 0, 1]], 3, 3)).Message);
        Assert.Contains("2 points", Assert.Throws<ArgumentException>(() => MaskApi.FromPolygons([[0, 0, 2, 2]], 3, 3)).Message);
        Assert.Contains("polygon 1 has 1 points", Assert.Throws<ArgumentException>(() => MaskApi.FromPolygons([[0, 0, 2, 0, 2, 2], [1, 1]], 3, 3)).Message);
        Assert.Contains("no polygons", Assert.Throws<ArgumentException>(() => MaskApi.FromPolygons([], 3, 3)).Message);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => MaskApi.FromPolygons([[0, 0, double.NaN, 0, 2, 2]], 3, 3)).Message);
        Assert.Contains("finite", Assert.Throws<ArgumentException>(() => MaskApi.FromPolygons([[0, 0, 1e12, 0, 2, 2]], 3, 3)).Message);
        Assert.Contains("negative side", Assert.Throws<ArgumentException>(() => MaskApi.FromPolygons([[0, 0, 2, 0, 2, 2]], -3, 3)).Message);
        Assert.Contains("negative", Assert.Throws<ArgumentException>(() => MaskApi.FromBox(0, 0, -1, 2, 3, 3)).Message);
    }

    [Fact]
    public void EmptyImage_GivesTheEmptyEncoding()
    {
        Assert.Equal(new Rle(0, 7, [0]), Polygon(0, 7, 0, 0, 3, 0, 3, 3));
        Assert.Equal(new Rle(5, 0, [0]), MaskApi.FromBox(0, 0, 2, 2, 5, 0));
    }

    private static double[] RandomPolygon(Random rng, int h, int w, int trial)
    {
        var points = rng.Next(3, 12);
        var xy = new double[2 * points];
        if (trial % 3 == 0)
        {
            // Star-shaped around a centre, so that edges of every slope occur.
            double cx = rng.NextDouble() * (w + 2) - 1, cy = rng.NextDouble() * (h + 2) - 1, r = rng.NextDouble() * Math.Max(h, w) + 0.2;
            for (var i = 0; i < points; i++)
            {
                var angle = 2 * Math.PI * (i + rng.NextDouble() * 0.8) / points;
                var radius = r * (0.3 + 0.7 * rng.NextDouble());
                xy[2 * i] = Quantize(rng, cx + radius * Math.Cos(angle), trial);
                xy[2 * i + 1] = Quantize(rng, cy + radius * Math.Sin(angle), trial);
            }
        }
        else
        {
            // Arbitrary, self-intersecting, repeated points now and then.
            for (var i = 0; i < points; i++)
            {
                xy[2 * i] = Coordinate(rng, w, trial);
                xy[2 * i + 1] = Coordinate(rng, h, trial);
                if (i > 0 && rng.Next(10) == 0) (xy[2 * i], xy[2 * i + 1]) = (xy[2 * i - 2], xy[2 * i - 1]);
            }
        }
        return xy;
    }

    /// <summary>A coordinate somewhat beyond [0, size] on both sides.</summary>
    private static double Coordinate(Random rng, int size, int trial) =>
        Quantize(rng, rng.NextDouble() * (size * 1.4 + 4) - size * 0.2 - 2, trial);

    /// <summary>Integer, half-integer, 2-decimal (as in LVIS files) or arbitrary doubles by turns.</summary>
    private static double Quantize(Random rng, double v, int trial) => (trial / 3 % 4) switch
    {
        0 => Math.Round(v),
        1 => Math.Round(v * 2) / 2,
        2 => Math.Round(v, 2),
        _ => v,
    };
}
