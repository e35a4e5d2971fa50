// Greedy NMS on the CPU, plain and class-aware. Boxes are ordered once by (score descending, index ascending)
// with a sort of packed 64-bit keys, then bucketed by class without disturbing that order, and each class runs
// the greedy pass on its own boxes: a candidate survives unless a box already kept in its class overlaps it with
// IoU > threshold (checking kept boxes only is the same as torchvision's suppress-forward loop, since a
// suppressed box never suppresses). Cost Σ_c n_c · kept_c instead of N²; classes run in parallel, and a candidate
// is compared with eight kept boxes at a time (kept boxes stored as columns). The kept flags are read back in the
// global order, so the output is sorted by score with ties in index order.
using System.Runtime.Intrinsics;

namespace Engine.Detection;

public sealed unsafe partial class CpuDetectionBackend
{
    /// <summary>Below this much pairwise work (Σ n_c²) the classes run on the calling thread.</summary>
    private const long NmsParallelWork = 1 << 16;

    public int Nms(Tensor boxes, Tensor scores, Tensor? classIds, double iouThreshold, Tensor keep)
    {
        var r = boxes.Size(0);
        if (r == 0) return 0;
        var pb = boxes.Data<float>();
        var ps = scores.Data<float>();
        var order = ScoreOrder(ps, r);
        var (groupStart, grouped) = classIds is null ? ([0, r], order) : GroupByClass(order, classIds.Data<long>());
        var keepFlag = new bool[r];
        var groups = groupStart.Length - 1;
        var limit = LargestFloatNotAbove(iouThreshold);

        long work = 0;
        for (var gi = 0; gi < groups; gi++)
        {
            long m = groupStart[gi + 1] - groupStart[gi];
            work += m * m;
        }
        if (work < NmsParallelWork || groups == 1)
        {
            var scratch = new float[5 * r];
            for (var gi = 0; gi < groups; gi++) GreedyGroup(pb, grouped, groupStart[gi], groupStart[gi + 1], limit, keepFlag, scratch);
        }
        else
        {
            // contiguous runs of classes of about equal work, a few per core
            var parts = Math.Min(groups, Environment.ProcessorCount * 8);
            var bounds = new int[parts + 1];
            long acc = 0;
            var next = 1;
            for (var gi = 0; gi < groups && next < parts; gi++)
            {
                long m = groupStart[gi + 1] - groupStart[gi];
                acc += m * m;
                while (next < parts && acc >= work * next / parts) bounds[next++] = gi + 1;
            }
            for (; next <= parts; next++) bounds[next] = groups;
            Parallel.For(0, parts, part =>
            {
                var largest = 0;
                for (var gi = bounds[part]; gi < bounds[part + 1]; gi++) largest = Math.Max(largest, groupStart[gi + 1] - groupStart[gi]);
                var scratch = new float[5 * largest];
                for (var gi = bounds[part]; gi < bounds[part + 1]; gi++) GreedyGroup(pb, grouped, groupStart[gi], groupStart[gi + 1], limit, keepFlag, scratch);
            });
        }

        var pk = keep.Data<long>();
        var count = 0;
        foreach (var i in order)
            if (keepFlag[i]) pk[count++] = i;
        return count;
    }

