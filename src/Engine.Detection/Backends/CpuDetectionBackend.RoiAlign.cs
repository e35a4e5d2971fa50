// ROIAlign on the CPU, forward and backward, single- or multi-level in one pass.
//
// The math (torchvision roi_align): bin (ph, pw) of a RoI averages gh×gw bilinear samples at
// y = y0 + ph·bh + (iy + ½)·bh/gh, x = x0 + pw·bw + (ix + ½)·bw/gw; a sample outside [-1, H] × [-1, W] is 0,
// coordinates ≤ 0 clamp to 0 and the last row/column repeats. Both the sample positions and the bilinear
// weights factor into a y part and an x part, so for one RoI and channel
//     out[ph, pw] = Σ_y Σ_x Ay[ph, y] · F[y, x] · Ax[pw, x],
// where Ay (Ph × H) and Ax (Pw × W) hold the summed bilinear weights of each bin's samples (already divided by gh and
// gw) and are nonzero only on the rows and columns the RoI touches. A plan per RoI (computed once, shared by every
// channel, torchvision's pre-calc idea taken one step further) keeps, per output row ph, the touched rows and their
// weights, and the touched column range with Ax in both orientations. Forward per (RoI, channel):
//     S[x] = Σ_y Ay[ph, y] F[y, x0..x1]  (contiguous SIMD axpy over the column range), out[ph, :] = Σ_x S[x] Ax[:, x];
// backward is the transpose: V[x] = Σ_pw g[ph, pw] Ax[pw, x], then F_grad[y, x0..x1] += Ay[ph, y] V.
//
// Work is split by feature plane (level, image, channel): a task reads or writes one plane only, for all RoIs of
// that level and image, in their original order, so the plane stays in cache, the backward needs no atomics, and
// the gradient is bit-identical from run to run whatever the thread count.
using System.Numerics;

namespace Engine.Detection;

public sealed unsafe partial class CpuDetectionBackend
{
    private static readonly int Lanes = Vector<float>.Count;

    /// <summary>Channels per task: 8 planes of a 100×167 map (0.5 MB) stay in a core's L2 while all their RoIs are pooled.</summary>
    private const int ChannelBlock = 8;

    /// <summary>Per-RoI sampling plan: the rows and columns of its level's planes it reads, with their weights.</summary>
    private sealed class RoiPlan
    {
        public int Level, Batch;
        /// <summary>First column and number of columns of the touched column range; NColsPad rounds up to whole vectors.</summary>
        public int Col0, NCols, NColsPad;
        /// <summary>(Ph + 1) offsets into Rows/RowWeights: output row ph uses entries RowStart[ph] .. RowStart[ph+1].</summary>
        public int[] RowStart = [];
        public int[] Rows = [];
        public float[] RowWeights = [];
        /// <summary>Columns (relative to Col0) with a nonzero weight for some pw.</summary>
        public int[] TouchedCols = [];
        /// <summary>(NCols × PwPad) column weights, one padded vector of pw per column.</summary>
        public float[] AxT = [];
        /// <summary>(Pw × NColsPad) the same weights, one padded row of columns per pw.</summary>
        public float[] Ax = [];
        /// <summary>(Pw × 2) the vector-aligned [start, end) of the nonzero part of each Ax row.</summary>
        public int[] AxRange = [];
    }

    /// <summary>Bilinear neighbours of coordinate v on an axis of <paramref name="size"/> cells (torchvision's rules),
    /// or false when the sample lies outside [-1, size] and contributes nothing.</summary>
    private static bool Neighbours(double v, int size, out int lo, out int hi, out double wLo, out double wHi)
    {
        lo = hi = 0;
        wLo = wHi = 0;
        if (v < -1.0 || v > size) return false;
        if (v <= 0) v = 0;
        lo = (int)v;
        if (lo >= size - 1)
        {
            lo = hi = size - 1;
            v = lo;
        }
        else hi = lo + 1;
        wHi = v - lo;
        wLo = 1 - wHi;
        return true;
    }

