// Stable sort and top-k along one dim of float32 or int64 keys: the CUDA side of IBackend.Sorting.cs.
//
// Order (CpuBackend.Sorting.cs): keys become unsigned integers whose unsigned order is the value order —
// float32: the IEEE bits with the sign bit flipped for positives and all bits flipped for negatives, -0
// folded onto +0, every NaN mapped above +inf; int64: the sign bit flipped — and are complemented for a
// descending sort (or the largest top-k). Each key is paired with its position in the line, and pairs are
// ordered by (key, position): a strict total order, so a bitonic network (not stable by itself) gives
// exactly the stable sort. Top-k is the first k of that sort, as in the CPU backend.
//
// Layout: x dense (outer, n, inner), line (o, i) = x[o, :, i]; scratch keys (unsigned long long) and
// positions (int) (lines, P), P = n rounded up to a power of two, padded with (max key, position ≥ n) so
// padding sorts last; values (x's dtype) and indices (int64) dense (outer, m, inner), m = n or k.
// Launch: sort_load_kernel and sort_write_kernel 1-D grid-stride; P ≤ 2048: sort_shared_kernel, one
// block of P/2 threads per line (grid-stride over lines), the whole network in shared memory (24 KiB);
// larger P: the network in tiles of 2048 (sort_tile_kernel, one block of 1024 threads per tile, grid-stride
// over lines·P/2048 tiles): first every stage up to 2048 inside each tile, then for each larger stage its
// steps of distance ≥ 2048 as sort_global_step_kernel launches (grid-stride over lines·P/2 comparators) and
// its remaining steps (1024 down to 1, which never leave a tile) as one sort_tile_kernel launch. For
// P = 2^18 that is 36 launches instead of one per step (171), and most steps run in shared memory.
// Synchronization: none; the host queues the launches of the network back to back on one stream.
#include "backend.cuh"

struct sort_args {
    unsigned long long x;          // const float* or const long long*
    unsigned long long values;     // out, x's dtype
    unsigned long long indices;    // out, long long*
    unsigned long long keys;       // scratch, unsigned long long* (lines, P)
    unsigned long long positions;  // scratch, int* (lines, P)
    long long lines;               // outer · inner
    long long n;
    long long inner;
    long long padded;              // P
    long long m;                   // elements written per line (n, or k)
    long long stage;               // global step: the bitonic sequence length k; tile: the last stage
    long long step;                // global step: the comparator distance j; tile: the first stage
    int is_float;
    int descending;
};

static_assert(sizeof(sort_args) == 104, "sort_args must match the host layout");

__device__ __forceinline__ unsigned long long float_key(float v)
{
    if (v != v) return 0xffffffffULL;
    unsigned int b = __float_as_uint(v == 0.0f ? 0.0f : v);
    return (b & 0x80000000u) ? (unsigned long long)(~b) : (unsigned long long)(b | 0x80000000u);
}

// (key, position) of a before (key, position) of b.
__device__ __forceinline__ bool before(unsigned long long ka, int pa, unsigned long long kb, int pb)
{
    return ka < kb || (ka == kb && pa < pb);
}

extern "C" __global__ void sort_load_kernel(const sort_args a)
{
    unsigned long long* keys = reinterpret_cast<unsigned long long*>(a.keys);
    int* positions = reinterpret_cast<int*>(a.positions);
    const long long count = a.lines * a.padded;
    for (long long u = grid_first_index(); u < count; u += grid_stride()) {
        const long long line = u / a.padded, p = u - line * a.padded;
        if (p >= a.n) {
            keys[u] = 0xffffffffffffffffULL;
            positions[u] = (int)p;
            continue;
        }
        const long long o = line / a.inner, i = line - o * a.inner;
        const long long at = (o * a.n + p) * a.inner + i;
        unsigned long long key;
        if (a.is_float) {
            key = float_key(reinterpret_cast<const float*>(a.x)[at]);
            if (a.descending) key ^= 0xffffffffULL;
        } else {
            key = (unsigned long long)reinterpret_cast<const long long*>(a.x)[at] ^ 0x8000000000000000ULL;
            if (a.descending) key = ~key;
        }
        keys[u] = key;
        positions[u] = (int)p;
    }
}

// Compare-exchange of elements lo < hi of one bitonic step, ascending when the block of size `stage`
// holding lo is ascending.
__device__ __forceinline__ void compare_exchange(unsigned long long* keys, int* positions, long long lo, long long hi, bool ascending)
{
    const unsigned long long kl = keys[lo], kh = keys[hi];
    const int pl = positions[lo], ph = positions[hi];
    if (before(kh, ph, kl, pl) == ascending) {
        keys[lo] = kh; keys[hi] = kl;
        positions[lo] = ph; positions[hi] = pl;
    }
}