    /// <summary>Indices 0..r-1 by decreasing score, ties by increasing index (NaN first, -0 = +0), via one sort of
    /// keys (descending score bits in the high word, index in the low word).</summary>
    private static int[] ScoreOrder(float* scores, int r)
    {
        var keys = new ulong[r];
        for (var i = 0; i < r; i++)
        {
            var s = scores[i];
            if (s == 0) s = 0f;
            var bits = BitConverter.SingleToUInt32Bits(s);
            // monotone in the float value; every NaN above +inf
            var ascending = float.IsNaN(s) ? uint.MaxValue : (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u;
            keys[i] = ((ulong)~ascending << 32) | (uint)i;
        }
        Array.Sort(keys);
        var order = new int[r];
        for (var i = 0; i < r; i++) order[i] = (int)(uint)keys[i];
        return order;
    }

    /// <summary>The score order regrouped by class (stable within a class) and the start of each class's run.</summary>
    private static (int[] Start, int[] Grouped) GroupByClass(int[] order, long* classes)
    {
        var r = order.Length;
        long min = long.MaxValue, max = long.MinValue;
        for (var i = 0; i < r; i++)
        {
            min = Math.Min(min, classes[i]);
            max = Math.Max(max, classes[i]);
        }
        var dense = new int[r];
        int nClasses;
        if (max - min < 4L * r + 4096)
        {
            var map = new int[max - min + 1];
            Array.Fill(map, -1);
            nClasses = 0;
            for (var i = 0; i < r; i++)
            {
                ref var m = ref map[classes[i] - min];
                if (m < 0) m = nClasses++;
                dense[i] = m;
            }
        }
        else
        {
            var map = new Dictionary<long, int>();
            for (var i = 0; i < r; i++)
            {
                if (!map.TryGetValue(classes[i], out var m)) map[classes[i]] = m = map.Count;
                dense[i] = m;
            }
            nClasses = map.Count;
        }
        var start = new int[nClasses + 1];
        for (var i = 0; i < r; i++) start[dense[i] + 1]++;
        for (var k = 0; k < nClasses; k++) start[k + 1] += start[k];
        var fill = start[..^1].ToArray();
        var grouped = new int[r];
        foreach (var i in order) grouped[fill[dense[i]]++] = i;
        return (start, grouped);
    }

    /// <summary>Greedy pass over grouped[from..to) (already in score order) at the float limit of the IoU threshold
    /// (<see cref="LargestFloatNotAbove"/>); sets keepFlag of the survivors. scratch (at least 5·(to − from) floats)
    /// holds the kept boxes as five columns x1, y1, x2, y2, area, so that a candidate is compared with
    /// Vector256&lt;float&gt;.Count kept boxes at a time.</summary>
    private static void GreedyGroup(float* boxes, int[] grouped, int from, int to, float limit, bool[] keepFlag, float[] scratch)
    {
        var n = to - from;
        fixed (float* columns = scratch)
        {
            float* kx1 = columns, ky1 = columns + n, kx2 = columns + 2 * n, ky2 = columns + 3 * n, karea = columns + 4 * n;
            var kept = 0;
            for (var k = from; k < to; k++)
            {
                var i = grouped[k];
                var b = boxes + (long)i * 4;
                float x1 = b[0], y1 = b[1], x2 = b[2], y2 = b[3];
                var area = (x2 - x1) * (y2 - y1);
                if (Suppressed(x1, y1, x2, y2, area, kx1, ky1, kx2, ky2, karea, kept, limit)) continue;
                keepFlag[i] = true;
                kx1[kept] = x1;
                ky1[kept] = y1;
                kx2[kept] = x2;
                ky2[kept] = y2;
                karea[kept] = area;
                kept++;
            }
        }
    }

    /// <summary>Whether a kept box overlaps the candidate with IoU &gt; the threshold, given as
    /// <paramref name="limit"/> = the largest float ≤ it (a float IoU exceeds the double threshold exactly when it
    /// exceeds that float). Each IoU is the same float expression as torchvision's, inter / (area_kept + area −
    /// inter), in every lane and in the scalar tail (Vector256.Max/Min treat NaN and ±0 as MathF.Max/Min do). A NaN
    /// IoU (0/0; a NaN coordinate makes an area NaN) never suppresses: every comparison with NaN is false.</summary>
    private static bool Suppressed(float x1, float y1, float x2, float y2, float area,
                                   float* kx1, float* ky1, float* kx2, float* ky2, float* karea, int kept, float limit)
    {
        var q = 0;
        if (Vector256.IsHardwareAccelerated && kept >= Vector256<float>.Count)
        {
            var (vx1, vy1, vx2, vy2) = (Vector256.Create(x1), Vector256.Create(y1), Vector256.Create(x2), Vector256.Create(y2));
            var (varea, vlimit) = (Vector256.Create(area), Vector256.Create(limit));
            for (; q <= kept - Vector256<float>.Count; q += Vector256<float>.Count)
            {
                var w = Vector256.Max(Vector256<float>.Zero, Vector256.Min(vx2, Vector256.Load(kx2 + q)) - Vector256.Max(vx1, Vector256.Load(kx1 + q)));
                var h = Vector256.Max(Vector256<float>.Zero, Vector256.Min(vy2, Vector256.Load(ky2 + q)) - Vector256.Max(vy1, Vector256.Load(ky1 + q)));
                var inter = w * h;
                var iou = inter / (Vector256.Load(karea + q) + varea - inter);
                if (Vector256.GreaterThanAny(iou, vlimit)) return true;
            }
        }
        for (; q < kept; q++)
        {
            var w = MathF.Max(0f, MathF.Min(x2, kx2[q]) - MathF.Max(x1, kx1[q]));
            var h = MathF.Max(0f, MathF.Min(y2, ky2[q]) - MathF.Max(y1, ky1[q]));
            var inter = w * h;
            if (inter / (karea[q] + area - inter) > limit) return true;
        }
        return false;
    }

    /// <summary>The largest float ≤ <paramref name="threshold"/> (NaN stays NaN): for every float f, f &gt; threshold
    /// exactly when f &gt; this value, so the IoU comparison can stay in float lanes.</summary>
    internal static float LargestFloatNotAbove(double threshold)
    {
        var rounded = (float)threshold;
        return rounded > threshold ? MathF.BitDecrement(rounded) : rounded;
    }
}
