// Greedy NMS on the CPU, plain and class-aware. Boxes are ordered once by (score descending, index ascending)
// with a sort of packed 64-bit keys, then bucketed by class without disturbing that order, and each class runs
// the greedy pass on its own boxes: a candidate survives unless a box already kept in its class overlaps it with
// IoU > threshold (checking kept boxes only is the same as torchvision's suppress-forward loop, since a
// suppressed box never suppresses). Cost Σ_c n_c · kept_c instead of N²; classes run in parallel. The kept
// flags are read back in the global order, so the output is sorted by score with ties in index order.
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

        long work = 0;
        for (var gi = 0; gi < groups; gi++)
        {
            long m = groupStart[gi + 1] - groupStart[gi];
            work += m * m;
        }
        if (work < NmsParallelWork || groups == 1)
        {
            var scratch = new float[5 * r];
            for (var gi = 0; gi < groups; gi++) GreedyGroup(pb, grouped, groupStart[gi], groupStart[gi + 1], iouThreshold, keepFlag, scratch);
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
                for (var gi = bounds[part]; gi < bounds[part + 1]; gi++) GreedyGroup(pb, grouped, groupStart[gi], groupStart[gi + 1], iouThreshold, keepFlag, scratch);
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

    /// <summary>Greedy pass over grouped[from..to) (already in score order); sets keepFlag of the survivors.
    /// scratch holds the kept boxes as (x1, y1, x2, y2, area) rows.</summary>
    private static void GreedyGroup(float* boxes, int[] grouped, int from, int to, double threshold, bool[] keepFlag, float[] scratch)
    {
        var kept = 0;
        for (var k = from; k < to; k++)
        {
            var i = grouped[k];
            var b = boxes + (long)i * 4;
            float x1 = b[0], y1 = b[1], x2 = b[2], y2 = b[3];
            var area = (x2 - x1) * (y2 - y1);
            var suppressed = false;
            for (var q = 0; q < kept; q++)
            {
                var o = q * 5;
                var w = MathF.Max(0f, MathF.Min(x2, scratch[o + 2]) - MathF.Max(x1, scratch[o]));
                var h = MathF.Max(0f, MathF.Min(y2, scratch[o + 3]) - MathF.Max(y1, scratch[o + 1]));
                var inter = w * h;
                // the same float expression as torchvision: inter / (area_kept + area - inter); NaN (0/0) never suppresses
                var iou = inter / (scratch[o + 4] + area - inter);
                if (iou > threshold)
                {
                    suppressed = true;
                    break;
                }
            }
            if (suppressed) continue;
            keepFlag[i] = true;
            var s = kept * 5;
            scratch[s] = x1;
            scratch[s + 1] = y1;
            scratch[s + 2] = x2;
            scratch[s + 3] = y2;
            scratch[s + 4] = area;
            kept++;
        }
    }
}
