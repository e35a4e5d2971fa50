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
// weights, and per pw the span of columns with their weights. Per RoI and output row ph:
//     S[x] = Σ_y Ay[ph, y] F[y, x]  over the RoI's columns,   out[ph, pw] = Σ_x Ax[pw, x] S[x]  over pw's span;
// the backward is the transpose: V[x] = Σ_pw Ax[pw, x] g[ph, pw], then F_grad[y, x] += Ay[ph, y] V[x].
//
// SIMD runs across channels: a task takes one (level, image) group and a block of 8 channels (one Vector<float>),
// copies those 8 planes into a channel-interleaved buffer (H × W × 8, in cache), and every multiply-add above is
// one vector operation for 8 channels with the same scalar weight. The backward accumulates into such a buffer
// and writes it back to the 8 gradient planes at the end. A task owns its planes, visits its RoIs in their
// original order and needs no atomics, so the gradient is bit-identical from run to run whatever the thread count.
using System.Numerics;

namespace Engine.Detection;

public sealed unsafe partial class CpuDetectionBackend
{
    private static readonly int Lanes = Vector<float>.Count;

    /// <summary>Channel-interleaved copies of one channel block (H × W × Lanes floats), one per worker thread.</summary>
    [ThreadStatic] private static float[]? _interleaved;

    private static float[] Interleaved(long length)
    {
        if (_interleaved is null || _interleaved.Length < length) _interleaved = new float[Math.Max(length, 1)];
        return _interleaved;
    }

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
        /// <summary>(Pw × NCols) column weights of each output column pw.</summary>
        public float[] Ax = [];
        /// <summary>(Pw × 2) the [start, end) of the nonzero part of each Ax row.</summary>
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

