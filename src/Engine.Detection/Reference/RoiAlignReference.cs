// ROIAlign written straight from its definition, in double, for tests, benchmarks and selftest: every bin
// averages its gh×gw samples, every sample is a bilinear interpolation of its four neighbours (torchvision's
// border rules: a sample outside [-1, H] × [-1, W] is 0, coordinates ≤ 0 clamp to 0, the last row/column
// repeats). The backward scatters the output gradient back through the same weights (the forward is linear in
// the features, so this is its exact vector-Jacobian product).
using Engine.Reference;

namespace Engine.Detection.Reference;

public static class RoiAlignReference
{
    /// <summary>One bilinear tap: flat index into the level's (N, C, H, W) data at channel 0, and its weight (including 1/count).</summary>
    private readonly record struct Tap(int Level, long Index, double Weight);

    /// <summary>out (R, C, Ph, Pw). levelOf null: every RoI on level 0.</summary>
    public static RefTensor Forward(IReadOnlyList<RefTensor> levels, IReadOnlyList<double> scales, double[] rois, long[]? levelOf,
                                    int ph, int pw, int samplingRatio, bool aligned)
    {
        var r = rois.Length / 5;
        var c = levels[0].Shape[1];
        var output = new double[(long)r * c * ph * pw];
        for (var i = 0; i < r; i++)
            for (var y = 0; y < ph; y++)
                for (var x = 0; x < pw; x++)
                {
                    var taps = BinTaps(levels.Select(l => l.Shape).ToList(), scales, rois, levelOf, i, y, x, ph, pw, samplingRatio, aligned);
                    for (var ch = 0; ch < c; ch++)
                    {
                        double sum = 0;
                        foreach (var t in taps)
                        {
                            var s = levels[t.Level].Shape;
                            sum += t.Weight * levels[t.Level].Data[t.Index + (long)ch * s[2] * s[3]];
                        }
                        output[(((long)i * c + ch) * ph + y) * pw + x] = sum;
                    }
                }
        return new RefTensor([r, c, ph, pw], output);
    }

    /// <summary>Gradient of the features of each level for output gradient g (R, C, Ph, Pw).</summary>
    public static RefTensor[] Backward(IReadOnlyList<int[]> levelShapes, IReadOnlyList<double> scales, double[] rois, long[]? levelOf,
                                       int ph, int pw, int samplingRatio, bool aligned, RefTensor g)
    {
        var grads = levelShapes.Select(s => RefTensor.Zeros(s)).ToArray();
        var r = rois.Length / 5;
        var c = levelShapes[0][1];
        for (var i = 0; i < r; i++)
            for (var y = 0; y < ph; y++)
                for (var x = 0; x < pw; x++)
                {
                    var taps = BinTaps(levelShapes, scales, rois, levelOf, i, y, x, ph, pw, samplingRatio, aligned);
                    for (var ch = 0; ch < c; ch++)
                    {
                        var gv = g.Data[(((long)i * c + ch) * ph + y) * pw + x];
                        foreach (var t in taps)
                        {
                            var s = levelShapes[t.Level];
                            grads[t.Level].Data[t.Index + (long)ch * s[2] * s[3]] += t.Weight * gv;
                        }
                    }
                }
        return grads;
    }

    private static List<Tap> BinTaps(IReadOnlyList<int[]> shapes, IReadOnlyList<double> scales, double[] rois, long[]? levelOf,
                                     int i, int binY, int binX, int ph, int pw, int samplingRatio, bool aligned)
    {
        var level = levelOf is null ? 0 : (int)levelOf[i];
        var shape = shapes[level];
        var (c, h, w) = (shape[1], shape[2], shape[3]);
        var b = (int)rois[i * 5];
        var scale = scales[level];
        var offset = aligned ? 0.5 : 0.0;
        var startX = rois[i * 5 + 1] * scale - offset;
        var startY = rois[i * 5 + 2] * scale - offset;
        var roiW = rois[i * 5 + 3] * scale - offset - startX;
        var roiH = rois[i * 5 + 4] * scale - offset - startY;
        if (!aligned)
        {
            roiW = Math.Max(roiW, 1);
            roiH = Math.Max(roiH, 1);
        }
        var binH = roiH / ph;
        var binW = roiW / pw;
        var gridH = samplingRatio > 0 ? samplingRatio : (int)Math.Ceiling(roiH / ph);
        var gridW = samplingRatio > 0 ? samplingRatio : (int)Math.Ceiling(roiW / pw);
        var count = Math.Max(gridH * gridW, 1);
        var taps = new List<Tap>();
        long plane = (long)b * c * h * w;
        for (var iy = 0; iy < gridH; iy++)
            for (var ix = 0; ix < gridW; ix++)
            {
                var y = startY + binY * binH + (iy + 0.5) * binH / gridH;
                var x = startX + binX * binW + (ix + 0.5) * binW / gridW;
                if (y < -1 || y > h || x < -1 || x > w) continue;
                y = Math.Max(y, 0);
                x = Math.Max(x, 0);
                var y0 = (int)Math.Floor(y);
                var x0 = (int)Math.Floor(x);
                if (y0 >= h - 1) y = y0 = h - 1;
                if (x0 >= w - 1) x = x0 = w - 1;
                var y1 = Math.Min(y0 + 1, h - 1);
                var x1 = Math.Min(x0 + 1, w - 1);
                var (ly, lx) = (y - y0, x - x0);
                taps.Add(new Tap(level, plane + (long)y0 * w + x0, (1 - ly) * (1 - lx) / count));
                taps.Add(new Tap(level, plane + (long)y0 * w + x1, (1 - ly) * lx / count));
                taps.Add(new Tap(level, plane + (long)y1 * w + x0, ly * (1 - lx) / count));
                taps.Add(new Tap(level, plane + (long)y1 * w + x1, ly * lx / count));
            }
        return taps;
    }
}