    /// <summary>The summed weights of each bin's samples along one axis, dense over the touched range:
    /// w[p·count + (i - first)] for bin p and cell i. Each sample weighs 1/grid.</summary>
    private static (int First, int Count, double[] W) AxisWeights(double start, double binSize, int grid, int bins, int size)
    {
        int first = int.MaxValue, last = int.MinValue;
        for (var p = 0; p < bins; p++)
            for (var i = 0; i < grid; i++)
                if (Neighbours(start + p * binSize + (i + 0.5) * binSize / grid, size, out var lo, out var hi, out _, out _))
                {
                    first = Math.Min(first, lo);
                    last = Math.Max(last, hi);
                }
        if (last < first) return (0, 0, []);
        var count = last - first + 1;
        var w = new double[bins * count];
        for (var p = 0; p < bins; p++)
            for (var i = 0; i < grid; i++)
                if (Neighbours(start + p * binSize + (i + 0.5) * binSize / grid, size, out var lo, out var hi, out var wl, out var wh))
                {
                    w[p * count + lo - first] += wl / grid;
                    w[p * count + hi - first] += wh / grid;
                }
        return (first, count, w);
    }

    private static RoiPlan BuildPlan(RoiAlignGeometry g, float* roi, int level, int height, int width, int pwPad)
    {
        var (ph, pw) = (g.PooledHeight, g.PooledWidth);
        var scale = g.Scales[level];
        var offset = g.Aligned ? 0.5 : 0.0;
        var x0 = roi[1] * scale - offset;
        var y0 = roi[2] * scale - offset;
        var roiW = roi[3] * scale - offset - x0;
        var roiH = roi[4] * scale - offset - y0;
        if (!g.Aligned)
        {
            roiW = Math.Max(roiW, 1.0);
            roiH = Math.Max(roiH, 1.0);
        }
        var binH = roiH / ph;
        var binW = roiW / pw;
        var gridH = g.SamplingRatio > 0 ? g.SamplingRatio : (int)Math.Ceiling(roiH / ph);
        var gridW = g.SamplingRatio > 0 ? g.SamplingRatio : (int)Math.Ceiling(roiW / pw);
        var plan = new RoiPlan { Level = level, Batch = (int)roi[0], RowStart = new int[ph + 1] };
        if (gridH <= 0 || gridW <= 0) return plan; // an empty box has no samples: its bins are 0

        var (row0, nRows, ay) = AxisWeights(y0, binH, gridH, ph, height);
        var (col0, nCols, ax) = AxisWeights(x0, binW, gridW, pw, width);
        if (nRows == 0 || nCols == 0) return plan;

        var rows = new List<int>();
        var rowWeights = new List<float>();
        for (var p = 0; p < ph; p++)
        {
            for (var k = 0; k < nRows; k++)
            {
                var w = ay[p * nRows + k];
                if (w == 0) continue;
                rows.Add(row0 + k);
                rowWeights.Add((float)w);
            }
            plan.RowStart[p + 1] = rows.Count;
        }
        plan.Rows = [.. rows];
        plan.RowWeights = [.. rowWeights];

        plan.Col0 = col0;
        plan.NCols = nCols;
        plan.NColsPad = (nCols + Lanes - 1) / Lanes * Lanes;
        plan.AxT = new float[nCols * pwPad];
        plan.Ax = new float[pw * plan.NColsPad];
        plan.AxRange = new int[pw * 2];
        var touched = new List<int>();
        for (var j = 0; j < nCols; j++)
        {
            var any = false;
            for (var p = 0; p < pw; p++)
            {
                var w = (float)ax[p * nCols + j];
                plan.AxT[j * pwPad + p] = w;
                plan.Ax[p * plan.NColsPad + j] = w;
                any |= w != 0;
            }
            if (any) touched.Add(j);
        }
        plan.TouchedCols = [.. touched];
        for (var p = 0; p < pw; p++)
        {
            int lo = nCols, hi = 0;
            for (var j = 0; j < nCols; j++)
                if (ax[p * nCols + j] != 0)
                {
                    lo = Math.Min(lo, j);
                    hi = j + 1;
                }
            if (hi <= lo) (lo, hi) = (0, 0);
            plan.AxRange[2 * p] = lo / Lanes * Lanes;
            plan.AxRange[2 * p + 1] = (hi + Lanes - 1) / Lanes * Lanes;
        }
        return plan;
    }

