// Integer indexing on the GPU: index_select, index_add, gather, scatter_add and nonzero, the CUDA side of
// IBackend.Indexing.cs.
//
// Formulas (p a position of the work shape, p[d ← v] that position with coordinate d replaced by v):
//   index_select  y[p] = x[p[dim ← index[p_dim]]]             work shape = y's (x's with k at dim)
//   index_add     dst[p[dim ← index[p_dim]]] += src[p]        work shape = src's
//   gather        y[p] = x[p[dim ← index[p]]]                 work shape = index's
//   scatter_add   dst[p[dim ← index[p]]] += src[p]            work shape = index's
//   nonzero       the row-major coordinates of every x[p] != 0 (NaN counts), in row-major order
// Every index is checked against dim_size; one outside [0, dim_size) is reported through the error record
// (backend.cuh) and skipped, and the host raises the error, naming op, value and position, at its next
// wait on the stream. The adds are atomic (float, int32 and int64), so repeated indices accumulate in an
// unspecified order: float sums may differ from the CPU's in the last bits.
//
// Layout: up to ENGINE_MAX_DIMS dimensions; shape is the work shape, and out / src / index strides are
// element strides of each tensor at the work shape's positions (index_select and index_add: the index is
// 1-D and only index_strides[dim] is used). Outputs written here are dense (y), or dense destinations.
// nonzero: x strided; counts are taken per block of a contiguous range of row-major positions, scanned
// by one block into offsets, and each block then writes its coordinates at its offset.
// Launch: index kernels 1-D grid-stride over the work count. nonzero_count_kernel and nonzero_write_kernel
// one block per range (blockDim.x a multiple of 32, at most 1024), nonzero_scan_kernel one block of 1024.
// (NVRTC 11.8 with -lineinfo crashes compiling a kernel whose whole body sits on its definition's line for
// sm_90, so every kernel here has its body on lines of its own.)
// Synchronization: none inside; the output size of nonzero depends on the data, so the host reads the
// count back (IBackend.CountNonzero) before it allocates the coordinates.
#include "backend.cuh"

struct index_args {
    unsigned long long out;
    unsigned long long src;
    unsigned long long index;      // const long long*
    unsigned long long errors;     // engine_error*
    long long count;               // work elements
    long long dim_size;            // size of dim in the tensor the index addresses
    int rank;
    int dim;
    int dtype;
    int error_op;
    long long shape[ENGINE_MAX_DIMS];
    long long out_strides[ENGINE_MAX_DIMS];
    long long src_strides[ENGINE_MAX_DIMS];
    long long index_strides[ENGINE_MAX_DIMS];
};

static_assert(sizeof(index_args) == 320, "index_args must match the host layout");

struct nonzero_args {
    unsigned long long x;
    unsigned long long block_counts;   // long long* (blocks)
    unsigned long long block_offsets;  // long long* (blocks)
    unsigned long long total;          // long long* (1)
    unsigned long long coords;         // long long* (rows, rank)
    unsigned long long errors;         // engine_error*
    long long count;                   // elements of x
    long long chunk;                   // positions per block
    long long rows;                    // rows of coords (the expected total), write kernel only
    int rank;
    int dtype;
    int blocks;
    int error_op;
    long long shape[ENGINE_MAX_DIMS];
    long long strides[ENGINE_MAX_DIMS];
};

static_assert(sizeof(nonzero_args) == 216, "nonzero_args must match the host layout");

// Resolves the coordinates of work position i: offsets of out and src, the coordinate along dim, and the
// index element's offset.
struct index_position {
    long long out, src, along, index;
};

__device__ __forceinline__ index_position locate(const index_args& a, long long i)
{
    index_position p = {0, 0, 0, 0};
    for (int d = a.rank - 1; d >= 0; --d) {
        const long long size = a.shape[d];
        const long long q = i / size;
        const long long c = i - q * size;
        i = q;
        if (d == a.dim) p.along = c;
        else {
            p.out += c * a.out_strides[d];
            p.src += c * a.src_strides[d];
        }
        p.index += c * a.index_strides[d];
    }
    return p;
}

__device__ __forceinline__ bool checked_index(const index_args& a, long long value, long long position)
{
    if (value >= 0 && value < a.dim_size) return true;
    report_error(reinterpret_cast<engine_error*>(a.errors), a.error_op, 2, value, position, a.dim_size, a.dim);
    return false;
}

__device__ __forceinline__ void atomic_add_element(void* base, long long at, const void* src, long long from, int dtype)
{
    switch (dtype) {
    case ENGINE_DT_FLOAT32: atomicAdd(static_cast<float*>(base) + at, static_cast<const float*>(src)[from]); break;
    case ENGINE_DT_INT32: atomicAdd(static_cast<int*>(base) + at, static_cast<const int*>(src)[from]); break;
    default:
        // two's complement: unsigned addition gives the signed sum
        atomicAdd(reinterpret_cast<unsigned long long*>(base) + at,
                  (unsigned long long)static_cast<const long long*>(src)[from]);
        break;
    }
}

