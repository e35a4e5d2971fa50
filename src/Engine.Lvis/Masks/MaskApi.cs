// COCO mask utilities with the exact behaviour of the COCO mask API (cocodataset/cocoapi
// common/maskApi.c and PythonAPI/pycocotools/_mask.pyx, commit 8c9bcc3), which the official LVIS
// evaluator uses for segm IoU: column-major run-length encoding, the compressed "counts" string,
// the polygon rasteriser, area, bounding box, union/intersection and the IoU matrix with its crowd
// rule. Results agree with that code bit for bit, its quirks on odd counts included. Inputs on which
// it reads out of bounds, divides by zero, loops forever or returns runs that do not cover the image
// (sizes that do not match, counts that do not sum to H*W, bad characters) throw here, as do a few
// it takes without complaint but which are surely mistakes: polygons of fewer than 3 points (COCO: an
// empty mask, or boxes when the first polygon has 4 numbers), boxes of negative size (COCO: the mirrored
// box) and mask bytes other than 0 and 1. Every message names the call and the problem.
namespace Engine.Lvis.Masks;

public static class MaskApi
{
    /// <summary>Run-length encodes a column-major (index x*H + y) mask of 0/1 bytes.</summary>
    public static Rle Encode(ReadOnlySpan<byte> maskColumnMajor, int height, int width)
    {
        var pixels = CheckSize(nameof(Encode), height, width);
        if (maskColumnMajor.Length != pixels)
            throw new ArgumentException(
                $"Encode: the mask holds {maskColumnMajor.Length} bytes but height*width = {height}*{width} = {pixels}.",
                nameof(maskColumnMajor));
        var bad = maskColumnMajor.IndexOfAnyExcept((byte)0, (byte)1);
        if (bad >= 0)
            throw new ArgumentException(
                $"Encode: mask byte {bad} (x={bad / height}, y={bad % height}) is {maskColumnMajor[bad]}; a mask holds only 0 and 1.",
                nameof(maskColumnMajor));

        // An empty image encodes as the single run [0], as COCO's encoder writes it.
        var counts = new List<uint>();
        var rest = maskColumnMajor;
        byte value = 0;
        while (true)
        {
            var next = rest.IndexOf((byte)(1 - value));
            var run = next < 0 ? rest.Length : next;
            counts.Add((uint)run);
            if (next < 0) break;
            rest = rest[run..];
            value = (byte)(1 - value);
        }
        return new Rle(height, width, counts.ToArray());
    }

    /// <summary>The column-major 0/1 mask (H*W bytes) of <paramref name="rle"/>.</summary>
    public static byte[] Decode(Rle rle)
    {
        ArgumentNullException.ThrowIfNull(rle);
        var mask = new byte[rle.PixelCount];
        var position = 0;
        var counts = rle.Counts;
        for (var i = 0; i < counts.Length; i++)
        {
            var run = (int)counts[i];
            if ((i & 1) == 1) mask.AsSpan(position, run).Fill(1);
            position += run;
        }
        return mask;
    }

    /// <summary>COCO's compressed "counts" string of <paramref name="rle"/>.</summary>
    public static string ToCompressedString(Rle rle)
    {
        ArgumentNullException.ThrowIfNull(rle);
        return CompressedCounts.Write(rle.Counts);
    }

    /// <summary>Reads a COCO compressed "counts" string of an H×W mask.</summary>
    public static Rle FromCompressedString(string counts, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(counts);
        CheckSize(nameof(FromCompressedString), height, width);
        return new Rle(height, width, Rle.CheckCounts(nameof(FromCompressedString), height, width, CompressedCounts.Read(counts)));
    }

    /// <summary>An RLE from an uncompressed "counts" list (COCO's frUncompressedRLE). Empty runs are kept as given.</summary>
    public static Rle FromUncompressedCounts(IReadOnlyList<long> counts, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(counts);
        CheckSize(nameof(FromUncompressedCounts), height, width);
        var runs = new uint[counts.Count];
        for (var i = 0; i < runs.Length; i++)
        {
            var c = counts[i];
            if (c < 0 || c > uint.MaxValue)
                throw new ArgumentException(
                    $"FromUncompressedCounts: count {i} is {c}; run lengths are between 0 and {uint.MaxValue}.", nameof(counts));
            runs[i] = (uint)c;
        }
        return new Rle(height, width, Rle.CheckCounts(nameof(FromUncompressedCounts), height, width, runs));
    }