    /// <summary>Plans for every RoI, and the RoIs of each (level, image) group in their original order.</summary>
    private static (RoiPlan[] Plans, int[][] Groups) PlanAll(RoiAlignGeometry g, IReadOnlyList<Tensor> features, Tensor rois, Tensor? levels, string op)
    {
        var r = rois.Size(0);
        var n = features[0].Size(0);
        var nLevels = features.Count;
        var pwPad = (g.PooledWidth + Lanes - 1) / Lanes * Lanes;
        var pr = rois.Data<float>();
        long* pl = levels is null ? null : levels.Data<long>();
        var plans = new RoiPlan[r];
        for (var i = 0; i < r; i++)
        {
            var b = pr[i * 5];
            if (!(b >= 0 && b < n && b == MathF.Floor(b)))
                throw new ArgumentException($"{op}: rois[{i}, 0] = {b} is not the index of an image in the batch of {n}; column 0 of rois must hold integral batch indices in [0, {n}).");
            var l = pl is null ? 0 : pl[i];
            if (l < 0 || l >= nLevels)
                throw new ArgumentException($"{op}: levelOfEachRoi[{i}] = {l} is out of range for {nLevels} feature levels; use values in [0, {nLevels}).");
        }
        var levelArr = new int[r];
        for (var i = 0; i < r; i++) levelArr[i] = pl is null ? 0 : (int)pl[i];
        Parallel.For(0, r, new ParallelOptions { MaxDegreeOfParallelism = r < 64 ? 1 : -1 }, i =>
        {
            var l = levelArr[i];
            plans[i] = BuildPlan(g, pr + (long)i * 5, l, features[l].Size(2), features[l].Size(3), pwPad);
        });
        var groups = new List<int>[nLevels * n];
        for (var k = 0; k < groups.Length; k++) groups[k] = [];
        for (var i = 0; i < r; i++) groups[plans[i].Level * n + plans[i].Batch].Add(i);
        return (plans, groups.Select(x => x.ToArray()).ToArray());
    }

    public void RoiAlignForward(RoiAlignGeometry geometry, IReadOnlyList<Tensor> features, Tensor rois, Tensor? levels, Tensor output)
    {
        var r = rois.Size(0);
        if (r == 0) return;
        var (n, c) = (features[0].Size(0), features[0].Size(1));
        var (ph, pw) = (geometry.PooledHeight, geometry.PooledWidth);
        var pwPad = (pw + Lanes - 1) / Lanes * Lanes;
        var (plans, groups) = PlanAll(geometry, features, rois, levels, "RoiAlign");
        var maxCols = plans.Max(p => p.NColsPad);
        var basePtrs = features.Select(f => (IntPtr)f.Data<float>()).ToArray();
        var limits = features.Select(f => (IntPtr)(f.Data<float>() + f.Numel)).ToArray();
        var po = output.Data<float>();

        // tasks: (group, block of channels, RoI chunk); groups with many RoIs are split when there are few tasks to share out
        var blocks = (c + ChannelBlock - 1) / ChannelBlock;
        var tasks = new List<(int Group, int Block, int From, int To)>();
        var work = groups.Count(x => x.Length > 0) * (long)blocks;
        var chunk = work >= 4L * Environment.ProcessorCount ? int.MaxValue : Math.Max(16, r / (4 * Environment.ProcessorCount) + 1);
        for (var gi = 0; gi < groups.Length; gi++)
            for (var cb = 0; cb < blocks; cb++)
                for (var from = 0; from < groups[gi].Length; from += chunk)
                    tasks.Add((gi, cb, from, (int)Math.Min(groups[gi].Length, (long)from + chunk)));

        Parallel.For(0, tasks.Count, ParallelFor(tasks.Count), () => new float[maxCols + pwPad], (t, _, scratch) =>
        {
            var (gi, cb, from, to) = tasks[t];
            var level = gi / n;
            var b = gi % n;
            var (h, w) = (features[level].Size(2), features[level].Size(3));
            var (c0, c1) = (cb * ChannelBlock, Math.Min(c, (cb + 1) * ChannelBlock));
            var planes = (float*)basePtrs[level] + (long)b * c * h * w;
            var limit = (float*)limits[level];
            for (var k = from; k < to; k++)
            {
                var ri = groups[gi][k];
                // consecutive channels of one RoI: the output is written in one contiguous run per task and RoI
                for (var ch = c0; ch < c1; ch++)
                    ForwardOne(plans[ri], planes + (long)ch * h * w, w, po + ((long)ri * c + ch) * ph * pw, ph, pw, pwPad, scratch, limit);
            }
            return scratch;
        }, _ => { });
    }

