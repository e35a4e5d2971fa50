// CPU indexing primitives: index_select, index_add, gather, scatter_add and nonzero over strided tensors.
// A tensor is seen as (outer, dim, inner): the offsets of the outer and inner positions come from
// StridedOffsets (one stride when the dims collapse, else a table). Indices are validated in a first pass
// so nothing is written when one is out of range. Scatter-adds parallelize over outer positions and chunks
// of inner positions only: every destination element is then updated by one thread, in order of the index
// position along dim, so results are deterministic and repeated indices accumulate without races.
using System.Numerics;
using System.Numerics.Tensors;

namespace Engine;

/// <summary>Element offsets of the row-major positions of a sub-shape under given strides.</summary>
internal readonly struct StridedOffsets
{
    private readonly long[]? _table;
    private readonly long _stride;

    public StridedOffsets(ReadOnlySpan<int> shape, ReadOnlySpan<long> strides)
    {
        Count = ShapeUtil.Numel(shape);
        _stride = 1;
        _table = null;
        // Collapse when every non-1 dim's stride is the next non-1 dim's stride times its size.
        var last = -1;
        var collapses = true;
        for (var d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] == 1) continue;
            if (last >= 0 && strides[d] != strides[last] * shape[last]) collapses = false;
            if (last < 0) _stride = strides[d];
            last = d;
        }
        if (collapses || Count == 0) return;
        var table = new long[Count];
        var rank = shape.Length;
        Span<int> idx = stackalloc int[rank];
        long off = 0;
        for (long p = 0; p < Count; p++)
        {
            table[p] = off;
            for (var d = rank - 1; d >= 0; d--)
            {
                if (++idx[d] < shape[d])
                {
                    off += strides[d];
                    break;
                }
                off -= strides[d] * (shape[d] - 1);
                idx[d] = 0;
            }
        }
        _table = table;
    }

    public long Count { get; }

    /// <summary>True when position i is at offset i (a contiguous run).</summary>
    public bool IsUnit => _table is null && _stride == 1;

    public long this[long i] => _table is null ? i * _stride : _table[i];
}

public sealed unsafe partial class CpuBackend
{
    /// <summary>Units of work for a scatter: outer positions times chunks of the inner positions, enough to keep
    /// every core busy when outer is small.</summary>
    private static (long Units, long Chunk) ScatterUnits(long outer, long inner, long k)
    {
        if (outer * inner * Math.Max(k, 1) < CpuLoops.ParallelThreshold || outer >= 4L * Environment.ProcessorCount)
            return (outer, Math.Max(inner, 1));
        var chunks = Math.Min(inner, Math.Max(1, 4L * Environment.ProcessorCount / Math.Max(outer, 1)));
        var chunk = (inner + chunks - 1) / chunks;
        return (outer * ((inner + chunk - 1) / chunk), chunk);
    }

    private static ArgumentOutOfRangeException IndexOutOfRange(string op, long value, long position, ReadOnlySpan<int> indexShape, int dim, int size) =>
        new("index",
            $"{op}: index {value} (element {position} of the index tensor{ShapeUtil.Format(indexShape)}) is out of range for dim {dim} of size {size}; " +
            $"indices must lie in [0, {size}) (negative indices are not supported).");

    private static void CheckIndexDType(string op, Tensor index)
    {
        if (index.DType != DType.Int64)
            throw new ArgumentException($"{op}: index must be int64, got {index.DType.Name()}{ShapeUtil.Format(index.Shape)}; convert with To(DType.Int64).");
    }

    // ---- index_select / index_add ----

    public void IndexSelect(Tensor x, int dim, Tensor index, Tensor y)
    {
        CheckIndexDType("index_select", index);
        var k = index.Numel;
        var n = x._shape[dim];
        var pi = index.Data<long>();
        var si = index.Rank == 0 ? 0 : index._strides[0];
        for (long j = 0; j < k; j++)
        {
            var v = pi[j * si];
            if ((ulong)v >= (ulong)n) throw IndexOutOfRange("index_select", v, j, index.Shape, dim, n);
        }
        if (y.Numel == 0) return;
        switch (x.DType.ElementSize())
        {
            case 1: IndexSelectCore<byte>(x, dim, pi, si, k, y); break;
            case 4: IndexSelectCore<int>(x, dim, pi, si, k, y); break;
            case 8: IndexSelectCore<long>(x, dim, pi, si, k, y); break;
            default: throw Unsupported("index_select", x.DType);
        }
    }

