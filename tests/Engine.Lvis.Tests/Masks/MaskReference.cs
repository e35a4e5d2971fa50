// Plain references for the mask tests, written from the definitions on dense pixel grids: a mask is a
// column-major byte array (index x*H + y); its RLE lists the lengths of alternating runs of 0s and 1s,
// zeros first. Also random masks and run lists of awkward shapes, and the literal COCO polygon walk
// (every fine-grid point in traversal order, then a toggle grid) for checking the rasteriser.
using Engine.Lvis.Masks;

namespace Engine.Lvis.Tests.Masks;

internal static class MaskReference
{
    /// <summary>Image sizes (H, W) that catch edge cases: empty, single pixel, single row/column, odd sizes.</summary>
    public static readonly (int H, int W)[] Sizes =
        [(0, 0), (0, 5), (4, 0), (1, 1), (1, 17), (23, 1), (2, 3), (7, 5), (13, 29), (31, 8), (40, 37)];

    public static uint[] EncodeDense(ReadOnlySpan<byte> mask)
    {
        var counts = new List<uint>();
        byte current = 0;
        uint run = 0;
        foreach (var pixel in mask)
        {
            if (pixel != current)
            {
                counts.Add(run);
                run = 0;
                current = pixel;
            }
            run++;
        }
        counts.Add(run);
        return [.. counts];
    }

    public static byte[] DecodeDense(uint[] counts, int pixels)
    {
        var mask = new byte[pixels];
        var i = 0;
        for (var j = 0; j < counts.Length; j++)
            for (var n = 0u; n < counts[j]; n++)
                mask[i++] = (byte)(j % 2);
        return mask;
    }

    public static long AreaDense(byte[] mask) => mask.Count(p => p == 1);

    /// <summary>Tight box of the set pixels, (0,0,0,0) when none.</summary>
    public static (double X, double Y, double W, double H) BoxDense(byte[] mask, int height, int width)
    {
        int x0 = int.MaxValue, y0 = int.MaxValue, x1 = -1, y1 = -1;
        for (var x = 0; x < width; x++)
            for (var y = 0; y < height; y++)
                if (mask[x * height + y] == 1)
                {
                    x0 = Math.Min(x0, x); x1 = Math.Max(x1, x);
                    y0 = Math.Min(y0, y); y1 = Math.Max(y1, y);
                }
        return x1 < 0 ? (0, 0, 0, 0) : (x0, y0, x1 - x0 + 1, y1 - y0 + 1);
    }

    /// <summary>A random mask whose kind (empty, full, sparse, dense, rectangles, single pixel) is drawn too.</summary>
    public static byte[] RandomMask(Random rng, int height, int width)
    {
        var mask = new byte[height * width];
        if (mask.Length == 0) return mask;
        switch (rng.Next(7))
        {
            case 0: break;
            case 1: mask.AsSpan().Fill(1); break;
            case 2: mask[rng.Next(mask.Length)] = 1; break;
            case 3:
            case 4:
                var density = rng.NextDouble();
                for (var i = 0; i < mask.Length; i++) mask[i] = (byte)(rng.NextDouble() < density ? 1 : 0);
                break;
            default:
                for (var r = rng.Next(1, 4); r > 0; r--)
                {
                    int xa = rng.Next(width), xb = rng.Next(xa, width), ya = rng.Next(height), yb = rng.Next(ya, height);
                    for (var x = xa; x <= xb; x++)
                        for (var y = ya; y <= yb; y++)
                            mask[x * height + y] = 1;
                }
                break;
        }
        return mask;
    }

    /// <summary>
    /// The counts with empty runs inserted in pairs (which leaves the mask as it was), never right after an
    /// empty first run: there COCO's box arithmetic wraps around (see RleTests.ToBox_HandWorked).
    /// </summary>
    public static uint[] WithEmptyRunPairs(Random rng, uint[] counts)
    {
        var result = new List<uint>();
        for (var j = 0; j < counts.Length; j++)
        {
            result.Add(counts[j]);
            if (j < counts.Length - 1 && (j > 0 || counts[0] > 0) && rng.Next(3) == 0) result.AddRange([0u, 0u]);
        }
        return [.. result];
    }

