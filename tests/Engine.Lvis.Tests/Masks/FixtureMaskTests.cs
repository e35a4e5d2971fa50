// The mask utilities on the LVIS evaluation fixtures (shared/fixtures/lvis-eval): every detection's
// compressed RLE was written by COCO's encoder, so it must decode to runs covering its image and encode
// back to the same string; and ground-truth polygons that are integer axis-aligned rectangles must
// rasterise to exactly their w*h pixels, which is then also their 'area' field (the polygon's area).
// Other polygons' 'area' is the polygon formula, which the raster only approximates, so it is not compared.
using System.Text.Json;
using Engine.Lvis.Masks;

namespace Engine.Lvis.Tests.Masks;

public class FixtureMaskTests
{
    public static TheoryData<string> Cases => new(["small", "medium", "edge"]);

    [Theory]
    [MemberData(nameof(Cases))]
    public void DetectionStrings_RoundTrip(string name)
    {
        using var dets = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(CaseDirectory(name), "dets.json")));
        var checkedCount = 0;
        foreach (var det in dets.RootElement.EnumerateArray())
        {
            var segmentation = det.GetProperty("segmentation");
            var size = segmentation.GetProperty("size");
            int h = size[0].GetInt32(), w = size[1].GetInt32();
            var counts = segmentation.GetProperty("counts").GetString()!;
            var rle = MaskApi.FromCompressedString(counts, h, w);
            Assert.True(counts == MaskApi.ToCompressedString(rle), $"{name}: detection {checkedCount} '{counts}' did not round-trip");
            // COCO's encoder never writes an empty run after the first.
            Assert.True(rle.Counts.AsSpan(1).IndexOf(0u) < 0, $"{name}: detection {checkedCount} has an empty run");
            checkedCount++;
        }
        Assert.True(checkedCount > 0, $"{name}: no detections read");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void IntegerRectanglePolygons_RasteriseToTheirArea(string name)
    {
        using var gt = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(CaseDirectory(name), "gt.json")));
        var sizes = gt.RootElement.GetProperty("images").EnumerateArray()
            .ToDictionary(i => i.GetProperty("id").GetInt64(), i => (H: i.GetProperty("height").GetInt32(), W: i.GetProperty("width").GetInt32()));
        var polygonAnnotations = 0;
        foreach (var ann in gt.RootElement.GetProperty("annotations").EnumerateArray())
        {
            var segmentation = ann.GetProperty("segmentation");
            if (segmentation.ValueKind != JsonValueKind.Array) continue;
            var polygons = segmentation.EnumerateArray().Select(p => p.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
            var (h, w) = sizes[ann.GetProperty("image_id").GetInt64()];
            var rle = MaskApi.FromPolygons(polygons, h, w);
            polygonAnnotations++;
            if (polygons.Length != 1 || !IsIntegerRectangleInside(polygons[0], h, w, out var x0, out var y0, out var x1, out var y1)) continue;
            var id = ann.GetProperty("id").GetInt64();
            Assert.True((long)(x1 - x0) * (y1 - y0) == MaskApi.Area(rle), $"{name}: annotation {id}: area {MaskApi.Area(rle)}");
            Assert.True(MaskApi.Area(rle) == ann.GetProperty("area").GetDouble(), $"{name}: annotation {id}: 'area' {ann.GetProperty("area")}");
            Assert.Equal(((double)x0, (double)y0, (double)(x1 - x0), (double)(y1 - y0)), MaskApi.ToBox(rle));
        }
        Assert.True(polygonAnnotations > 0, $"{name}: no polygon annotations read");
    }

    private static bool IsIntegerRectangleInside(double[] p, int h, int w, out int x0, out int y0, out int x1, out int y1)
    {
        x0 = y0 = x1 = y1 = 0;
        if (p.Length != 8 || p.Any(v => v != Math.Floor(v))) return false;
        var xs = new[] { p[0], p[2], p[4], p[6] };
        var ys = new[] { p[1], p[3], p[5], p[7] };
        // Axis-aligned: each edge keeps x or y.
        for (var i = 0; i < 4; i++)
        {
            var j = (i + 1) % 4;
            if (xs[i] != xs[j] && ys[i] != ys[j]) return false;
        }
        (x0, x1, y0, y1) = ((int)xs.Min(), (int)xs.Max(), (int)ys.Min(), (int)ys.Max());
        return x0 >= 0 && y0 >= 0 && x1 <= w && y1 <= h && x1 > x0 && y1 > y0;
    }

    private static string CaseDirectory(string name)
    {
        // The fixtures live in shared/ beside the repository root; walk up from the test binaries to find it.
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "fixtures", "lvis-eval", name);
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException(
            $"shared/fixtures/lvis-eval/{name} not found above {AppContext.BaseDirectory}; the fixtures sit in shared/ next to the repository.");
    }
}
