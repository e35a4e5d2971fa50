// The mask IoU matrix of COCO's rleIou. Per pair: 0 unless the two ToBox boxes overlap (COCO's bbIou
// > 0, which is what lets most pairs of an image skip the pixels); then -1 when the sizes differ;
// then intersection / union of pixel counts, with union = detection area for a crowd ground truth, and
// 0 when nothing intersects. For encodings without empty runs after the first (everything this library
// makes, and COCO's own outputs) the intersection is counted only over the columns the two boxes share,
// by merging the runs of 1s located by binary search, and union = area(dt) + area(gt) - intersection;
// that equals COCO's full walk. Any other pair takes the full walk (RunWalk.Overlap), which keeps COCO's
// early stop on empty runs.
using System.Buffers;

namespace Engine.Lvis.Masks;

internal static class MaskIou
{
    /// <summary>What the pairs need of one mask: its box, area, and where its cumulative run ends are stored.</summary>
    private struct Summary
    {
        public double X, Y, W, H;
        public long Area;
        public int Height, Width;
        public bool Compact;     // no empty run after the first
        public int EndsOffset;   // into the shared ends buffer, Counts.Length entries
        public int RunCount;
    }

    public static void Compute(IReadOnlyList<Rle> dts, IReadOnlyList<Rle> gts, ReadOnlySpan<bool> isCrowd, Span<double> iou)
    {
        int nd = dts.Count, ng = gts.Count;
        if (nd == 0 || ng == 0) return;

        var total = 0L;
        for (var d = 0; d < nd; d++) total += Checked(dts, d, "detection").Counts.Length;
        for (var g = 0; g < ng; g++) total += Checked(gts, g, "ground-truth").Counts.Length;
        if (total > Array.MaxLength)
            throw new ArgumentException($"Iou: the masks hold {total} runs in all, more than one call can index; split the call.");
        var ends = ArrayPool<int>.Shared.Rent((int)total);
        var summaries = ArrayPool<Summary>.Shared.Rent(nd + ng);
        try
        {
            var offset = 0;
            for (var d = 0; d < nd; d++) summaries[d] = Summarize(dts[d], ends, ref offset);
            for (var g = 0; g < ng; g++) summaries[nd + g] = Summarize(gts[g], ends, ref offset);

            for (var d = 0; d < nd; d++)
            {
                ref readonly var sd = ref summaries[d];
                var row = iou.Slice(d * ng, ng);
                for (var g = 0; g < ng; g++)
                {
                    ref readonly var sg = ref summaries[nd + g];
                    row[g] = PairIou(sd, sg, dts[d], gts[g], isCrowd.Length != 0 && isCrowd[g], ends);
                }
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(ends);
            ArrayPool<Summary>.Shared.Return(summaries);
        }
    }

    private static Rle Checked(IReadOnlyList<Rle> list, int i, string what) =>
        list[i] ?? throw new ArgumentException($"Iou: {what} mask {i} is null.");

    private static Summary Summarize(Rle rle, int[] ends, ref int offset)
    {
        var (x, y, w, h) = MaskApi.BoxOf(rle);
        var counts = rle.Counts;
        // One pass for the area, the cumulative run ends and whether any run after the first is empty.
        long area = 0;
        var end = 0;
        var compact = counts.Length > 0;
        var stored = ends.AsSpan(offset, counts.Length);
        for (var j = 0; j < counts.Length; j++)
        {
            var run = counts[j];
            if ((j & 1) == 1) area += run;
            if (run == 0 && j > 0) compact = false;
            end += (int)run;
            stored[j] = end;
        }
        var summary = new Summary
        {
            X = x, Y = y, W = w, H = h,
            Area = area,
            Height = rle.Height,
            Width = rle.Width,
            Compact = compact,
            EndsOffset = offset,
            RunCount = counts.Length,
        };
        offset += counts.Length;
        return summary;
    }

    private static double PairIou(in Summary dt, in Summary gt, Rle dtRle, Rle gtRle, bool crowd, int[] ends)
    {
        // COCO's bbIou in double; > 0 exactly when both overlaps are positive.
        var iw = Math.Min(dt.W + dt.X, gt.W + gt.X) - Math.Max(dt.X, gt.X);
        if (iw <= 0) return 0;
        var ih = Math.Min(dt.H + dt.Y, gt.H + gt.Y) - Math.Max(dt.Y, gt.Y);
        if (ih <= 0) return 0;
        if (dt.Height != gt.Height || dt.Width != gt.Width) return -1;

        long intersection, union;
        if (dt.Compact && gt.Compact)
        {
            // Both boxes are exact here, so shared pixels lie in the columns both boxes cover.
            var lo = (long)Math.Max(dt.X, gt.X) * dt.Height;
            var hi = (long)Math.Min(dt.X + dt.W, gt.X + gt.W) * dt.Height;
            intersection = IntersectOnes(
                ends.AsSpan(dt.EndsOffset, dt.RunCount), ends.AsSpan(gt.EndsOffset, gt.RunCount), (int)lo, (int)hi);
            union = dt.Area + gt.Area - intersection;
        }
        else
        {
            (var i, var u) = RunWalk.Overlap(dtRle.Counts, gtRle.Counts);
            (intersection, union) = (i, u);
        }
        if (intersection == 0) return 0;
        if (crowd) union = dt.Area;
        return (double)intersection / union;
    }

    /// <summary>
    /// Pixels in [lo, hi) set in both masks. ends[j] is the end of run j (cumulative counts), so run j
    /// covers [ends[j-1], ends[j]) and odd j are the runs of 1s.
    /// </summary>
    private static long IntersectOnes(ReadOnlySpan<int> a, ReadOnlySpan<int> b, int lo, int hi)
    {
        int ia = FirstOnesRunEndingAfter(a, lo), ib = FirstOnesRunEndingAfter(b, lo);
        long shared = 0;
        while (ia < a.Length && ib < b.Length)
        {
            int startA = a[ia - 1], endA = a[ia], startB = b[ib - 1], endB = b[ib];
            if (startA >= hi || startB >= hi) break;
            var overlap = Math.Min(endA, endB) - Math.Max(startA, startB);
            if (overlap > 0) shared += overlap;
            if (endA <= endB) ia += 2;
            if (endB <= endA) ib += 2;
        }
        return shared;
    }

    /// <summary>Index (odd) of the first run of 1s whose end is past <paramref name="position"/>.</summary>
    private static int FirstOnesRunEndingAfter(ReadOnlySpan<int> ends, int position)
    {
        // Ends are strictly increasing from index 0 (no empty run after the first).
        var found = ends.BinarySearch(position);
        var j = found >= 0 ? found + 1 : ~found;
        return j | 1;   // inside a run of 0s: the next run; inside a run of 1s: that run
    }
}