    /// <summary>IoU from pixel counts: COCO's rule for same-size masks (0 when nothing intersects; crowd: union = dt area).</summary>
    public static double IouDense(byte[] dt, byte[] gt, bool crowd)
    {
        long intersection = 0, union = 0, dtArea = 0;
        for (var i = 0; i < dt.Length; i++)
        {
            intersection += dt[i] & gt[i];
            union += dt[i] | gt[i];
            dtArea += dt[i];
        }
        if (intersection == 0) return 0;
        return (double)intersection / (crowd ? dtArea : union);
    }

    /// <summary>
    /// COCO's polygon rasteriser taken literally: every fine-grid point of every edge in traversal order,
    /// each x-changing pair of consecutive points mapped back to a pixel (c, r), toggles accumulated on a
    /// dense (H*W + 1) grid, then the mask is the running parity.
    /// </summary>
    public static byte[] PolygonDense(double[] xy, int height, int width)
    {
        var k = xy.Length / 2;
        var fx = new int[k + 1];
        var fy = new int[k + 1];
        for (var j = 0; j < k; j++)
        {
            fx[j] = (int)(5 * xy[2 * j] + 0.5);
            fy[j] = (int)(5 * xy[2 * j + 1] + 0.5);
        }
        fx[k] = fx[0];
        fy[k] = fy[0];
        var us = new List<int>();
        var vs = new List<int>();
        for (var j = 0; j < k; j++)
        {
            int xs = fx[j], xe = fx[j + 1], ys = fy[j], ye = fy[j + 1];
            int dx = Math.Abs(xe - xs), dy = Math.Abs(ys - ye);
            var flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
            if (flip) (xs, xe, ys, ye) = (xe, xs, ye, ys);
            if (dx >= dy)
            {
                var s = (double)(ye - ys) / dx;   // NaN for a repeated point; its y is never read
                for (var d = 0; d <= dx; d++)
                {
                    var t = flip ? dx - d : d;
                    us.Add(t + xs);
                    vs.Add((int)(ys + s * t + 0.5));
                }
            }
            else
            {
                var s = (double)(xe - xs) / dy;
                for (var d = 0; d <= dy; d++)
                {
                    var t = flip ? dy - d : d;
                    vs.Add(t + ys);
                    us.Add((int)(xs + s * t + 0.5));
                }
            }
        }
        var toggles = new byte[height * width + 1];
        for (var j = 1; j < us.Count; j++)
        {
            if (us[j] == us[j - 1]) continue;
            double xd = us[j] < us[j - 1] ? us[j] : us[j] - 1;
            xd = (xd + 0.5) / 5 - 0.5;
            if (Math.Floor(xd) != xd || xd < 0 || xd > width - 1) continue;
            double yd = Math.Min(vs[j], vs[j - 1]);
            yd = (yd + 0.5) / 5 - 0.5;
            yd = Math.Ceiling(Math.Clamp(yd, 0, height));
            toggles[(int)xd * height + (int)yd] ^= 1;
        }
        var mask = new byte[height * width];
        byte parity = 0;
        for (var i = 0; i < mask.Length; i++)
        {
            parity ^= toggles[i];
            mask[i] = parity;
        }
        return mask;
    }

    /// <summary>Column-major mask with exactly the listed (x, y) pixels set.</summary>
    public static byte[] MaskOf(int height, int width, params (int X, int Y)[] pixels)
    {
        var mask = new byte[height * width];
        foreach (var (x, y) in pixels) mask[x * height + y] = 1;
        return mask;
    }

    /// <summary>The (x, y) pixels of the rectangle [x0, x1) x [y0, y1).</summary>
    public static (int X, int Y)[] Block(int x0, int x1, int y0, int y1) =>
        [.. from x in Enumerable.Range(x0, x1 - x0) from y in Enumerable.Range(y0, y1 - y0) select (x, y)];

    public static string Describe(byte[] mask, int height, int width)
    {
        var rows = new System.Text.StringBuilder();
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++) rows.Append(mask[x * height + y] == 1 ? '#' : '.');
            rows.Append('\n');
        }
        return rows.ToString();
    }

    public static void EqualMasks(byte[] expected, Rle actual, string context)
    {
        var decoded = MaskApi.Decode(actual);
        if (!decoded.AsSpan().SequenceEqual(expected))
            Assert.Fail($"{context}\nexpected:\n{Describe(expected, actual.Height, actual.Width)}actual:\n{Describe(decoded, actual.Height, actual.Width)}");
    }
}
