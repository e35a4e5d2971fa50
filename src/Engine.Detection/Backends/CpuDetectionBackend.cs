// CPU detection backend: pairwise IoU, the R-CNN box coder and the proposal matcher as plain loops over
// contiguous float32 data, parallel over rows when the work is large. The float expressions follow the
// order of operations of detectron2's tensor code, so results agree with it to the last bit in most cases.
// ROIAlign and NMS live in their own files of this partial class.
namespace Engine.Detection;

public sealed unsafe partial class CpuDetectionBackend : IDetectionBackend
{
    /// <summary>Below this many elements a loop runs on the calling thread.</summary>
    private const long ParallelThreshold = 1 << 15;

    public Device Device => Device.Cpu;

    /// <summary>body(from, to) over [0, count) in about four ranges per core, or inline when the work is small.</summary>
    private static void Ranges(long count, long costPerItem, Action<long, long> body)
    {
        if (count <= 0) return;
        var chunks = (int)Math.Min(count, Environment.ProcessorCount * 4L);
        if (count * Math.Max(costPerItem, 1) < ParallelThreshold || chunks <= 1)
        {
            body(0, count);
            return;
        }
        Parallel.For(0, chunks, k => body(count * k / chunks, count * (k + 1) / chunks));
    }

    public void PairwiseIou(Tensor a, Tensor b, Tensor iou)
    {
        var (n, m) = (a.Size(0), b.Size(0));
        var pa = a.Data<float>();
        var pb = b.Data<float>();
        var py = iou.Data<float>();
        var areaB = new float[m];
        for (var j = 0; j < m; j++) areaB[j] = (pb[j * 4 + 2] - pb[j * 4]) * (pb[j * 4 + 3] - pb[j * 4 + 1]);
        // units: (row, column block) pairs, so that a few rows against many columns still spread over the cores
        const int block = 4096;
        var blocks = (m + block - 1) / block;
        Ranges((long)n * blocks, Math.Min(m, block) * 8L, (from, to) =>
        {
            for (var u = from; u < to; u++)
            {
                var i = (int)(u / blocks);
                var j0 = (int)(u % blocks) * block;
                var j1 = Math.Min(m, j0 + block);
                float x1 = pa[i * 4], y1 = pa[i * 4 + 1], x2 = pa[i * 4 + 2], y2 = pa[i * 4 + 3];
                var areaA = (x2 - x1) * (y2 - y1);
                var row = py + (long)i * m;
                for (var j = j0; j < j1; j++)
                {
                    var q = pb + j * 4;
                    var w = MathF.Max(MathF.Min(x2, q[2]) - MathF.Max(x1, q[0]), 0f);
                    var h = MathF.Max(MathF.Min(y2, q[3]) - MathF.Max(y1, q[1]), 0f);
                    var inter = w * h;
                    row[j] = inter > 0 ? inter / (areaA + areaB[j] - inter) : 0f;
                }
            }
        });
    }

    public void EncodeBoxes(Tensor src, Tensor target, BoxCoderWeights weights, Tensor deltas)
    {
        var r = src.Size(0);
        var ps = src.Data<float>();
        var pt = target.Data<float>();
        var pd = deltas.Data<float>();
        var (wx, wy, ww, wh) = ((float)weights.X, (float)weights.Y, (float)weights.W, (float)weights.H);
        for (var i = 0; i < r; i++)
        {
            var s = ps + i * 4;
            var sw = s[2] - s[0];
            var sh = s[3] - s[1];
            if (!(sw > 0 && sh > 0))
                throw new ArgumentException($"GetDeltas: source box {i} = [{s[0]}, {s[1]}, {s[2]}, {s[3]}] has width {sw} and height {sh}; " +
                                            "source boxes (proposals or anchors) must have positive size. Filter them with Boxes.NonEmpty first.");
        }
        Ranges(r, 40, (from, to) =>
        {
            for (var i = from; i < to; i++)
            {
                var s = ps + i * 4;
                var t = pt + i * 4;
                var d = pd + i * 4;
                var sw = s[2] - s[0];
                var sh = s[3] - s[1];
                var scx = s[0] + 0.5f * sw;
                var scy = s[1] + 0.5f * sh;
                var tw = t[2] - t[0];
                var th = t[3] - t[1];
                var tcx = t[0] + 0.5f * tw;
                var tcy = t[1] + 0.5f * th;
                d[0] = wx * (tcx - scx) / sw;
                d[1] = wy * (tcy - scy) / sh;
                d[2] = ww * MathF.Log(tw / sw);
                d[3] = wh * MathF.Log(th / sh);
            }
        });
    }

