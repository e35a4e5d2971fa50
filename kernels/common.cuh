// Device helpers shared by the kernel families: the strided index map that lets one kernel walk
// tensors of any layout (views, transposes, broadcasts) and the grid-stride loop bounds.
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
