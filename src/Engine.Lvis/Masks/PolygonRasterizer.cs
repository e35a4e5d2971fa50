// COCO's polygon rasteriser (maskApi rleFrPoly), which decides the ground-truth masks of LVIS segm
// evaluation. The rule:
//  1. Vertices go to a 5x finer grid as (int)(5*v + 0.5) (C truncation toward zero); the polygon is closed.
//  2. Each edge is walked one grid step at a time along its longer axis (x when |dx| >= |dy|), both end
//     points included; the other coordinate of step t is (int)(a + slope*t + 0.5), measured from the end
//     point with the smaller coordinate on the walked axis, so an edge gives the same points either way.
//  3. Wherever two consecutive points differ in x, the crossed column xg = min(x_prev, x_next) counts if it
//     lies on a pixel centre line, xg = 5c + 2 (i.e. (xg + 0.5)/5 - 0.5 == c) with 0 <= c < W; its row is
//     r = ceil(clamp((min(y_prev, y_next) + 0.5)/5 - 0.5, 0, H)).
//  4. Each such (c, r) is a run boundary at column-major position c*H + r: the mask flips there. A position
//     hit an even number of times cancels; one at H*W is past the last pixel. So an integer rectangle
//     [x0,x1)×[y0,y1) gives exactly its pixels.
// Here step 3 is taken edge by edge: consecutive points of two edges meet at the shared vertex, which has
// the same x on both sides unless the vertex lies left of x = 0 on the fine grid (there truncation can
// move one side's copy by one), where the crossing column is negative and never counts; and an x-major
// edge crosses a column at every step, so only the steps that cross a pixel-centre line inside the image
// are visited. An image with no pixels gives the empty encoding [0] (COCO's code returns runs that do
// not sum to 0 when W = 0).
using System.Runtime.InteropServices;

namespace Engine.Lvis.Masks;

internal static class PolygonRasterizer
{
    private const int Scale = 5;

    // Fine-grid coordinates must keep differences of two of them inside int.
    private const double MaxFine = 1 << 30;

    /// <summary>Rasterises one polygon given as interleaved x0,y0,x1,y1,... (any number of points).</summary>
    public static Rle Rasterize(ReadOnlySpan<double> xy, int height, int width, string call)
    {
        var k = xy.Length / 2;
        var fx = new int[k + 1];
        var fy = new int[k + 1];
        for (var j = 0; j < k; j++)
        {
            fx[j] = ToFineGrid(xy[2 * j], call);
            fy[j] = ToFineGrid(xy[2 * j + 1], call);
        }
        if (k > 0)
        {
            fx[k] = fx[0];
            fy[k] = fy[0];
        }

        var pixels = height * width;
        if (pixels == 0) return new Rle(height, width, [0]);

        var boundaries = new List<int>();
        for (var j = 0; j < k; j++)
            AddEdgeCrossings(fx[j], fy[j], fx[j + 1], fy[j + 1], height, width, boundaries);
        return FromToggles(boundaries, height, width);
    }

    private static int ToFineGrid(double v, string call)
    {
        var fine = Scale * v + 0.5;
        if (!(Math.Abs(fine) < MaxFine))
            throw new ArgumentException(
                $"{call}: polygon coordinate {v} is not a finite number within ±{MaxFine / Scale}; coordinates are pixel positions.");
        return (int)fine;
    }

    /// <summary>Appends the position c*H + r of every pixel-centre crossing of the edge (x0,y0)-(x1,y1) (fine grid).</summary>
    private static void AddEdgeCrossings(int x0, int y0, int x1, int y1, int height, int width, List<int> boundaries)
    {
        int dx = Math.Abs(x1 - x0), dy = Math.Abs(y1 - y0);
        if (dx >= dy)
        {
            if (dx == 0) return;   // both ends on one fine point: a single point, nothing crossed
            if (x0 > x1) (x0, y0, x1, y1) = (x1, y1, x0, y0);
            var slope = (double)(y1 - y0) / dx;
            // Step t -> t+1 crosses fine column x0 + t; the pixel-centre columns are 5c + 2 with 0 <= c < W.
            var first = Math.Max(x0, 2);
            first += Mod(2 - first, Scale);
            var last = (int)Math.Min(x1 - 1, Scale * (width - 1L) + 2);
            for (var xg = first; xg <= last; xg += Scale)
            {
                var t = xg - x0;
                var ya = (int)(y0 + slope * t + 0.5);
                var yb = (int)(y0 + slope * (t + 1) + 0.5);
                boundaries.Add((xg - 2) / Scale * height + RowOf(Math.Min(ya, yb), height));
            }
        }
        else
        {
            if (y0 > y1) (x0, y0, x1, y1) = (x1, y1, x0, y0);
            var slope = (double)(x1 - x0) / dy;
            // |slope| < 1, so consecutive steps differ in x by at most one fine column.
            var xa = (int)(x0 + 0.5);   // step 0; x0 + 1 when x0 < 0, as C's truncation gives
            for (var t = 0; t < dy; t++)
            {
                var xb = (int)(x0 + slope * (t + 1) + 0.5);
                if (xb != xa)
                {
                    var xg = Math.Min(xa, xb);
                    if (xg >= 2 && Mod(xg - 2, Scale) == 0 && (xg - 2) / Scale < width)
                        boundaries.Add((xg - 2) / Scale * height + RowOf(y0 + t, height));
                    xa = xb;
                }
            }
        }
    }

    /// <summary>ceil(clamp((yg + 0.5)/5 - 0.5, 0, H)) for a fine-grid y.</summary>
    private static int RowOf(int yg, int height)
    {
        var row = (yg + 0.5) / Scale - 0.5;
        if (row < 0) row = 0;
        else if (row > height) row = height;
        return (int)Math.Ceiling(row);
    }

    private static int Mod(int a, int m)
    {
        var r = a % m;
        return r < 0 ? r + m : r;
    }

    /// <summary>
    /// Runs from toggle positions: the mask flips at every position hit an odd number of times
    /// (positions are at most H*W; a flip at H*W is past the last pixel).
    /// </summary>
    private static Rle FromToggles(List<int> positions, int height, int width)
    {
        var pixels = height * width;
        var sorted = CollectionsMarshal.AsSpan(positions);
        sorted.Sort();
        var counts = new List<uint>(sorted.Length + 1);
        var runStart = 0;
        for (var i = 0; i < sorted.Length;)
        {
            var p = sorted[i];
            var hits = 1;
            while (i + hits < sorted.Length && sorted[i + hits] == p) hits++;
            i += hits;
            if ((hits & 1) == 0 || p >= pixels) continue;
            counts.Add((uint)(p - runStart));
            runStart = p;
        }
        counts.Add((uint)(pixels - runStart));
        return new Rle(height, width, counts.ToArray());
    }
}
