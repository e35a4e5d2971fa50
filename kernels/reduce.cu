// Reductions of float32 x viewed as (outer, n, inner) over n: sum, max and min, the latter two with the
// index of the extreme element (CpuBackend.Reduce semantics).
//
// Formulas: values[o, j] = Σ_k x[o, k, j] (accumulated in double), or max_k / min_k x[o, k, j]; NaN wins
// (the first NaN along k, as in PyTorch), and among equal extremes the lowest k; indices[o, j] = that k.
// An empty sum (n = 0) is 0.
//
// Layout: x dense (outer, n, inner); values (outer, inner) float32 and indices (outer, inner) int64, dense.
// Launch: inner == 1 — reduce_rows_kernel, one block per row (grid-stride over rows), blockDim.x a multiple
//   of 32 up to 1024; every thread walks the row with stride blockDim.x, then the block combines.
//   inner > 1 — reduce_columns_kernel, one thread per (o, j) (grid-stride), walking k; neighbouring threads
//   read neighbouring j, so loads coalesce.
// Synchronization: none.
#include "backend.cuh"

struct reduce_args {
    unsigned long long x;        // const float*
    unsigned long long values;   // float*
    unsigned long long indices;  // long long*, 0 when not wanted
    long long outer;
    long long n;
    long long inner;
    int op;                      // Engine.ReduceOp: 0 sum, 1 max, 2 min
    int pad;
};

static_assert(sizeof(reduce_args) == 56, "reduce_args must match the host layout");

// Whether candidate (v, k) beats the current best (b, at) for max (is_max) or min.
__device__ __forceinline__ bool better(float v, long long k, float b, long long at, bool is_max)
{
    const bool vn = v != v, bn = b != b;
    if (vn || bn) return vn && (!bn || k < at);
    if (v == b) return k < at;
    return is_max ? v > b : v < b;
}

extern "C" __global__ void reduce_rows_kernel(const reduce_args args)
{
    __shared__ double sums[32];
    __shared__ float best_values[1024];
    __shared__ long long best_index[1024];
    const float* x = reinterpret_cast<const float*>(args.x);
    float* values = reinterpret_cast<float*>(args.values);
    long long* indices = reinterpret_cast<long long*>(args.indices);
    const bool is_max = args.op == 1;
    for (long long row = blockIdx.x; row < args.outer; row += gridDim.x) {
        const float* line = x + row * args.n;
        if (args.op == 0) {
            double acc = 0.0;
            for (long long k = threadIdx.x; k < args.n; k += blockDim.x) acc += (double)line[k];
            const double total = block_sum(acc, sums);
            if (threadIdx.x == 0) values[row] = (float)total;
            continue;
        }
        float b = 0.0f;
        long long at = -1;
        for (long long k = threadIdx.x; k < args.n; k += blockDim.x) {
            const float v = line[k];
            if (at < 0 || better(v, k, b, at, is_max)) { b = v; at = k; }
        }
        best_values[threadIdx.x] = b;
        best_index[threadIdx.x] = at;
        __syncthreads();
        for (int half = blockDim.x / 2; half > 0; half >>= 1) {
            if (threadIdx.x < half) {
                const float v = best_values[threadIdx.x + half];
                const long long k = best_index[threadIdx.x + half];
                if (k >= 0 && (best_index[threadIdx.x] < 0 || better(v, k, best_values[threadIdx.x], best_index[threadIdx.x], is_max))) {
                    best_values[threadIdx.x] = v;
                    best_index[threadIdx.x] = k;
                }
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            values[row] = best_values[0];
            if (indices != nullptr) indices[row] = best_index[0];
        }
        __syncthreads();
    }
}

extern "C" __global__ void reduce_columns_kernel(const reduce_args args)
{
    const float* x = reinterpret_cast<const float*>(args.x);
    float* values = reinterpret_cast<float*>(args.values);
    long long* indices = reinterpret_cast<long long*>(args.indices);
    const bool is_max = args.op == 1;
    const long long count = args.outer * args.inner;
    for (long long u = grid_first_index(); u < count; u += grid_stride()) {
        const long long o = u / args.inner, j = u - o * args.inner;
        const float* column = x + o * args.n * args.inner + j;
        if (args.op == 0) {
            double acc = 0.0;
            for (long long k = 0; k < args.n; ++k) acc += (double)column[k * args.inner];
            values[u] = (float)acc;
            continue;
        }
        float b = column[0];
        long long at = 0;
        for (long long k = 1; k < args.n && b == b; ++k) {
            const float v = column[k * args.inner];
            if (better(v, k, b, at, is_max)) { b = v; at = k; }
        }
        values[u] = b;
        if (indices != nullptr) indices[u] = at;
    }
}
