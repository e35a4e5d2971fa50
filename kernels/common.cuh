// Device helpers shared by the kernel families: the strided index map that lets one kernel walk
// tensors of any layout (views, transposes, broadcasts), the grid-stride loop bounds, and warp/block
// reductions and scans with NaN-propagating min/max (used by the detection and long-tail kernels).
// Compiled by NVRTC only; it includes no toolkit header, so it uses built-in types alone.
//
// Layout contract with the host (src/Engine.Cuda/Kernels/StridedIndexMap.cs mirrors it, 272 bytes):
//   count                 number of output elements, the product of sizes
//   rank                  0..ENGINE_MAX_DIMS dimensions after the host merged the mergeable ones
//   sizes[d]              output extent of dimension d, row-major (d = rank-1 varies fastest)
//   strides[k][d]         element stride of input operand k along d; 0 where operand k is broadcast
// Outputs are always dense row-major over sizes, so the output offset of element i is i itself.
#pragma once

#define ENGINE_MAX_DIMS 8
#define ENGINE_MAX_OPERANDS 3

struct strided_index_map {
    long long count;
    int rank;
    long long sizes[ENGINE_MAX_DIMS];
    long long strides[ENGINE_MAX_OPERANDS][ENGINE_MAX_DIMS];
};

static_assert(sizeof(strided_index_map) == 272, "strided_index_map must match the host layout");
static_assert(alignof(strided_index_map) == 8, "strided_index_map must match the host layout");

// Element offsets of the first N input operands for output element i. Dimension 0 needs no
// division because i < count guarantees the remaining quotient is already below sizes[0];
// after the host merged contiguous dimensions a dense tensor has rank 1 and costs no division.
template <int N>
__device__ __forceinline__ void operand_offsets(const strided_index_map& map, long long i, long long (&offsets)[N])
{
    for (int k = 0; k < N; ++k) offsets[k] = 0;
    long long rest = i;
    for (int d = map.rank - 1; d >= 1; --d) {
        const long long size = map.sizes[d];
        const long long q = rest / size;
        const long long index = rest - q * size;
        rest = q;
        for (int k = 0; k < N; ++k) offsets[k] += index * map.strides[k][d];
    }
    if (map.rank >= 1)
        for (int k = 0; k < N; ++k) offsets[k] += rest * map.strides[k][0];
}

