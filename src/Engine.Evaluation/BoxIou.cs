// Box IoU exactly as the official evaluator computes it (pycocotools' bbIou, lvis-eval.md section 3):
// boxes are [x, y, w, h] doubles; the intersection extent is min(x + w) - max(x) evaluated in that
// order (not from a stored x2), so IoUs that fall exactly on a threshold round the same way.
using System.Runtime.CompilerServices;

namespace Engine.Evaluation;

public static class BoxIou
{
    /// <summary>IoU matrix, dt-major: iou[d * G + g] for D detection boxes and G ground-truth boxes, both
    /// (N, 4) [x, y, w, h]. For a crowd ground truth the union is the detection's area (COCO's crowd rule;
    /// LVIS evaluation passes no crowd flags).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Compute(ReadOnlySpan<double> dts, ReadOnlySpan<double> gts, ReadOnlySpan<bool> isCrowd, Span<double> iou)
    {
        if (dts.Length % 4 != 0 || gts.Length % 4 != 0)
            throw new ArgumentException($"BoxIou.Compute: boxes are 4 numbers each, got {dts.Length} and {gts.Length} numbers");
        int d = dts.Length / 4, g = gts.Length / 4;
        if (iou.Length < d * g)
            throw new ArgumentException($"BoxIou.Compute: output holds {iou.Length} values, need {d}x{g}", nameof(iou));
        if (!isCrowd.IsEmpty && isCrowd.Length != g)
            throw new ArgumentException($"BoxIou.Compute: {isCrowd.Length} crowd flags for {g} ground-truth boxes", nameof(isCrowd));
        for (int j = 0; j < g; j++)
        {
            double gx = gts[4 * j], gy = gts[4 * j + 1], gw = gts[4 * j + 2], gh = gts[4 * j + 3];
            double ga = gw * gh;
            bool crowd = !isCrowd.IsEmpty && isCrowd[j];
            for (int i = 0; i < d; i++)
            {
                double dx = dts[4 * i], dy = dts[4 * i + 1], dw = dts[4 * i + 2], dh = dts[4 * i + 3];
                double da = dw * dh;
                ref double o = ref iou[i * g + j];
                o = 0;
                double w = Math.Min(dw + dx, gw + gx) - Math.Max(dx, gx);
                if (w <= 0)
                    continue;
                double h = Math.Min(dh + dy, gh + gy) - Math.Max(dy, gy);
                if (h <= 0)
                    continue;
                double inter = w * h;
                double union = crowd ? da : da + ga - inter;
                o = inter / union;
            }
        }
    }
}