    private static void IndexSelectCore<T>(Tensor x, int dim, long* pi, long si, long k, Tensor y) where T : unmanaged
    {
        var outer = new StridedOffsets(x.Shape[..dim], x.Strides[..dim]);
        var inner = new StridedOffsets(x.Shape[(dim + 1)..], x.Strides[(dim + 1)..]);
        var count = inner.Count;
        var sd = x._strides[dim];
        var px = (T*)x.DataPointer;
        var py = (T*)y.DataPointer;
        CpuLoops.For(outer.Count * k, count, u =>
        {
            var (o, j) = (u / k, u % k);
            var src = px + outer[o] + pi[j * si] * sd;
            var dst = py + u * count;
            if (inner.IsUnit) new ReadOnlySpan<T>(src, checked((int)count)).CopyTo(new Span<T>(dst, (int)count));
            else
                for (long i = 0; i < count; i++) dst[i] = src[inner[i]];
        });
    }

    public void IndexAdd(Tensor dst, int dim, Tensor index, Tensor src)
    {
        CheckIndexDType("index_add", index);
        var k = index.Numel;
        var n = dst._shape[dim];
        var pi = index.Data<long>();
        var si = index.Rank == 0 ? 0 : index._strides[0];
        for (long j = 0; j < k; j++)
        {
            var v = pi[j * si];
            if ((ulong)v >= (ulong)n) throw IndexOutOfRange("index_add", v, j, index.Shape, dim, n);
        }
        if (src.Numel == 0) return;
        switch (dst.DType)
        {
            case DType.Float32: IndexAddCore<float>(dst, dim, pi, si, k, src); break;
            case DType.Int32: IndexAddCore<int>(dst, dim, pi, si, k, src); break;
            case DType.Int64: IndexAddCore<long>(dst, dim, pi, si, k, src); break;
            default: throw Unsupported("index_add", dst.DType);
        }
    }

    private static void IndexAddCore<T>(Tensor dst, int dim, long* pi, long si, long k, Tensor src) where T : unmanaged, INumber<T>
    {
        var outer = new StridedOffsets(src.Shape[..dim], src.Strides[..dim]);
        var inner = new StridedOffsets(src.Shape[(dim + 1)..], src.Strides[(dim + 1)..]);
        var count = inner.Count;
        long n = dst._shape[dim];
        var sd = src._strides[dim];
        var pd = (T*)dst.DataPointer;
        var ps = (T*)src.DataPointer;
        var (units, chunk) = ScatterUnits(outer.Count, count, k);
        var perOuter = (count + chunk - 1) / chunk;
        CpuLoops.For(units, chunk * k, u =>
        {
            var o = u / perOuter;
            var i0 = u % perOuter * chunk;
            var len = Math.Min(chunk, count - i0);
            for (long j = 0; j < k; j++)
            {
                var d = pd + (o * n + pi[j * si]) * count + i0;
                var s = ps + outer[o] + j * sd;
                AddRun(d, s, inner, i0, len);
            }
        });
    }

    /// <summary>d[i] += s[inner[i0 + i]] for i in [0, len).</summary>
    private static void AddRun<T>(T* d, T* s, in StridedOffsets inner, long i0, long len) where T : unmanaged, INumber<T>
    {
        if (inner.IsUnit && typeof(T) == typeof(float))
        {
            var ds = new Span<float>(d, checked((int)len));
            TensorPrimitives.Add(ds, new ReadOnlySpan<float>((float*)s + i0, (int)len), ds);
            return;
        }
        for (long i = 0; i < len; i++) d[i] += s[inner[i0 + i]];
    }

    // ---- gather / scatter_add ----