__device__ __forceinline__ long long grid_first_index()
{
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ long long grid_stride()
{
    return (long long)gridDim.x * blockDim.x;
}

// Whether a grid-stride walk over `count` elements can index in 32 bits: the count and the grid's stride each fit in
// 31 bits, so i + stride stays below 2^32 and an unsigned loop cannot wrap.
__device__ __forceinline__ bool grid_walk_fits_32(long long count)
{
    return count <= 0x7fffffffLL && grid_stride() <= 0x7fffffffLL;
}

// The ReLU every kernel applies (relu_forward_kernel, the fused add and batch-norm ReLUs): NaN kept, −0 becomes +0.
__device__ __forceinline__ float relu_value(float v)
{
    return (v > 0.0f || v != v) ? v : 0.0f;
}

// Whether a grid-stride walk over the map can do its index arithmetic in 32 bits: the element count,
// every offset of the first N operands (Σ (size - 1)·|stride|) and the grid's stride each fit in 31 bits.
// The division by each dimension's size is then a 32-bit one (the GPU has no divide instruction; the 64-bit
// sequence is several times longer): a per-channel multiply over a res2 map of R50 (rank 3 after merging) went
// from 205 to 166 us on an H100 (2 TB/s, two thirds of the copy bandwidth).
template <int N>
__device__ __forceinline__ bool index_map_fits_32(const strided_index_map& map)
{
    const long long limit = 0x7fffffffLL;
    if (!grid_walk_fits_32(map.count)) return false;
    for (int k = 0; k < N; ++k) {
        long long span = 0;
        for (int d = 0; d < map.rank; ++d) {
            const long long stride = map.strides[k][d];
            span += (map.sizes[d] - 1) * (stride < 0 ? -stride : stride);
        }
        if (span > limit) return false;
    }
    return true;
}

// operand_offsets in 32-bit arithmetic, for maps that index_map_fits_32 accepted.
template <int N>
__device__ __forceinline__ void operand_offsets_32(const strided_index_map& map, unsigned int i, long long (&offsets)[N])
{
    int offsets32[N];
    for (int k = 0; k < N; ++k) offsets32[k] = 0;
    unsigned int rest = i;
    for (int d = map.rank - 1; d >= 1; --d) {
        const unsigned int size = (unsigned int)map.sizes[d];
        const unsigned int q = rest / size;
        const int index = (int)(rest - q * size);
        rest = q;
        for (int k = 0; k < N; ++k) offsets32[k] += index * (int)map.strides[k][d];
    }
    if (map.rank >= 1)
        for (int k = 0; k < N; ++k) offsets32[k] += (int)rest * (int)map.strides[k][0];
    for (int k = 0; k < N; ++k) offsets[k] = offsets32[k];
}

// The grid-stride loop over map.count that every strided kernel runs: body(i, offsets) for each element i
// this thread owns, with the element offsets of the first N operands; 32-bit arithmetic where it fits.
template <int N, typename Body>
__device__ __forceinline__ void for_each_element(const strided_index_map& map, Body body)
{
    long long offsets[N];
    if (index_map_fits_32<N>(map)) {
        const unsigned int count = (unsigned int)map.count, stride = (unsigned int)grid_stride();
        for (unsigned int i = (unsigned int)grid_first_index(); i < count; i += stride) {
            operand_offsets_32(map, i, offsets);
            body((long long)i, offsets);
        }
        return;
    }
    for (long long i = grid_first_index(); i < map.count; i += grid_stride()) {
        operand_offsets(map, i, offsets);
        body(i, offsets);
    }
}

// ---- reductions and scans shared by the detection and long-tail kernels -------------------------
// Every helper below needs all 32 lanes of the calling warp (full mask); the block helpers need every
// thread of the block, blockDim.x a multiple of 32 (at most 1024) and a __shared__ scratch of 32 values.

#define ENGINE_FULL_MASK 0xffffffffu

template <typename T>
__device__ __forceinline__ T warp_sum(T value)
{
    for (int d = 16; d > 0; d >>= 1) value += __shfl_xor_sync(ENGINE_FULL_MASK, value, d);
    return value;
}

template <typename T>
__device__ __forceinline__ T warp_max(T value)
{
    for (int d = 16; d > 0; d >>= 1) {
        const T other = __shfl_xor_sync(ENGINE_FULL_MASK, value, d);
        value = other > value ? other : value;
    }
    return value;
}

// Sum over the block, returned to every thread. scratch is reusable as soon as the call returns.
template <typename T>
__device__ T block_sum(T value, T* scratch)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    value = warp_sum(value);
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    T total = lane < warps ? scratch[lane] : T(0);
    total = warp_sum(total);
    __syncthreads();
    return total;
}

// Maximum over the block, returned to every thread; lowest is the identity (e.g. -infinity).
template <typename T>
__device__ T block_max(T value, T lowest, T* scratch)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    value = warp_max(value);
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    T best = lane < warps ? scratch[lane] : lowest;
    best = warp_max(best);
    __syncthreads();
    return best;
}

// Exclusive prefix sum of one value per thread in thread order; total receives the block's sum.
template <typename T>
__device__ T block_exclusive_scan(T value, T* scratch, T& total)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    T inclusive = value;
    for (int d = 1; d < 32; d <<= 1) {
        const T before = __shfl_up_sync(ENGINE_FULL_MASK, inclusive, d);
        if (lane >= d) inclusive += before;
    }
    if (lane == 31) scratch[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
        T sums = lane < warps ? scratch[lane] : T(0);
        for (int d = 1; d < 32; d <<= 1) {
            const T before = __shfl_up_sync(ENGINE_FULL_MASK, sums, d);
            if (lane >= d) sums += before;
        }
        scratch[lane] = sums;
    }
    __syncthreads();
    const T offset = warp > 0 ? scratch[warp - 1] : T(0);
    total = scratch[warps - 1];
    __syncthreads();
    return offset + inclusive - value;
}

// IEEE maximum/minimum that return NaN when either operand is NaN (as .NET's MathF.Max/Min do), where
// fmaxf/fminf would return the other operand.
__device__ __forceinline__ float nan_max(float a, float b) { return a != a ? a : (b != b ? b : fmaxf(a, b)); }
__device__ __forceinline__ float nan_min(float a, float b) { return a != a ? a : (b != b ? b : fminf(a, b)); }

__device__ __forceinline__ float quiet_nan() { return __int_as_float(0x7fffffff); }
