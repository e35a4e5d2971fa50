// CPU sort and top-k. Each line along the sorted dim is turned into unsigned integer keys whose unsigned
// order is the value order (float32: the sign-flip mapping of the IEEE bits, NaN canonicalized above +inf,
// -0 folded onto +0; int64: the sign bit flipped; descending/largest: the keys complemented). The keys are
// then sorted with an LSD radix sort on bytes (stable by construction, passes skipped where every key shares
// the byte), or an insertion sort for short lines. Top-k finds the k-th smallest key by a most-significant-
// byte radix select, keeps the elements below it plus the first ones equal to it, and radix-sorts only those
// k. Lines run in parallel when there are many.
using System.Buffers;

namespace Engine;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Below this length a line is insertion-sorted (the radix histograms cost more than they save).</summary>
    private const int InsertionSortMax = 32;

    /// <summary>Per-thread buffers for lines of length n, rented so that repeated calls on long lines do not
    /// allocate (and zero) megabytes each time.</summary>
    private sealed class SortScratch(int n) : IDisposable
    {
        public readonly ulong[] Keys = ArrayPool<ulong>.Shared.Rent(n);
        public readonly ulong[] Keys2 = ArrayPool<ulong>.Shared.Rent(n);
        public readonly int[] Index = ArrayPool<int>.Shared.Rent(n);
        public readonly int[] Index2 = ArrayPool<int>.Shared.Rent(n);

        public void Dispose()
        {
            ArrayPool<ulong>.Shared.Return(Keys);
            ArrayPool<ulong>.Shared.Return(Keys2);
            ArrayPool<int>.Shared.Return(Index);
            ArrayPool<int>.Shared.Return(Index2);
        }
    }

    private static void CheckSortDType(string op, Tensor x)
    {
        if (x.DType is not (DType.Float32 or DType.Int64))
            throw new ArgumentException($"{op}: keys must be float32 or int64, got {x.DType.Name()}{ShapeUtil.Format(x.Shape)}; convert with To(DType.Float32) or To(DType.Int64).");
    }

    /// <summary>Unsigned key with the order of the float: NaN above +inf, -0 equal to +0.</summary>
    private static ulong FloatKey(float v)
    {
        if (float.IsNaN(v)) return uint.MaxValue;
        var b = BitConverter.SingleToUInt32Bits(v == 0 ? 0f : v);
        return (b & 0x8000_0000u) != 0 ? ~b : b | 0x8000_0000u;
    }

    /// <summary>Fills keys[0..n) from a strided line; complemented keys reverse the order (descending).</summary>
    private static void LoadKeys(Tensor x, long offset, long stride, int n, bool reverse, ulong[] keys)
    {
        if (x.DType == DType.Float32)
        {
            var p = (float*)x.DataPointer + offset;
            var flip = reverse ? (ulong)uint.MaxValue : 0;
            for (var j = 0; j < n; j++) keys[j] = FloatKey(p[j * stride]) ^ flip;
        }
        else
        {
            var p = (long*)x.DataPointer + offset;
            var flip = 0x8000_0000_0000_0000UL ^ (reverse ? ulong.MaxValue : 0);
            for (var j = 0; j < n; j++) keys[j] = (ulong)p[j * stride] ^ flip;
        }
    }

    /// <summary>Sorts (keys, index)[0..n) by key, stably; keysB and indexB are scratch of length ≥ n.</summary>
    private static void StableSort(ulong[] keys, int[] index, int n, ulong[] keysB, int[] indexB, int keyBytes)
    {
        if (n <= InsertionSortMax)
        {
            for (var i = 1; i < n; i++)
            {
                var (k, v) = (keys[i], index[i]);
                var j = i - 1;
                while (j >= 0 && keys[j] > k)
                {
                    keys[j + 1] = keys[j];
                    index[j + 1] = index[j];
                    j--;
                }
                keys[j + 1] = k;
                index[j + 1] = v;
            }
            return;
        }
        Span<int> counts = stackalloc int[8 * 256];
        counts.Clear();
        for (var i = 0; i < n; i++)
        {
            var k = keys[i];
            for (var b = 0; b < keyBytes; b++) counts[b * 256 + (int)((k >> (8 * b)) & 0xFF)]++;
        }
        var (srcK, srcI, dstK, dstI) = (keys, index, keysB, indexB);
        for (var b = 0; b < keyBytes; b++)
        {
            var c = counts.Slice(b * 256, 256);
            if (c[(int)((srcK[0] >> (8 * b)) & 0xFF)] == n) continue; // every key has this byte: the pass would not move anything
            var sum = 0;
            for (var v = 0; v < 256; v++) (c[v], sum) = (sum, sum + c[v]);
            var shift = 8 * b;
            for (var i = 0; i < n; i++)
            {
                var k = srcK[i];
                var at = c[(int)((k >> shift) & 0xFF)]++;
                dstK[at] = k;
                dstI[at] = srcI[i];
            }
            (srcK, srcI, dstK, dstI) = (dstK, dstI, srcK, srcI);
        }
        if (!ReferenceEquals(srcK, keys))
        {
            Array.Copy(srcK, keys, n);
            Array.Copy(srcI, index, n);
        }
    }

    /// <summary>The k-th smallest (1-based) of keys[0..n) and how many keys equal to it are among the k smallest.</summary>
    private static (ulong Threshold, int EqualTaken) SelectKth(ulong[] keys, int n, int k, ulong[] scratch, int keyBytes)
    {
        Span<int> hist = stackalloc int[256];
        var cand = keys;
        var m = n;
        var r = k;
        ulong prefix = 0;
        for (var shift = 8 * (keyBytes - 1); shift >= 0; shift -= 8)
        {
            hist.Clear();
            for (var q = 0; q < m; q++) hist[(int)((cand[q] >> shift) & 0xFF)]++;
            var b = 0;
            while (r > hist[b]) r -= hist[b++];
            prefix |= (ulong)b << shift;
            if (hist[b] == m) continue;
            // keep the candidates in bucket b (in place when cand is already the scratch: writes trail reads)
            var w = 0;
            for (var q = 0; q < m; q++)
                if ((int)((cand[q] >> shift) & 0xFF) == b) scratch[w++] = cand[q];
            cand = scratch;
            m = w;
        }
        return (prefix, r);
    }

    /// <summary>Runs body(from, to, scratch) over [0, lines), in parallel when the work is large.</summary>
    private static void ForEachLine(long lines, int n, Action<long, long, SortScratch> body)
    {
        if (lines == 1 || lines * Math.Max(n, 1) < CpuLoops.ParallelThreshold)
        {
            using var scratch = new SortScratch(n);
            body(0, lines, scratch);
            return;
        }
        CpuLoops.ParallelRange(lines, (from, to) =>
        {
            using var scratch = new SortScratch(n);
            body(from, to, scratch);
        });
    }

    private static void WriteLine(Tensor x, long xOffset, long xStride, int[] index, int m, Tensor values, Tensor indices, long outOffset, long outStride)
    {
        var pi = indices.Data<long>() + outOffset;
        for (var j = 0; j < m; j++) pi[j * outStride] = index[j];
        if (x.DType == DType.Float32)
        {
            var px = (float*)x.DataPointer + xOffset;
            var pv = values.Data<float>() + outOffset;
            for (var j = 0; j < m; j++) pv[j * outStride] = px[index[j] * xStride];
        }
        else
        {
            var px = (long*)x.DataPointer + xOffset;
            var pv = values.Data<long>() + outOffset;
            for (var j = 0; j < m; j++) pv[j * outStride] = px[index[j] * xStride];
        }
    }

    public void Sort(Tensor x, int dim, bool descending, Tensor values, Tensor indices)
    {
        CheckSortDType("sort", x);
        if (x.Numel == 0) return;
        var n = x._shape[dim];
        var outer = new StridedOffsets(x.Shape[..dim], x.Strides[..dim]);
        var inner = new StridedOffsets(x.Shape[(dim + 1)..], x.Strides[(dim + 1)..]);
        var innerCount = inner.Count;
        var xs = x._strides[dim];
        var keyBytes = x.DType == DType.Float32 ? 4 : 8;
        ForEachLine(outer.Count * innerCount, n, (from, to, s) =>
        {
            for (var l = from; l < to; l++)
            {
                var (o, i) = (l / innerCount, l % innerCount);
                var xOffset = outer[o] + inner[i];
                LoadKeys(x, xOffset, xs, n, descending, s.Keys);
                for (var j = 0; j < n; j++) s.Index[j] = j;
                StableSort(s.Keys, s.Index, n, s.Keys2, s.Index2, keyBytes);
                WriteLine(x, xOffset, xs, s.Index, n, values, indices, o * n * innerCount + i, innerCount);
            }
        });
    }

    public void TopK(Tensor x, int dim, int k, bool largest, Tensor values, Tensor indices)
    {
        CheckSortDType("topk", x);
        var n = x._shape[dim];
        if ((uint)k > (uint)n)
            throw new ArgumentOutOfRangeException(nameof(k), $"topk: k = {k} is out of range for dim {dim} of size {n} (shape {ShapeUtil.Format(x.Shape)}).");
        if (values.Numel == 0) return;
        var outer = new StridedOffsets(x.Shape[..dim], x.Strides[..dim]);
        var inner = new StridedOffsets(x.Shape[(dim + 1)..], x.Strides[(dim + 1)..]);
        var innerCount = inner.Count;
        var xs = x._strides[dim];
        var keyBytes = x.DType == DType.Float32 ? 4 : 8;
        // Selecting first pays when k is a small part of the line; otherwise sorting everything is as cheap.
        var select = n > 4 * InsertionSortMax && 4L * k <= n;
        ForEachLine(outer.Count * innerCount, n, (from, to, s) =>
        {
            for (var l = from; l < to; l++)
            {
                var (o, i) = (l / innerCount, l % innerCount);
                var xOffset = outer[o] + inner[i];
                // smallest k of complemented keys = largest k
                LoadKeys(x, xOffset, xs, n, largest, s.Keys);
                var outOffset = o * k * innerCount + i;
                if (!select)
                {
                    for (var j = 0; j < n; j++) s.Index[j] = j;
                    StableSort(s.Keys, s.Index, n, s.Keys2, s.Index2, keyBytes);
                    WriteLine(x, xOffset, xs, s.Index, k, values, indices, outOffset, innerCount);
                    continue;
                }
                var (threshold, equalTaken) = SelectKth(s.Keys, n, k, s.Keys2, keyBytes);
                // the chosen elements in position order: all keys below the threshold, the first equalTaken equal to it
                var w = 0;
                for (var j = 0; j < n && w < k; j++)
                {
                    var key = s.Keys[j];
                    if (key < threshold || key == threshold && equalTaken-- > 0)
                    {
                        s.Keys2[w] = key;
                        s.Index[w++] = j;
                    }
                }
                StableSort(s.Keys2, s.Index, k, s.Keys, s.Index2, keyBytes);
                WriteLine(x, xOffset, xs, s.Index, k, values, indices, outOffset, innerCount);
            }
        });
    }
}