    /// <summary>One RoI, one channel: dst (Ph × Pw) from one feature plane. limit: end of the feature tensor, so that
    /// whole-vector reads past the RoI's last column stay inside it (the extra lanes are never used).</summary>
    private static void ForwardOne(RoiPlan p, float* plane, int width, float* dst, int ph, int pw, int pwPad, float[] scratch, float* limit)
    {
        var nCols = p.NCols;
        var nVec = p.NColsPad / Lanes;
        var vecPerCol = pwPad / Lanes;
        fixed (float* sp = scratch, axT = p.AxT, rw = p.RowWeights)
        fixed (int* rows = p.Rows, touched = p.TouchedCols, rowStart = p.RowStart)
        {
            var result = sp + p.NColsPad; // pwPad floats after S
            var nTouched = p.TouchedCols.Length;
            var lastRow = p.Rows.Length == 0 ? 0 : p.Rows[^1];
            var wide = plane + (long)lastRow * width + p.Col0 + p.NColsPad <= limit;
            for (var y = 0; y < ph; y++)
            {
                var (k0, k1) = (rowStart[y], rowStart[y + 1]);
                if (k1 == k0)
                {
                    new Span<float>(dst + (long)y * pw, pw).Clear();
                    continue;
                }
                // S[x] = Σ_rows w · F[row, Col0 + x], one register accumulator per vector of columns
                if (wide)
                    for (var jv = 0; jv < nVec; jv++)
                    {
                        var j = jv * Lanes;
                        var acc = new Vector<float>(rw[k0]) * Vector.Load(plane + (long)rows[k0] * width + p.Col0 + j);
                        for (var k = k0 + 1; k < k1; k++)
                            acc += new Vector<float>(rw[k]) * Vector.Load(plane + (long)rows[k] * width + p.Col0 + j);
                        acc.Store(sp + j);
                    }
                else
                    for (var j = 0; j < nCols; j++)
                    {
                        var acc = 0f;
                        for (var k = k0; k < k1; k++) acc += rw[k] * plane[(long)rows[k] * width + p.Col0 + j];
                        sp[j] = acc;
                    }
                // out[y, :] = Σ_x S[x] · Ax[:, x]
                if (vecPerCol == 1)
                {
                    Vector<float> a0 = Vector<float>.Zero, a1 = Vector<float>.Zero; // two chains hide the FMA latency
                    var t = 0;
                    for (; t + 1 < nTouched; t += 2)
                    {
                        var (j0, j1) = (touched[t], touched[t + 1]);
                        a0 += new Vector<float>(sp[j0]) * Vector.Load(axT + (long)j0 * pwPad);
                        a1 += new Vector<float>(sp[j1]) * Vector.Load(axT + (long)j1 * pwPad);
                    }
                    if (t < nTouched) a0 += new Vector<float>(sp[touched[t]]) * Vector.Load(axT + (long)touched[t] * pwPad);
                    (a0 + a1).Store(result);
                }
                else
                    for (var v = 0; v < vecPerCol; v++)
                    {
                        var a = Vector<float>.Zero;
                        for (var t = 0; t < nTouched; t++)
                            a += new Vector<float>(sp[touched[t]]) * Vector.Load(axT + (long)touched[t] * pwPad + v * Lanes);
                        a.Store(result + v * Lanes);
                    }
                new Span<float>(result, pw).CopyTo(new Span<float>(dst + (long)y * pw, pw));
            }
        }
    }