    public void DecodeBoxes(Tensor deltas, Tensor boxes, BoxCoderWeights weights, double scaleClamp, Tensor output)
    {
        var r = boxes.Size(0);
        var k = deltas.Size(1) / 4;
        var pd = deltas.Data<float>();
        var pb = boxes.Data<float>();
        var po = output.Data<float>();
        var (wx, wy, ww, wh, clamp) = ((float)weights.X, (float)weights.Y, (float)weights.W, (float)weights.H, (float)scaleClamp);
        Ranges(r, 40L * k, (from, to) =>
        {
            for (var i = from; i < to; i++)
            {
                var b = pb + i * 4;
                var w = b[2] - b[0];
                var h = b[3] - b[1];
                var cx = b[0] + 0.5f * w;
                var cy = b[1] + 0.5f * h;
                for (var c = 0; c < k; c++)
                {
                    var d = pd + (i * k + c) * 4;
                    var o = po + (i * k + c) * 4;
                    var dx = d[0] / wx;
                    var dy = d[1] / wy;
                    var dw = MathF.Min(d[2] / ww, clamp); // like torch.clamp(max=), MathF.Min keeps NaN
                    var dh = MathF.Min(d[3] / wh, clamp);
                    var pcx = dx * w + cx;
                    var pcy = dy * h + cy;
                    var pw = MathF.Exp(dw) * w;
                    var ph = MathF.Exp(dh) * h;
                    o[0] = pcx - 0.5f * pw;
                    o[1] = pcy - 0.5f * ph;
                    o[2] = pcx + 0.5f * pw;
                    o[3] = pcy + 0.5f * ph;
                }
            }
        });
    }

    public void AssignFpnLevels(Tensor rois, FpnLevelRule rule, Tensor levels)
    {
        var r = rois.Size(0);
        var pr = rois.Data<float>();
        var pl = levels.Data<long>();
        for (var i = 0; i < r; i++)
        {
            var b = pr + i * 5;
            pl[i] = FpnLevel(b[1], b[2], b[3], b[4], rule);
        }
    }

    /// <summary>One box's level relative to rule.MinLevel, in float32 as detectron2 computes it (the CUDA kernel uses the
    /// same expression): k = floor(canonical level + log2(sqrt(area) / canonical size + 1e-8)); NaN goes to the finest level.</summary>
    internal static long FpnLevel(float x1, float y1, float x2, float y2, FpnLevelRule rule)
    {
        var size = MathF.Sqrt((x2 - x1) * (y2 - y1));
        var k = MathF.Floor(rule.CanonicalLevel + MathF.Log2(size / rule.CanonicalBoxSize + 1e-8f));
        return float.IsNaN(k) ? 0 : (long)Math.Clamp(k, rule.MinLevel, rule.MaxLevel) - rule.MinLevel;
    }

    public void MatchProposals(Tensor quality, MatcherRule rule, Tensor matches, Tensor labels)
    {
        var (m, n) = (quality.Size(0), quality.Size(1));
        var pq = quality.Data<float>();
        var pm = matches.Data<long>();
        var pl = labels.Data<long>();
        if (m == 0)
        {
            // no ground truth: every prediction is matched to nothing, i.e. quality 0, the first interval's label
            new Span<long>(pm, n).Clear();
            new Span<long>(pl, n).Fill(rule.Labels[0]);
            return;
        }
        for (long e = 0; e < (long)m * n; e++)
            if (!(pq[e] >= 0))
                throw new ArgumentException($"Matcher: match quality [{e / n}, {e % n}] = {pq[e]}; qualities (e.g. IoU) must be ≥ 0 and not NaN.");

        var thresholds = rule.Thresholds.ToArray();
        var ruleLabels = rule.Labels.ToArray();
        Ranges(n, m, (from, to) =>
        {
            var best = new float[to - from];
            new Span<float>(best).Fill(-1f);
            for (var g = 0; g < m; g++)
            {
                var row = pq + (long)g * n;
                for (var j = from; j < to; j++)
                    if (row[j] > best[j - from])
                    {
                        best[j - from] = row[j];
                        pm[j] = g;
                    }
            }
            for (var j = from; j < to; j++)
            {
                // interval k: thresholds[k-1] ≤ quality < thresholds[k], with -∞ and +∞ at the ends
                var v = best[j - from];
                var k = 0;
                while (k < thresholds.Length && v >= thresholds[k]) k++;
                pl[j] = ruleLabels[k];
            }
        });
        if (!rule.AllowLowQualityMatches) return;

        // each ground truth's best predictions (ties included) become positive, keeping their own best match
        var highest = new float[m];
        Ranges(m, n, (from, to) =>
        {
            for (var g = from; g < to; g++)
            {
                var row = pq + g * (long)n;
                var h = 0f;
                for (var j = 0; j < n; j++) h = MathF.Max(h, row[j]);
                highest[g] = h;
            }
        });
        Ranges(n, m, (from, to) =>
        {
            for (var g = 0; g < m; g++)
            {
                var row = pq + (long)g * n;
                var h = highest[g];
                for (var j = from; j < to; j++)
                    if (row[j] == h) pl[j] = 1;
            }
        });
    }
}
