// Indexing on the GPU (kernels/indexing.cu): index_select, index_add, gather and scatter_add as one thread per
// work element, with every index checked on the device (DeviceErrorLog reports a bad one at the next host
// synchronization), and nonzero as count, scan and write passes. CountNonzero is the one host
// synchronization of this family: the count sizes nonzero's output.
using Engine.Cuda.Kernels;

namespace Engine.Cuda.Backend;

public sealed unsafe partial class CudaBackend
{
    private static void CheckIndexDType(string op, Tensor index)
    {
        if (index.DType != DType.Int64)
            throw new ArgumentException($"{op}: index must be int64, got {index.DType.Name()}{ShapeUtil.Format(index.Shape)}; convert with To(DType.Int64).");
    }

    /// <summary>The argument struct of one index kernel: work shape and the strides of out, src and index at it.</summary>
    private IndexArgs IndexLaunch(string op, DeviceErrorLog.Op errorOp, ReadOnlySpan<int> work, int dim, long dimSize, DType dtype,
                                  Tensor output, ReadOnlySpan<long> outStrides, Tensor source, ReadOnlySpan<long> srcStrides,
                                  Tensor index, ReadOnlySpan<long> indexStrides)
    {
        if (work.Length > StridedIndexMap.MaxDims) throw TooManyDims(op, work.Length);
        var args = new IndexArgs
        {
            Out = Ptr(output), Src = Ptr(source), Index = Ptr(index), Errors = _errors.DevicePointer,
            Count = ShapeUtil.Numel(work), DimSize = dimSize, Rank = work.Length, Dim = dim, DType = Code(dtype), ErrorOp = (int)errorOp,
        };
        for (var d = 0; d < work.Length; d++)
        {
            args.Shape[d] = work[d];
            args.OutStrides[d] = outStrides[d];
            args.SrcStrides[d] = srcStrides[d];
            args.IndexStrides[d] = indexStrides[d];
        }
        return args;
    }

    private void LaunchIndex(string kernel, IndexArgs args)
    {
        if (args.Count == 0) return;
        Module("indexing.cu").Launch(kernel, Resident((args.Count + BlockThreads - 1) / BlockThreads), Stream, args);
    }

    /// <summary>Strides of a 1-D index placed at dim of a rank-r work shape (zero elsewhere).</summary>
    private static long[] IndexAlong(Tensor index, int rank, int dim)
    {
        var strides = new long[rank];
        strides[dim] = index.Rank == 0 ? 0 : index.Strides[0];
        return strides;
    }

    public void IndexSelect(Tensor x, int dim, Tensor index, Tensor y)
    {
        CheckIndexDType("index_select", index);
        Require("index_select", "x", x);
        Require("index_select", "index", index);
        Require("index_select", "y", y);
        LaunchIndex("index_select_kernel", IndexLaunch("index_select", DeviceErrorLog.Op.IndexSelect, y.Shape, dim, x.Size(dim), x.DType,
            y, y.Strides, x, x.Strides, index, IndexAlong(index, y.Rank, dim)));
    }

    public void IndexAdd(Tensor dst, int dim, Tensor index, Tensor src)
    {
        CheckIndexDType("index_add", index);
        if (dst.DType is not (DType.Float32 or DType.Int32 or DType.Int64)) throw Unsupported("index_add", dst.DType);
        Require("index_add", "dst", dst);
        Require("index_add", "index", index);
        Require("index_add", "src", src);
        LaunchIndex("index_add_kernel", IndexLaunch("index_add", DeviceErrorLog.Op.IndexAdd, src.Shape, dim, dst.Size(dim), dst.DType,
            dst, dst.Strides, src, src.Strides, index, IndexAlong(index, src.Rank, dim)));
    }

    public void Gather(Tensor x, int dim, Tensor index, Tensor y)
    {
        CheckIndexDType("gather", index);
        Require("gather", "x", x);
        Require("gather", "index", index);
        Require("gather", "y", y);
        LaunchIndex("gather_kernel", IndexLaunch("gather", DeviceErrorLog.Op.Gather, index.Shape, dim, x.Size(dim), x.DType,
            y, y.Strides, x, x.Strides, index, index.Strides));
    }

    public void ScatterAdd(Tensor dst, int dim, Tensor index, Tensor src)
    {
        CheckIndexDType("scatter_add", index);
        if (dst.DType is not (DType.Float32 or DType.Int32 or DType.Int64)) throw Unsupported("scatter_add", dst.DType);
        Require("scatter_add", "dst", dst);
        Require("scatter_add", "index", index);
        Require("scatter_add", "src", src);
        LaunchIndex("scatter_add_kernel", IndexLaunch("scatter_add", DeviceErrorLog.Op.ScatterAdd, index.Shape, dim, dst.Size(dim), dst.DType,
            dst, dst.Strides, src, src.Strides, index, index.Strides));
    }

    // ---- nonzero ----

    private const int NonzeroMaxBlocks = 4096;

    /// <summary>Queues the count and scan passes; the caller frees the returned scratch (counts, offsets, total).</summary>
    private (NonzeroArgs Args, ulong Scratch) NonzeroPasses(Tensor x)
    {
        if (x.DType is not (DType.Float32 or DType.Int32 or DType.Int64 or DType.UInt8)) throw Unsupported("nonzero", x.DType);
        Require("nonzero", "x", x);
        if (x.Rank > StridedIndexMap.MaxDims) throw TooManyDims("nonzero", x.Rank);
        var count = x.Numel;
        var blocks = (int)Math.Clamp((count + 4095) / 4096, 1, NonzeroMaxBlocks);
        var chunk = (count + blocks - 1) / blocks;
        var scratch = Memory.Allocate((2L * blocks + 1) * sizeof(long));
        var args = new NonzeroArgs
        {
            X = Ptr(x), BlockCounts = scratch, BlockOffsets = scratch + (ulong)(blocks * sizeof(long)),
            Total = scratch + (ulong)(2 * blocks * sizeof(long)), Errors = _errors.DevicePointer,
            Count = count, Chunk = Math.Max(chunk, 1), Rank = x.Rank, DType = Code(x.DType), Blocks = blocks,
            ErrorOp = (int)DeviceErrorLog.Op.Nonzero,
        };
        for (var d = 0; d < x.Rank; d++)
        {
            args.Shape[d] = x.Shape[d];
            args.Strides[d] = x.Strides[d];
        }
        var set = Module("indexing.cu");
        set.Launch("nonzero_count_kernel", Resident(blocks), Stream, args);
        set.Launch("nonzero_scan_kernel", new LaunchConfig(new Dim3(1), new Dim3(1024)), Stream, args);
        return (args, scratch);
    }

    public long CountNonzero(Tensor x)
    {
        if (x.Numel == 0) return 0;
        var (args, scratch) = NonzeroPasses(x);
        long total;
        // HOST SYNC (data-dependent shape): the number of nonzero elements sizes the output of nonzero.
        _staging.Download(args.Total, &total, sizeof(long));
        Memory.Free(scratch, (2L * args.Blocks + 1) * sizeof(long));
        _errors.ThrowIfSet();
        return total;
    }

    public void Nonzero(Tensor x, Tensor coords)
    {
        Require("nonzero", "coords", coords);
        if (x.Numel == 0) return;
        var (args, scratch) = NonzeroPasses(x);
        args.Coords = Ptr(coords);
        args.Rows = coords.Size(0);
        Module("indexing.cu").Launch("nonzero_write_kernel", Resident(args.Blocks, 1024), Stream, args);
        Memory.Free(scratch, (2L * args.Blocks + 1) * sizeof(long));
    }
}