    /// <summary>Checks every index against size and returns the (outer, k, inner) offsets of index.</summary>
    private static (StridedOffsets Outer, StridedOffsets Inner) CheckGatherIndex(string op, Tensor index, int dim, int size)
    {
        CheckIndexDType(op, index);
        var outer = new StridedOffsets(index.Shape[..dim], index.Strides[..dim]);
        var inner = new StridedOffsets(index.Shape[(dim + 1)..], index.Strides[(dim + 1)..]);
        var k = index._shape[dim];
        var sd = index._strides[dim];
        var pi = index.Data<long>();
        for (long o = 0; o < outer.Count; o++)
            for (long j = 0; j < k; j++)
                for (long i = 0; i < inner.Count; i++)
                {
                    var v = pi[outer[o] + j * sd + inner[i]];
                    if ((ulong)v >= (ulong)size)
                        throw IndexOutOfRange(op, v, (o * k + j) * inner.Count + i, index.Shape, dim, size);
                }
        return (outer, inner);
    }

    public void Gather(Tensor x, int dim, Tensor index, Tensor y)
    {
        var (io, ii) = CheckGatherIndex("gather", index, dim, x._shape[dim]);
        if (y.Numel == 0) return;
        switch (x.DType.ElementSize())
        {
            case 1: GatherCore<byte>(x, dim, index, io, ii, y); break;
            case 4: GatherCore<int>(x, dim, index, io, ii, y); break;
            case 8: GatherCore<long>(x, dim, index, io, ii, y); break;
            default: throw Unsupported("gather", x.DType);
        }
    }

    private static void GatherCore<T>(Tensor x, int dim, Tensor index, StridedOffsets io, StridedOffsets ii, Tensor y) where T : unmanaged
    {
        var ishape = index.Shape;
        var xo = new StridedOffsets(ishape[..dim], x.Strides[..dim]);
        var xi = new StridedOffsets(ishape[(dim + 1)..], x.Strides[(dim + 1)..]);
        long k = ishape[dim];
        var count = ii.Count;
        var (xs, isd) = (x._strides[dim], index._strides[dim]);
        var px = (T*)x.DataPointer;
        var pi = index.Data<long>();
        var py = (T*)y.DataPointer;
        CpuLoops.For(io.Count * k, count, u =>
        {
            var (o, j) = (u / k, u % k);
            var src = px + xo[o];
            var idx = pi + io[o] + j * isd;
            var dst = py + u * count;
            for (long i = 0; i < count; i++) dst[i] = src[idx[ii[i]] * xs + xi[i]];
        });
    }

    public void ScatterAdd(Tensor dst, int dim, Tensor index, Tensor src)
    {
        var (io, ii) = CheckGatherIndex("scatter_add", index, dim, dst._shape[dim]);
        if (index.Numel == 0) return;
        switch (dst.DType)
        {
            case DType.Float32: ScatterAddCore<float>(dst, dim, index, io, ii, src); break;
            case DType.Int32: ScatterAddCore<int>(dst, dim, index, io, ii, src); break;
            case DType.Int64: ScatterAddCore<long>(dst, dim, index, io, ii, src); break;
            default: throw Unsupported("scatter_add", dst.DType);
        }
    }

    private static void ScatterAddCore<T>(Tensor dst, int dim, Tensor index, StridedOffsets io, StridedOffsets ii, Tensor src) where T : unmanaged, INumber<T>
    {
        var ishape = index.Shape;
        var dO = new StridedOffsets(ishape[..dim], dst.Strides[..dim]);
        var dI = new StridedOffsets(ishape[(dim + 1)..], dst.Strides[(dim + 1)..]);
        var sO = new StridedOffsets(ishape[..dim], src.Strides[..dim]);
        var sI = new StridedOffsets(ishape[(dim + 1)..], src.Strides[(dim + 1)..]);
        long k = ishape[dim];
        var count = ii.Count;
        var (dsd, ssd, isd) = (dst._strides[dim], src._strides[dim], index._strides[dim]);
        var pd = (T*)dst.DataPointer;
        var ps = (T*)src.DataPointer;
        var pi = index.Data<long>();
        var (units, chunk) = ScatterUnits(io.Count, count, k);
        var perOuter = (count + chunk - 1) / chunk;
        CpuLoops.For(units, chunk * k, u =>
        {
            var o = u / perOuter;
            var i0 = u % perOuter * chunk;
            var i1 = Math.Min(count, i0 + chunk);
            var d = pd + dO[o];
            for (long j = 0; j < k; j++)
            {
                var s = ps + sO[o] + j * ssd;
                var idx = pi + io[o] + j * isd;
                for (var i = i0; i < i1; i++) d[idx[ii[i]] * dsd + dI[i]] += s[sI[i]];
            }
        });
    }

