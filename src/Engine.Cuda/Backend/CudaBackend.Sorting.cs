// Sort and top-k on the GPU (kernels/sort.cu): keys made order-preserving and paired with their positions,
// a bitonic network per line (in shared memory up to 2048 padded elements; longer lines in shared-memory
// tiles of 2048, with a launch per network step only for the steps that cross tiles), then the first n (sort)
// or k (top-k) written out. No host synchronization: scratch comes from the stream-ordered pool and goes back
// to it after the last launch.
using Engine.Cuda.Kernels;

namespace Engine.Cuda.Backend;

public sealed unsafe partial class CudaBackend
{
    private const int SharedSortMax = 2048;

    private static void CheckSortDType(string op, Tensor x)
    {
        if (x.DType is not (DType.Float32 or DType.Int64))
            throw new ArgumentException($"{op}: keys must be float32 or int64, got {x.DType.Name()}{ShapeUtil.Format(x.Shape)}; convert with To(DType.Float32) or To(DType.Int64).");
    }

    public void Sort(Tensor x, int dim, bool descending, Tensor values, Tensor indices)
    {
        CheckSortDType("sort", x);
        SortLines("sort", x, dim, descending, x.Size(dim), values, indices);
    }

    public void TopK(Tensor x, int dim, int k, bool largest, Tensor values, Tensor indices)
    {
        CheckSortDType("topk", x);
        var n = x.Size(dim);
        if ((uint)k > (uint)n)
            throw new ArgumentOutOfRangeException(nameof(k), $"topk: k = {k} is out of range for dim {dim} of size {n} (shape {ShapeUtil.Format(x.Shape)}).");
        SortLines("topk", x, dim, largest, k, values, indices);
    }

    /// <summary>Sorts every line of x along dim and writes the first <paramref name="m"/> of each.</summary>
    private void SortLines(string op, Tensor x, int dim, bool descending, int m, Tensor values, Tensor indices)
    {
        Require(op, "x", x);
        Require(op, "values", values);
        Require(op, "indices", indices);
        if (values.Numel == 0) return;
        var n = x.Size(dim);
        long outer = 1, inner = 1;
        for (var d = 0; d < dim; d++) outer *= x.Size(d);
        for (var d = dim + 1; d < x.Rank; d++) inner *= x.Size(d);
        var lines = outer * inner;
        long padded = 1;
        while (padded < n) padded <<= 1;

        // The kernels read x as dense (outer, n, inner): copy a strided view into pool memory first.
        var element = x.DType.ElementSize();
        var denseBytes = x.IsContiguous ? 0 : x.Numel * element;
        var dense = denseBytes == 0 ? Ptr(x) : Memory.Allocate(denseBytes);
        if (denseBytes != 0)
        {
            var map = ElementwiseLayout.Build(op, Longs(x.Shape), ElementwiseLayout.ContiguousStrides(Longs(x.Shape)), x.Strides.ToArray());
            LaunchTensor("copy_kernel", new TensorArgs { Out = dense, A = Ptr(x), OutDType = Code(x.DType), InDType = Code(x.DType), Map = map });
        }
        var keyBytes = lines * padded * sizeof(ulong);
        var positionBytes = lines * padded * sizeof(int);
        var keys = Memory.Allocate(keyBytes);
        var positions = Memory.Allocate(positionBytes);
        var args = new SortArgs
        {
            X = dense, Values = Ptr(values), Indices = Ptr(indices), Keys = keys, Positions = positions, Lines = lines, N = n,
            Inner = inner, Padded = padded, M = m, IsFloat = x.DType == DType.Float32 ? 1 : 0, Descending = descending ? 1 : 0,
        };
        var set = Module("sort.cu");
        var elements = lines * padded;
        set.Launch("sort_load_kernel", Resident((elements + BlockThreads - 1) / BlockThreads), Stream, args);
        if (padded > 1 && padded <= SharedSortMax)
            set.Launch("sort_shared_kernel", Resident(lines, (int)(padded / 2)), Stream, args);
        else if (padded > 1)
        {
            // tiles of SharedSortMax sorted in shared memory, then each larger stage: its steps that cross tiles
            // over global scratch, the rest inside the tiles again
            var comparators = lines * padded / 2;
            var global = Resident((comparators + BlockThreads - 1) / BlockThreads);
            var tiled = Resident(lines * (padded / SharedSortMax), SharedSortMax / 2);
            (args.Step, args.Stage) = (2, SharedSortMax);
            set.Launch("sort_tile_kernel", tiled, Stream, args);
            for (long stage = 2 * SharedSortMax; stage <= padded; stage <<= 1)
            {
                args.Stage = stage;
                for (var step = stage >> 1; step >= SharedSortMax; step >>= 1)
                {
                    args.Step = step;
                    set.Launch("sort_global_step_kernel", global, Stream, args);
                }
                args.Step = stage;
                set.Launch("sort_tile_kernel", tiled, Stream, args);
            }
        }
        set.Launch("sort_write_kernel", Resident((lines * m + BlockThreads - 1) / BlockThreads), Stream, args);
        Memory.Free(keys, keyBytes);
        Memory.Free(positions, positionBytes);
        if (denseBytes != 0) Memory.Free(dense, denseBytes);
    }
}