    public void RoiAlignBackward(RoiAlignGeometry geometry, Tensor gradOutput, Tensor rois, Tensor? levels, IReadOnlyList<Tensor?> gradFeatures)
    {
        var r = rois.Size(0);
        var first = gradFeatures.First(x => x is not null)!;
        var (n, c) = (first.Size(0), first.Size(1));
        var (ph, pw) = (geometry.PooledHeight, geometry.PooledWidth);
        var shapes = gradFeatures.Select(x => x ?? first).ToList(); // sizes for planning; null levels are skipped below
        var (plans, groups) = r == 0 ? ([], Enumerable.Range(0, gradFeatures.Count * n).Select(_ => Array.Empty<int>()).ToArray()) : PlanAll(geometry, shapes, rois, levels, "RoiAlign backward");
        var maxCols = plans.Length == 0 ? 0 : plans.Max(p => p.NColsPad);
        var basePtrs = gradFeatures.Select(f => f is null ? IntPtr.Zero : (IntPtr)f.Data<float>()).ToArray();
        float* pg = r == 0 ? null : gradOutput.Data<float>();

        // one task per block of planes (level, image, channels c0..c1): it zeroes them, then adds its RoIs in order
        var blocks = (c + ChannelBlock - 1) / ChannelBlock;
        var tasks = new List<(int Group, int Block)>();
        for (var gi = 0; gi < groups.Length; gi++)
            if (basePtrs[gi / n] != IntPtr.Zero)
                for (var cb = 0; cb < blocks; cb++) tasks.Add((gi, cb));

        Parallel.For(0, tasks.Count, ParallelFor(tasks.Count), () => new float[maxCols], (t, _, v) =>
        {
            var (gi, cb) = tasks[t];
            var level = gi / n;
            var b = gi % n;
            var (h, w) = (gradFeatures[level]!.Size(2), gradFeatures[level]!.Size(3));
            var (c0, c1) = (cb * ChannelBlock, Math.Min(c, (cb + 1) * ChannelBlock));
            var planes = (float*)basePtrs[level] + (long)b * c * h * w;
            new Span<float>(planes + (long)c0 * h * w, (c1 - c0) * h * w).Clear();
            var ownedEnd = planes + (long)c1 * h * w;
            foreach (var ri in groups[gi])
                for (var ch = c0; ch < c1; ch++)
                    BackwardOne(plans[ri], planes + (long)ch * h * w, w, pg + ((long)ri * c + ch) * ph * pw, ph, pw, v, ownedEnd);
            return v;
        }, _ => { });
    }

    /// <summary>One RoI, one channel: adds its gradient g (Ph × Pw) into one gradient plane. ownedEnd: end of the planes
    /// this task owns; a whole-vector read-modify-write that would cross it falls back to scalars.</summary>
    private static void BackwardOne(RoiPlan p, float* plane, int width, float* g, int ph, int pw, float[] scratch, float* ownedEnd)
    {
        if (p.NCols == 0) return;
        var nCols = p.NCols;
        var nVec = p.NColsPad / Lanes;
        var stride = p.NColsPad;
        var lastStart = (nVec - 1) * Lanes;
        var tailMask = Vector.LessThan(LaneIndex, new Vector<int>(nCols - lastStart)).As<int, float>();
        var lastRow = p.Rows.Length == 0 ? 0 : p.Rows[^1];
        var wide = plane + (long)lastRow * width + p.Col0 + stride <= ownedEnd;
        fixed (float* v = scratch, ax = p.Ax, rw = p.RowWeights)
        fixed (int* rows = p.Rows, rowStart = p.RowStart, range = p.AxRange)
        {
            for (var y = 0; y < ph; y++)
            {
                var (k0, k1) = (rowStart[y], rowStart[y + 1]);
                if (k1 == k0) continue;
                // V = Σ_pw g[y, pw] · Ax[pw, :], per vector of columns over the pw whose nonzero span covers it
                for (var jv = 0; jv < nVec; jv++)
                {
                    var j = jv * Lanes;
                    var acc = Vector<float>.Zero;
                    for (var x = 0; x < pw; x++)
                        if (j >= range[2 * x] && j < range[2 * x + 1])
                            acc += new Vector<float>(g[y * pw + x]) * Vector.Load(ax + (long)x * stride + j);
                    acc.Store(v + j);
                }
                // F_grad[row, Col0 ..] += w · V
                for (var k = k0; k < k1; k++)
                {
                    var dst = plane + (long)rows[k] * width + p.Col0;
                    var wv = new Vector<float>(rw[k]);
                    if (wide)
                    {
                        for (var j = 0; j < lastStart; j += Lanes)
                            (Vector.Load(dst + j) + wv * Vector.Load(v + j)).Store(dst + j);
                        var old = Vector.Load(dst + lastStart);
                        Vector.ConditionalSelect(tailMask, old + wv * Vector.Load(v + lastStart), old).Store(dst + lastStart);
                    }
                    else
                        for (var j = 0; j < nCols; j++) dst[j] += rw[k] * v[j];
                }
            }
        }
    }

    private static readonly Vector<int> LaneIndex = CreateLaneIndex();

    private static Vector<int> CreateLaneIndex()
    {
        var lanes = new int[Vector<int>.Count];
        for (var i = 0; i < lanes.Length; i++) lanes[i] = i;
        return new Vector<int>(lanes);
    }

    private static ParallelOptions ParallelFor(int tasks) =>
        new() { MaxDegreeOfParallelism = tasks < 2 ? 1 : Environment.ProcessorCount };
}