    // ---- nonzero ----

    /// <summary>Fixed split of [0, numel) into pieces for counting and filling, so both passes see the same pieces.</summary>
    private static int NonzeroPieces(long numel) => (int)Math.Clamp(numel / CpuLoops.ParallelThreshold, 1, 4L * Environment.ProcessorCount);

    /// <summary>Nonzero elements among row-major positions [from, to); when coords is not null, also writes their
    /// coordinates there (rank per element). NaN != 0 holds, so NaN counts as nonzero.</summary>
    private static long NonzeroRange<T>(T* p, in StridedOffsets at, long from, long to, ReadOnlySpan<int> shape, long* coords)
        where T : unmanaged, INumber<T>
    {
        long c = 0;
        if (coords == null)
        {
            if (at.IsUnit)
                for (var q = from; q < to; q++) c += p[q] != T.Zero ? 1 : 0;
            else
                for (var q = from; q < to; q++) c += p[at[q]] != T.Zero ? 1 : 0;
            return c;
        }
        var rank = shape.Length;
        Span<long> idx = stackalloc long[Math.Max(rank, 1)];
        var rem = from;
        for (var d = rank - 1; d >= 0; d--)
        {
            idx[d] = rem % shape[d];
            rem /= shape[d];
        }
        for (var q = from; q < to; q++)
        {
            if (p[at[q]] != T.Zero)
            {
                for (var d = 0; d < rank; d++) coords[d] = idx[d];
                coords += rank;
                c++;
            }
            for (var d = rank - 1; d >= 0; d--)
            {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
        return c;
    }

    private static long NonzeroRange(Tensor x, in StridedOffsets at, long from, long to, long* coords) => x.DType switch
    {
        DType.Float32 => NonzeroRange((float*)x.DataPointer, at, from, to, x.Shape, coords),
        DType.Int32 => NonzeroRange((int*)x.DataPointer, at, from, to, x.Shape, coords),
        DType.Int64 => NonzeroRange((long*)x.DataPointer, at, from, to, x.Shape, coords),
        DType.UInt8 => NonzeroRange((byte*)x.DataPointer, at, from, to, x.Shape, coords),
        _ => throw Unsupported("nonzero", x.DType),
    };

    private static long[] PieceCounts(Tensor x, StridedOffsets at, int pieces)
    {
        var counts = new long[pieces];
        var numel = at.Count;
        if (pieces == 1) counts[0] = NonzeroRange(x, at, 0, numel, null);
        else Parallel.For(0, pieces, c => counts[c] = NonzeroRange(x, at, numel * c / pieces, numel * (c + 1) / pieces, null));
        return counts;
    }

    public long CountNonzero(Tensor x)
    {
        if (x.DType is not (DType.Float32 or DType.Int32 or DType.Int64 or DType.UInt8)) throw Unsupported("nonzero", x.DType);
        var at = new StridedOffsets(x.Shape, x.Strides);
        if (at.Count == 0) return 0;
        return PieceCounts(x, at, NonzeroPieces(at.Count)).Sum();
    }

    public void Nonzero(Tensor x, Tensor coords)
    {
        var at = new StridedOffsets(x.Shape, x.Strides);
        var numel = at.Count;
        if (numel == 0) return;
        var pieces = NonzeroPieces(numel);
        var counts = PieceCounts(x, at, pieces);
        var starts = new long[pieces];
        long total = 0;
        for (var c = 0; c < pieces; c++)
        {
            starts[c] = total;
            total += counts[c];
        }
        if (total != coords._shape[0])
            throw new InvalidOperationException($"nonzero: the output has {coords._shape[0]} rows but the input has {total} nonzero elements; it changed between the count and the fill.");
        if (coords.Numel == 0) return; // no nonzero elements, or rank 0 (no coordinates to write)
        var pc = coords.Data<long>();
        var rank = x.Rank;
        if (pieces == 1) NonzeroRange(x, at, 0, numel, pc);
        else Parallel.For(0, pieces, c => NonzeroRange(x, at, numel * c / pieces, numel * (c + 1) / pieces, pc + starts[c] * rank));
    }
}