    /// <summary>
    /// The union of the polygons (each x0,y0,x1,y1,... in pixel units, at least 3 points), rasterised one by
    /// one with COCO's polygon rasteriser and merged, as COCO's annToRLE does (frPyObjects, then merge).
    /// COCO reads a list whose first polygon has exactly 4 numbers as [x,y,w,h] boxes; such a list is
    /// rejected here (it has fewer than 3 points): call FromBox for boxes.
    /// </summary>
    public static Rle FromPolygons(IReadOnlyList<double[]> polygons, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(polygons);
        CheckSize(nameof(FromPolygons), height, width);
        if (polygons.Count == 0)
            throw new ArgumentException("FromPolygons: no polygons given; a polygon segmentation holds at least one polygon.", nameof(polygons));
        var parts = new Rle[polygons.Count];
        for (var i = 0; i < parts.Length; i++)
        {
            var polygon = polygons[i]
                ?? throw new ArgumentException($"FromPolygons: polygon {i} is null.", nameof(polygons));
            if (polygon.Length % 2 != 0)
                throw new ArgumentException(
                    $"FromPolygons: polygon {i} has {polygon.Length} coordinates, an odd number; it must be x0,y0,x1,y1,... pairs.",
                    nameof(polygons));
            if (polygon.Length < 6)
                throw new ArgumentException(
                    $"FromPolygons: polygon {i} has {polygon.Length / 2} points; a polygon needs at least 3 " +
                    "(COCO reads a first polygon of exactly 4 numbers as an [x,y,w,h] box: use FromBox for boxes).",
                    nameof(polygons));
            parts[i] = PolygonRasterizer.Rasterize(polygon, height, width, nameof(FromPolygons));
        }
        return parts.Length == 1 ? parts[0] : Merge(parts);
    }

    /// <summary>The mask of the box [x, y, w, h] (COCO's frBbox: the box as a 4-point polygon).</summary>
    public static Rle FromBox(double x, double y, double w, double h, int height, int width)
    {
        CheckSize(nameof(FromBox), height, width);
        if (!(w >= 0) || !(h >= 0))
            throw new ArgumentException($"FromBox: box [{x}, {y}, {w}, {h}] has a negative or NaN width or height.");
        double x1 = x + w, y1 = y + h;
        ReadOnlySpan<double> corners = [x, y, x, y1, x1, y1, x1, y];
        return PolygonRasterizer.Rasterize(corners, height, width, nameof(FromBox));
    }

    /// <summary>Number of set pixels: the sum of the odd-indexed runs.</summary>
    public static long Area(Rle rle)
    {
        ArgumentNullException.ThrowIfNull(rle);
        long area = 0;
        var counts = rle.Counts;
        for (var i = 1; i < counts.Length; i += 2) area += counts[i];
        return area;
    }

    /// <summary>
    /// The box [x, y, w, h] of the set pixels, computed as COCO's rleToBbox: from the first and last pixel
    /// of every run of 1s, with the full height taken when a run spans columns. Exact for encodings
    /// without empty runs; an empty run after the first (possible only in counts read from files) counts
    /// the pixel before it, as in COCO. An empty mask or empty image gives (0, 0, 0, 0).
    /// </summary>
    public static (double X, double Y, double W, double H) ToBox(Rle rle)
    {
        ArgumentNullException.ThrowIfNull(rle);
        return BoxOf(rle);
    }

    /// <summary>
    /// Union (or intersection) of same-size masks, merged left to right as COCO's rleMerge. One mask is
    /// returned as is. Throws where two masks both have empty runs at one pixel (only counts read from
    /// files have them), on which COCO's merge stops early and returns runs that do not cover the image.
    /// </summary>
    public static Rle Merge(IReadOnlyList<Rle> rles, bool intersect = false)
    {
        ArgumentNullException.ThrowIfNull(rles);
        if (rles.Count == 0)
            throw new ArgumentException("Merge: no masks given; merge needs at least one.", nameof(rles));
        var first = rles[0] ?? throw new ArgumentException("Merge: mask 0 is null.", nameof(rles));
        for (var i = 1; i < rles.Count; i++)
        {
            var r = rles[i] ?? throw new ArgumentException($"Merge: mask {i} is null.", nameof(rles));
            if (r.Height != first.Height || r.Width != first.Width)
                throw new ArgumentException(
                    $"Merge: mask {i} is {r.Height}x{r.Width} but mask 0 is {first.Height}x{first.Width}; only masks of one size merge.",
                    nameof(rles));
        }
        if (rles.Count == 1) return first;
        var counts = first.Counts;
        for (var i = 1; i < rles.Count; i++)
            counts = RunWalk.Merge(counts, rles[i].Counts, intersect);
        return new Rle(first.Height, first.Width, counts);
    }