extern "C" __global__ void sort_shared_kernel(const sort_args a)
{
    __shared__ unsigned long long keys[2048];
    __shared__ int positions[2048];
    unsigned long long* gkeys = reinterpret_cast<unsigned long long*>(a.keys);
    int* gpositions = reinterpret_cast<int*>(a.positions);
    const long long P = a.padded;
    for (long long line = blockIdx.x; line < a.lines; line += gridDim.x) {
        for (long long p = threadIdx.x; p < P; p += blockDim.x) {
            keys[p] = gkeys[line * P + p];
            positions[p] = gpositions[line * P + p];
        }
        __syncthreads();
        for (long long stage = 2; stage <= P; stage <<= 1) {
            for (long long step = stage >> 1; step > 0; step >>= 1) {
                for (long long t = threadIdx.x; t < P / 2; t += blockDim.x) {
                    const long long lo = 2 * step * (t / step) + (t % step);
                    const long long hi = lo + step;
                    compare_exchange(keys, positions, lo, hi, (lo & stage) == 0);
                }
                __syncthreads();
            }
        }
        for (long long p = threadIdx.x; p < P; p += blockDim.x) {
            gkeys[line * P + p] = keys[p];
            gpositions[line * P + p] = positions[p];
        }
        __syncthreads();
    }
}

extern "C" __global__ void sort_global_step_kernel(const sort_args a)
{
    unsigned long long* keys = reinterpret_cast<unsigned long long*>(a.keys);
    int* positions = reinterpret_cast<int*>(a.positions);
    const long long half = a.padded / 2;
    const long long count = a.lines * half;
    for (long long u = grid_first_index(); u < count; u += grid_stride()) {
        const long long line = u / half, t = u - line * half;
        const long long lo = 2 * a.step * (t / a.step) + (t % a.step);
        const long long base = line * a.padded;
        compare_exchange(keys + base, positions + base, lo, lo + a.step, (lo & a.stage) == 0);
    }
}

// Stages `step` to `stage` (powers of two, 2 ≤ step ≤ stage) of the network restricted to comparator distances
// below 2048, on tiles of 2048 consecutive positions of a line (P a multiple of 2048). A stage's direction
// depends on the position in the line, so the tile's offset in its line is kept.
extern "C" __global__ void sort_tile_kernel(const sort_args a)
{
    __shared__ unsigned long long keys[2048];
    __shared__ int positions[2048];
    unsigned long long* gkeys = reinterpret_cast<unsigned long long*>(a.keys);
    int* gpositions = reinterpret_cast<int*>(a.positions);
    const long long tiles = a.lines * (a.padded / 2048);
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        // lines are consecutive runs of P positions, so tile t starts at t·2048 of the scratch
        const long long base = tile * 2048, offset = base % a.padded;
        for (int p = threadIdx.x; p < 2048; p += blockDim.x) {
            keys[p] = gkeys[base + p];
            positions[p] = gpositions[base + p];
        }
        __syncthreads();
        for (long long stage = a.step; stage <= a.stage; stage <<= 1) {
            for (int step = (int)(stage >= 2048 ? 1024 : stage >> 1); step > 0; step >>= 1) {
                for (int t = threadIdx.x; t < 1024; t += blockDim.x) {
                    // comparator t of the step: lo has a 0 in the bit of `step`
                    const int lo = ((t & ~(step - 1)) << 1) | (t & (step - 1));
                    compare_exchange(keys, positions, lo, lo + step, ((offset + lo) & stage) == 0);
                }
                __syncthreads();
            }
        }
        for (int p = threadIdx.x; p < 2048; p += blockDim.x) {
            gkeys[base + p] = keys[p];
            gpositions[base + p] = positions[p];
        }
        __syncthreads();
    }
}

extern "C" __global__ void sort_write_kernel(const sort_args a)
{
    const int* positions = reinterpret_cast<const int*>(a.positions);
    long long* indices = reinterpret_cast<long long*>(a.indices);
    const long long count = a.lines * a.m;
    for (long long u = grid_first_index(); u < count; u += grid_stride()) {
        const long long line = u / a.m, j = u - line * a.m;
        const long long o = line / a.inner, i = line - o * a.inner;
        const long long p = positions[line * a.padded + j];
        const long long out = (o * a.m + j) * a.inner + i;
        const long long in = (o * a.n + p) * a.inner + i;
        indices[out] = p;
        if (a.is_float) reinterpret_cast<float*>(a.values)[out] = reinterpret_cast<const float*>(a.x)[in];
        else reinterpret_cast<long long*>(a.values)[out] = reinterpret_cast<const long long*>(a.x)[in];
    }
}