    private static RoiPlan BuildPlan(RoiAlignGeometry g, float* roi, int level, int height, int width)
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
        plan.Ax = new float[pw * nCols];
        plan.AxRange = new int[pw * 2];
        for (var p = 0; p < pw; p++)
        {
            int lo = nCols, hi = 0;
            for (var j = 0; j < nCols; j++)
            {
                var w = (float)ax[p * nCols + j];
                plan.Ax[p * nCols + j] = w;
                if (w == 0) continue;
                lo = Math.Min(lo, j);
                hi = j + 1;
            }
            if (hi <= lo) (lo, hi) = (0, 0);
            plan.AxRange[2 * p] = lo;
            plan.AxRange[2 * p + 1] = hi;
        }
        return plan;
    }

    /// <summary>Plans for every RoI, and the RoIs of each (level, image) group in their original order.</summary>
    private static (RoiPlan[] Plans, int[][] Groups) PlanAll(RoiAlignGeometry g, IReadOnlyList<Tensor> features, Tensor rois, Tensor? levels, string op)
    {
        var r = rois.Size(0);
        var n = features[0].Size(0);
        var nLevels = features.Count;
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
            plans[i] = BuildPlan(g, pr + (long)i * 5, l, features[l].Size(2), features[l].Size(3));
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
        var (plans, groups) = PlanAll(geometry, features, rois, levels, "RoiAlign");
        var maxCols = plans.Max(p => p.NCols);
        var basePtrs = features.Select(f => (IntPtr)f.Data<float>()).ToArray();
        var po = output.Data<float>();

        // tasks: (group, channel block, RoI chunk); groups with many RoIs are split when there are few tasks to share out
        var blocks = (c + Lanes - 1) / Lanes;
        var tasks = new List<(int Group, int Block, int From, int To)>();
        var work = groups.Count(x => x.Length > 0) * (long)blocks;
        var chunk = work >= 4L * Environment.ProcessorCount ? int.MaxValue : Math.Max(16, r / (4 * Environment.ProcessorCount) + 1);
        for (var gi = 0; gi < groups.Length; gi++)
            for (var cb = 0; cb < blocks; cb++)
                for (var from = 0; from < groups[gi].Length; from += chunk)
                    tasks.Add((gi, cb, from, (int)Math.Min(groups[gi].Length, (long)from + chunk)));

        // per thread: S (maxCols vectors) and the pooled block (Ph·Pw vectors)
        Parallel.For(0, tasks.Count, ParallelFor(tasks.Count), () => new float[(maxCols + ph * pw) * Lanes], (t, _, scratch) =>
        {
            var (gi, cb, from, to) = tasks[t];
            var level = gi / n;
            var b = gi % n;
            var (h, w) = (features[level].Size(2), features[level].Size(3));
            var (c0, nc) = (cb * Lanes, Math.Min(Lanes, c - cb * Lanes));
            var buffer = Interleaved((long)h * w * Lanes);
            fixed (float* ib = buffer, sp = scratch)
            {
                Interleave((float*)basePtrs[level] + ((long)b * c + c0) * h * w, (long)h * w, nc, ib);
                var pooled = sp + maxCols * Lanes;
                for (var k = from; k < to; k++)
                {
                    var ri = groups[gi][k];
                    ForwardBlock(plans[ri], ib, w, ph, pw, sp, pooled);
                    // (Ph·Pw, 8) → out[ri, c0 + lane, :, :], one contiguous run per channel
                    var dst = po + ((long)ri * c + c0) * ph * pw;
                    for (var lane = 0; lane < nc; lane++)
                        for (var q = 0; q < ph * pw; q++) dst[(long)lane * ph * pw + q] = pooled[q * Lanes + lane];
                }
            }
            return scratch;
        }, _ => { });
    }

    /// <summary>dst[i·Lanes + lane] = planes[lane·count + i] for lane &lt; nc, 0 for the padding lanes.</summary>
    private static void Interleave(float* planes, long count, int nc, float* dst)
    {
        if (nc < Lanes) new Span<float>(dst, (int)(count * Lanes)).Clear();
        for (var lane = 0; lane < nc; lane++)
        {
            var src = planes + lane * count;
            var d = dst + lane;
            for (long i = 0; i < count; i++) d[i * Lanes] = src[i];
        }
    }

    /// <summary>planes[lane·count + i] = src[i·Lanes + lane] for lane &lt; nc.</summary>
    private static void Deinterleave(float* src, long count, int nc, float* planes)
    {
        for (var lane = 0; lane < nc; lane++)
        {
            var d = planes + lane * count;
            var s = src + lane;
            for (long i = 0; i < count; i++) d[i] = s[i * Lanes];
        }
    }

    /// <summary>One RoI, one block of channels: pooled (Ph·Pw vectors) from the interleaved planes ib (H × W × Lanes).</summary>
    private static void ForwardBlock(RoiPlan p, float* ib, int width, int ph, int pw, float* sp, float* pooled)
    {
        var nCols = p.NCols;
        var s = (Vector<float>*)sp;
        var o = (Vector<float>*)pooled;
        fixed (float* ax = p.Ax, rw = p.RowWeights)
        fixed (int* rows = p.Rows, rowStart = p.RowStart, range = p.AxRange)
        {
            for (var y = 0; y < ph; y++)
            {
                var (k0, k1) = (rowStart[y], rowStart[y + 1]);
                if (k1 == k0 || nCols == 0)
                {
                    for (var x = 0; x < pw; x++) o[y * pw + x] = Vector<float>.Zero;
                    continue;
                }
                // S[j] = Σ_rows w · F[row, Col0 + j] for 8 channels at once
                var src = (Vector<float>*)(ib + ((long)rows[k0] * width + p.Col0) * Lanes);
                var w0 = new Vector<float>(rw[k0]);
                for (var j = 0; j < nCols; j++) s[j] = w0 * src[j];
                for (var k = k0 + 1; k < k1; k++)
                {
                    src = (Vector<float>*)(ib + ((long)rows[k] * width + p.Col0) * Lanes);
                    var wk = new Vector<float>(rw[k]);
                    for (var j = 0; j < nCols; j++) s[j] += wk * src[j];
                }
                // out[y, x] = Σ_j Ax[x, j] S[j] over x's span
                for (var x = 0; x < pw; x++)
                {
                    var acc = Vector<float>.Zero;
                    var a = ax + x * nCols;
                    for (int j = range[2 * x], j1 = range[2 * x + 1]; j < j1; j++) acc += new Vector<float>(a[j]) * s[j];
                    o[y * pw + x] = acc;
                }
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
        var maxCols = plans.Length == 0 ? 0 : plans.Max(p => p.NCols);
        var basePtrs = gradFeatures.Select(f => f is null ? IntPtr.Zero : (IntPtr)f.Data<float>()).ToArray();
        float* pg = r == 0 ? null : gradOutput.Data<float>();

        // one task per (level, image, channel block): it accumulates its RoIs, in order, into an interleaved buffer and
        // then writes all of its planes (zeros where no RoI reached)
        var blocks = (c + Lanes - 1) / Lanes;
        var tasks = new List<(int Group, int Block)>();
        for (var gi = 0; gi < groups.Length; gi++)
            if (basePtrs[gi / n] != IntPtr.Zero)
                for (var cb = 0; cb < blocks; cb++) tasks.Add((gi, cb));

        Parallel.For(0, tasks.Count, ParallelFor(tasks.Count), () => new float[(maxCols + ph * pw) * Lanes], (t, _, scratch) =>
        {
            var (gi, cb) = tasks[t];
            var level = gi / n;
            var b = gi % n;
            var (h, w) = (gradFeatures[level]!.Size(2), gradFeatures[level]!.Size(3));
            var (c0, nc) = (cb * Lanes, Math.Min(Lanes, c - cb * Lanes));
            var planes = (float*)basePtrs[level] + ((long)b * c + c0) * h * w;
            if (groups[gi].Length == 0)
            {
                new Span<float>(planes, nc * h * w).Clear();
                return scratch;
            }
            var buffer = Interleaved((long)h * w * Lanes);
            fixed (float* ib = buffer, sp = scratch)
            {
                new Span<float>(ib, h * w * Lanes).Clear();
                var gBlock = sp + maxCols * Lanes;
                foreach (var ri in groups[gi])
                {
                    // g[ri, c0 + lane, :, :] → (Ph·Pw, 8), zero in the padding lanes
                    var src = pg + ((long)ri * c + c0) * ph * pw;
                    for (var q = 0; q < ph * pw; q++)
                        for (var lane = 0; lane < Lanes; lane++) gBlock[q * Lanes + lane] = lane < nc ? src[(long)lane * ph * pw + q] : 0f;
                    BackwardBlock(plans[ri], ib, w, ph, pw, sp, gBlock);
                }
                Deinterleave(ib, (long)h * w, nc, planes);
            }
            return scratch;
        }, _ => { });
    }

    /// <summary>One RoI, one block of channels: adds the bilinear scatter of gBlock (Ph·Pw vectors) into ib (H × W × Lanes).</summary>
    private static void BackwardBlock(RoiPlan p, float* ib, int width, int ph, int pw, float* sp, float* gBlock)
    {
        var nCols = p.NCols;
        if (nCols == 0) return;
        var v = (Vector<float>*)sp;
        var gv = (Vector<float>*)gBlock;
        fixed (float* ax = p.Ax, rw = p.RowWeights)
        fixed (int* rows = p.Rows, rowStart = p.RowStart, range = p.AxRange)
        {
            for (var y = 0; y < ph; y++)
            {
                var (k0, k1) = (rowStart[y], rowStart[y + 1]);
                if (k1 == k0) continue;
                // V[j] = Σ_x Ax[x, j] g[y, x]
                for (var j = 0; j < nCols; j++) v[j] = Vector<float>.Zero;
                for (var x = 0; x < pw; x++)
                {
                    var g = gv[y * pw + x];
                    var a = ax + x * nCols;
                    for (int j = range[2 * x], j1 = range[2 * x + 1]; j < j1; j++) v[j] += new Vector<float>(a[j]) * g;
                }
                // F_grad[row, Col0 + j] += w · V[j]
                for (var k = k0; k < k1; k++)
                {
                    var dst = (Vector<float>*)(ib + ((long)rows[k] * width + p.Col0) * Lanes);
                    var wk = new Vector<float>(rw[k]);
                    for (var j = 0; j < nCols; j++) dst[j] += wk * v[j];
                }
            }
        }
    }

    private static ParallelOptions ParallelFor(int tasks) =>
        new() { MaxDegreeOfParallelism = tasks < 2 ? 1 : Environment.ProcessorCount };
}