    /// <summary>
    /// IoU of every detection mask with every ground-truth mask, dt-major: iou[d * gts.Count + g], as COCO's
    /// rleIou: 0 when the two boxes (ToBox) do not overlap; otherwise -1 when the sizes differ; otherwise
    /// intersection / union of pixel counts (0 when the intersection is empty), where a crowd ground truth
    /// (isCrowd[g]) takes the detection's area as the union. isCrowd is empty (no crowd) or has gts.Count
    /// entries; iou has exactly dts.Count * gts.Count entries, every one written.
    /// </summary>
    public static void Iou(IReadOnlyList<Rle> dts, IReadOnlyList<Rle> gts, ReadOnlySpan<bool> isCrowd, Span<double> iou)
    {
        ArgumentNullException.ThrowIfNull(dts);
        ArgumentNullException.ThrowIfNull(gts);
        if (isCrowd.Length != 0 && isCrowd.Length != gts.Count)
            throw new ArgumentException(
                $"Iou: isCrowd has {isCrowd.Length} entries for {gts.Count} ground-truth masks; pass one per ground truth, or none for no crowd.",
                nameof(isCrowd));
        var pairs = (long)dts.Count * gts.Count;
        if (iou.Length != pairs)
            throw new ArgumentException(
                $"Iou: the output holds {iou.Length} values but {dts.Count} detections x {gts.Count} ground truths = {pairs}; pass a span of exactly that length.",
                nameof(iou));
        MaskIou.Compute(dts, gts, isCrowd, iou);
    }

    /// <summary>IoU of one detection mask with one ground-truth mask (see the matrix overload).</summary>
    public static double Iou(Rle dt, Rle gt, bool isCrowd = false)
    {
        ArgumentNullException.ThrowIfNull(dt);
        ArgumentNullException.ThrowIfNull(gt);
        Span<double> result = stackalloc double[1];
        ReadOnlySpan<bool> crowd = [isCrowd];
        MaskIou.Compute([dt], [gt], crowd, result);
        return result[0];
    }

    /// <summary>rleToBbox on unsigned 32-bit arithmetic, as COCO computes it (wrap-around included).</summary>
    internal static (double X, double Y, double W, double H) BoxOf(Rle rle)
    {
        var counts = rle.Counts;
        var runs = counts.Length & ~1;   // a trailing run of 0s adds nothing
        if (runs == 0 || rle.PixelCount == 0) return (0, 0, 0, 0);
        unchecked
        {
            uint h = (uint)rle.Height, w = (uint)rle.Width;
            uint xs = w, ys = h, xe = 0, ye = 0, end = 0, runStartX = 0;
            for (var j = 0; j < runs; j++)
            {
                end += counts[j];
                // Even j: the run of 1s starts at pixel `end`; odd j: it ends at pixel `end - 1`.
                var pixel = end - (uint)(j & 1);
                var x = pixel / h;
                var y = pixel - x * h;
                if ((j & 1) == 0) runStartX = x;
                else if (runStartX < x) { ys = 0; ye = h - 1; }
                xs = Math.Min(xs, x);
                xe = Math.Max(xe, x);
                ys = Math.Min(ys, y);
                ye = Math.Max(ye, y);
            }
            return (xs, ys, xe - xs + 1, ye - ys + 1);
        }
    }

    /// <summary>Checks an image size and returns H*W.</summary>
    internal static int CheckSize(string call, int height, int width)
    {
        if (height < 0 || width < 0)
            throw new ArgumentException($"{call}: image size {height}x{width} (height x width) has a negative side.");
        var pixels = (long)height * width;
        if (pixels > int.MaxValue)
            throw new ArgumentException($"{call}: image size {height}x{width} has {pixels} pixels; at most {int.MaxValue} are supported.");
        return (int)pixels;
    }
}
