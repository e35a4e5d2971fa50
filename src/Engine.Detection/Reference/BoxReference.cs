// Plain double-precision definitions of the box operations, for tests, benchmarks and selftest: area, IoU,
// the R-CNN box coder, greedy NMS (the O(N²) loop of the definition: walk boxes by decreasing score, keep one,
// drop every later box of its class whose IoU with it exceeds the threshold), the proposal matcher and the
// FPN level of a box. Boxes are flat arrays of (x1, y1, x2, y2) rows.
namespace Engine.Detection.Reference;

public static class BoxReference
{
    public static double Area(double[] b, int i) => (b[i * 4 + 2] - b[i * 4]) * (b[i * 4 + 3] - b[i * 4 + 1]);

    /// <summary>IoU of box i of a and box j of b: intersection / union when the intersection is positive, else 0.</summary>
    public static double Iou(double[] a, int i, double[] b, int j)
    {
        var w = Math.Max(0, Math.Min(a[i * 4 + 2], b[j * 4 + 2]) - Math.Max(a[i * 4], b[j * 4]));
        var h = Math.Max(0, Math.Min(a[i * 4 + 3], b[j * 4 + 3]) - Math.Max(a[i * 4 + 1], b[j * 4 + 1]));
        var inter = w * h;
        return inter > 0 ? inter / (Area(a, i) + Area(b, j) - inter) : 0;
    }

    public static double[] PairwiseIou(double[] a, double[] b)
    {
        var (n, m) = (a.Length / 4, b.Length / 4);
        var r = new double[n * m];
        for (var i = 0; i < n; i++)
            for (var j = 0; j < m; j++) r[i * m + j] = Iou(a, i, b, j);
        return r;
    }

    /// <summary>Greedy NMS by the definition; classes null = one class. Order: decreasing score, ties by index.</summary>
    public static long[] Nms(double[] boxes, double[] scores, long[]? classes, double threshold)
    {
        var n = scores.Length;
        var order = Enumerable.Range(0, n).OrderByDescending(i => double.IsNaN(scores[i]) ? double.PositiveInfinity : scores[i])
            .ThenBy(i => double.IsNaN(scores[i]) ? 0 : 1).ThenBy(i => i).ToArray();
        var suppressed = new bool[n];
        var keep = new List<long>();
        for (var a = 0; a < n; a++)
        {
            var i = order[a];
            if (suppressed[i]) continue;
            keep.Add(i);
            for (var b = a + 1; b < n; b++)
            {
                var j = order[b];
                if (classes is not null && classes[j] != classes[i]) continue;
                var w = Math.Max(0, Math.Min(boxes[i * 4 + 2], boxes[j * 4 + 2]) - Math.Max(boxes[i * 4], boxes[j * 4]));
                var h = Math.Max(0, Math.Min(boxes[i * 4 + 3], boxes[j * 4 + 3]) - Math.Max(boxes[i * 4 + 1], boxes[j * 4 + 1]));
                var inter = w * h;
                if (inter / (Area(boxes, i) + Area(boxes, j) - inter) > threshold) suppressed[j] = true;
            }
        }
        return [.. keep];
    }

    public static double[] Encode(double[] src, double[] target, BoxCoderWeights wt)
    {
        var r = src.Length / 4;
        var d = new double[r * 4];
        for (var i = 0; i < r; i++)
        {
            var (sw, sh) = (src[i * 4 + 2] - src[i * 4], src[i * 4 + 3] - src[i * 4 + 1]);
            var (tw, th) = (target[i * 4 + 2] - target[i * 4], target[i * 4 + 3] - target[i * 4 + 1]);
            var (scx, scy) = (src[i * 4] + sw / 2, src[i * 4 + 1] + sh / 2);
            var (tcx, tcy) = (target[i * 4] + tw / 2, target[i * 4 + 1] + th / 2);
            d[i * 4] = wt.X * (tcx - scx) / sw;
            d[i * 4 + 1] = wt.Y * (tcy - scy) / sh;
            d[i * 4 + 2] = wt.W * Math.Log(tw / sw);
            d[i * 4 + 3] = wt.H * Math.Log(th / sh);
        }
        return d;
    }

    /// <summary>deltas (R, K·4) applied to boxes (R, 4).</summary>
    public static double[] Decode(double[] deltas, double[] boxes, BoxCoderWeights wt, double scaleClamp)
    {
        var r = boxes.Length / 4;
        var k = deltas.Length / (4 * Math.Max(r, 1));
        var o = new double[deltas.Length];
        for (var i = 0; i < r; i++)
        {
            var (w, h) = (boxes[i * 4 + 2] - boxes[i * 4], boxes[i * 4 + 3] - boxes[i * 4 + 1]);
            var (cx, cy) = (boxes[i * 4] + w / 2, boxes[i * 4 + 1] + h / 2);
            for (var c = 0; c < k; c++)
            {
                var q = (i * k + c) * 4;
                var pcx = deltas[q] / wt.X * w + cx;
                var pcy = deltas[q + 1] / wt.Y * h + cy;
                var pw = Math.Exp(Math.Min(deltas[q + 2] / wt.W, scaleClamp)) * w;
                var ph = Math.Exp(Math.Min(deltas[q + 3] / wt.H, scaleClamp)) * h;
                o[q] = pcx - pw / 2;
                o[q + 1] = pcy - ph / 2;
                o[q + 2] = pcx + pw / 2;
                o[q + 3] = pcy + ph / 2;
            }
        }
        return o;
    }

    /// <summary>The matcher by its rules on quality (M, N): (matches, labels).</summary>
    public static (long[] Matches, long[] Labels) Match(double[] quality, int m, int n, MatcherRule rule)
    {
        var matches = new long[n];
        var labels = new long[n];
        for (var j = 0; j < n; j++)
        {
            if (m == 0)
            {
                labels[j] = rule.Labels[0];
                continue;
            }
            var best = 0;
            for (var g = 1; g < m; g++)
                if (quality[g * n + j] > quality[best * n + j]) best = g;
            matches[j] = best;
            var v = quality[best * n + j];
            var bounds = new[] { double.NegativeInfinity }.Concat(rule.Thresholds).Append(double.PositiveInfinity).ToArray();
            for (var k = 0; k < rule.Labels.Count; k++)
                if (v >= bounds[k] && v < bounds[k + 1]) labels[j] = rule.Labels[k];
        }
        if (rule.AllowLowQualityMatches)
            for (var g = 0; g < m; g++)
            {
                var highest = Enumerable.Range(0, n).Select(j => quality[g * n + j]).DefaultIfEmpty(0).Max();
                for (var j = 0; j < n; j++)
                    if (quality[g * n + j] == highest) labels[j] = 1;
            }
        return (matches, labels);
    }

    /// <summary>FPN level (FPN paper, Eqn. 1) relative to minLevel, from the exact formula in double.</summary>
    public static long FpnLevel(double[] box, int minLevel, int maxLevel, int canonicalBoxSize = 224, int canonicalLevel = 4)
    {
        var size = Math.Sqrt((box[2] - box[0]) * (box[3] - box[1]));
        var k = Math.Floor(canonicalLevel + Math.Log2(size / canonicalBoxSize + 1e-8));
        return (long)Math.Clamp(k, minLevel, maxLevel) - minLevel;
    }
}