// index_select and gather read index[p_dim] (1-D index, stride index_strides[dim]) or index[p] respectively;
// `per_element` selects which.
__device__ __forceinline__ void select_like(const index_args& a, bool per_element)
{
    const long long* index = reinterpret_cast<const long long*>(a.index);
    const int size = dtype_size(a.dtype);
    for (long long i = grid_first_index(); i < a.count; i += grid_stride()) {
        const index_position p = locate(a, i);
        const long long at = per_element ? p.index : p.along * a.index_strides[a.dim];
        const long long v = index[at];
        if (!checked_index(a, v, per_element ? i : p.along)) continue;
        copy_element(reinterpret_cast<void*>(a.out), p.out + p.along * a.out_strides[a.dim],
                     reinterpret_cast<const void*>(a.src), p.src + v * a.src_strides[a.dim], size);
    }
}

__device__ __forceinline__ void add_like(const index_args& a, bool per_element)
{
    const long long* index = reinterpret_cast<const long long*>(a.index);
    for (long long i = grid_first_index(); i < a.count; i += grid_stride()) {
        const index_position p = locate(a, i);
        const long long at = per_element ? p.index : p.along * a.index_strides[a.dim];
        const long long v = index[at];
        if (!checked_index(a, v, per_element ? i : p.along)) continue;
        atomic_add_element(reinterpret_cast<void*>(a.out), p.out + v * a.out_strides[a.dim],
                           reinterpret_cast<const void*>(a.src), p.src + p.along * a.src_strides[a.dim], a.dtype);
    }
}

// out = y (dense at the work shape), src = x: y[p] = x[p[dim <- index[p_dim]]].
extern "C" __global__ void index_select_kernel(const index_args a)
{
    select_like(a, false);
}

// out = dst, src = src (work shape = src's).
extern "C" __global__ void index_add_kernel(const index_args a)
{
    add_like(a, false);
}

// out = y (dense at the index shape), src = x.
extern "C" __global__ void gather_kernel(const index_args a)
{
    select_like(a, true);
}

// out = dst, src = src, work shape = index's.
extern "C" __global__ void scatter_add_kernel(const index_args a)
{
    add_like(a, true);
}

__device__ __forceinline__ bool is_nonzero(const nonzero_args& a, long long i)
{
    const long long at = strided_offset(i, a.rank, a.shape, a.strides);
    switch (a.dtype) {
    case ENGINE_DT_FLOAT32: return reinterpret_cast<const float*>(a.x)[at] != 0.0f;  // NaN != 0 holds
    case ENGINE_DT_INT32: return reinterpret_cast<const int*>(a.x)[at] != 0;
    case ENGINE_DT_INT64: return reinterpret_cast<const long long*>(a.x)[at] != 0;
    default: return reinterpret_cast<const unsigned char*>(a.x)[at] != 0;
    }
}

extern "C" __global__ void nonzero_count_kernel(const nonzero_args a)
{
    __shared__ long long scratch[32];
    long long* counts = reinterpret_cast<long long*>(a.block_counts);
    for (long long b = blockIdx.x; b < a.blocks; b += gridDim.x) {
        const long long from = b * a.chunk;
        const long long to = min(a.count, from + a.chunk);
        long long c = 0;
        for (long long i = from + threadIdx.x; i < to; i += blockDim.x) c += is_nonzero(a, i) ? 1 : 0;
        c = block_sum(c, scratch);
        if (threadIdx.x == 0) counts[b] = c;
    }
}

// One block: exclusive scan of the block counts into offsets, the grand total into *total.
extern "C" __global__ void nonzero_scan_kernel(const nonzero_args a)
{
    __shared__ long long scratch[32];
    const long long* counts = reinterpret_cast<const long long*>(a.block_counts);
    long long* offsets = reinterpret_cast<long long*>(a.block_offsets);
    long long running = 0;
    for (long long base = 0; base < a.blocks; base += blockDim.x) {
        const long long b = base + threadIdx.x;
        const long long c = b < a.blocks ? counts[b] : 0;
        long long tile_total;
        const long long before = block_exclusive_scan(c, scratch, tile_total);
        if (b < a.blocks) offsets[b] = running + before;
        running += tile_total;
    }
    if (threadIdx.x == 0) *reinterpret_cast<long long*>(a.total) = running;
}

extern "C" __global__ void nonzero_write_kernel(const nonzero_args a)
{
    __shared__ long long scratch[32];
    const long long* offsets = reinterpret_cast<const long long*>(a.block_offsets);
    long long* coords = reinterpret_cast<long long*>(a.coords);
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        const long long total = *reinterpret_cast<const long long*>(a.total);
        if (total != a.rows) report_error(reinterpret_cast<engine_error*>(a.errors), a.error_op, 4, total, 0, a.rows);
    }
    for (long long b = blockIdx.x; b < a.blocks; b += gridDim.x) {
        const long long from = b * a.chunk;
        const long long to = min(a.count, from + a.chunk);
        long long next = offsets[b];
        for (long long base = from; base < to; base += blockDim.x) {
            const long long i = base + threadIdx.x;
            const long long flag = (i < to && is_nonzero(a, i)) ? 1 : 0;
            long long tile_total;
            const long long before = block_exclusive_scan(flag, scratch, tile_total);
            const long long row = next + before;
            if (flag && row < a.rows) {
                long long c[ENGINE_MAX_DIMS];
                strided_offset(i, a.rank, a.shape, a.strides, c);
                for (int d = 0; d < a.rank; ++d) coords[row * a.rank + d] = c[d];
            }
            next += tile_total;
        }
    }
}
