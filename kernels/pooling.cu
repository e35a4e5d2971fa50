// 2-D max pooling and nearest-neighbour upsampling on NCHW float32 maps, forward and backward: the CUDA
// side of IBackend.Pooling.cs.
//
// Formulas (CpuBackend.Pooling.cs; PyTorch semantics):
//   max_pool  y[p, i, j] = max over the window rows [i·Sh − Ph, i·Sh − Ph + Kh) ∩ [0, H) and columns likewise,
//             scanned row-major; the first maximum wins, a NaN replaces anything (so the last NaN wins);
//             indices = h·W + w of the winner within its plane
//   backward  gx[p, h, w] = Σ gy[p, i, j] over the outputs whose index is h·W + w (IBackend passes no window,
//             so each output scatters its gradient with atomicAdd into a zeroed gx; where windows overlap the
//             order of the additions, and so the last bits, may differ from the CPU's)
//   upsample  y[p, i, j] = x[p, ⌊i·H/Ho⌋, ⌊j·W/Wo⌋]
//   backward  gx[p, h, w] = Σ gy[p, i, j] over i with ⌊i·H/Ho⌋ = h and j with ⌊j·W/Wo⌋ = w, row-major order
// The upsampling backward gathers (one thread per input element, looping over the outputs copied from it,
// in the CPU's order), so it is deterministic and matches the CPU bit for bit.
//
// Layout: x, gx (planes, H, W) and y, gy, indices (planes, Ho, Wo), planes = N·C, all dense.
// Launch: 1-D grid-stride over the output elements (forwards, max-pool backward) or the input elements
// (upsampling backward).
// Synchronization: none.
#include "backend.cuh"

struct pool_args {
    unsigned long long x;        // forward: x
    unsigned long long y;        // forward: y
    unsigned long long indices;  // max pool: long long*
    unsigned long long gy;       // backward: gy
    unsigned long long gx;       // backward: gx
    long long planes;
    int h, w, oh, ow;
    int kh, kw, sh, sw;
    int ph, pw;
};

static_assert(sizeof(pool_args) == 88, "pool_args must match the host layout");

extern "C" __global__ void max_pool2d_forward_kernel(const pool_args a)
{
    const float* x = reinterpret_cast<const float*>(a.x);
    float* y = reinterpret_cast<float*>(a.y);
    long long* indices = reinterpret_cast<long long*>(a.indices);
    const long long count = a.planes * a.oh * a.ow;
    for (long long u = grid_first_index(); u < count; u += grid_stride()) {
        const long long plane = u / ((long long)a.oh * a.ow);
        const int r = (int)(u / a.ow % a.oh), c = (int)(u % a.ow);
        const int hs = r * a.sh - a.ph, ws = c * a.sw - a.pw;
        const int h0 = max(hs, 0), h1 = min(hs + a.kh, a.h), w0 = max(ws, 0), w1 = min(ws + a.kw, a.w);
        const float* src = x + plane * a.h * a.w;
        float best = -__int_as_float(0x7f800000);
        long long at = (long long)h0 * a.w + w0;
        for (int i = h0; i < h1; ++i)
            for (int j = w0; j < w1; ++j) {
                const float v = src[(long long)i * a.w + j];
                if (v > best || v != v) { best = v; at = (long long)i * a.w + j; }
            }
        y[u] = best;
        indices[u] = at;
    }
}

// gx must be zeroed first (the host queues a fill); one thread per OUTPUT element adds its gradient at its index.
extern "C" __global__ void max_pool2d_backward_kernel(const pool_args a)
{
    const float* gy = reinterpret_cast<const float*>(a.gy);
    const long long* indices = reinterpret_cast<const long long*>(a.indices);
    float* gx = reinterpret_cast<float*>(a.gx);
    const long long count = a.planes * a.oh * a.ow;
    for (long long u = grid_first_index(); u < count; u += grid_stride()) {
        const long long plane = u / ((long long)a.oh * a.ow);
        atomicAdd(gx + plane * a.h * a.w + indices[u], gy[u]);
    }
}

extern "C" __global__ void upsample_nearest2d_forward_kernel(const pool_args a)
{
    const float* x = reinterpret_cast<const float*>(a.x);
    float* y = reinterpret_cast<float*>(a.y);
    const long long count = a.planes * a.oh * a.ow;
    for (long long u = grid_first_index(); u < count; u += grid_stride()) {
        const long long plane = u / ((long long)a.oh * a.ow);
        const long long r = u / a.ow % a.oh, c = u % a.ow;
        y[u] = x[(plane * a.h + r * a.h / a.oh) * a.w + c * a.w / a.ow];
    }
}

// First output index i with ⌊i·in/out⌋ ≥ s: ⌈s·out/in⌉.
__device__ __forceinline__ long long first_source_at_least(long long s, long long in, long long out)
{
    return (s * out + in - 1) / in;
}

extern "C" __global__ void upsample_nearest2d_backward_kernel(const pool_args a)
{
    const float* gy = reinterpret_cast<const float*>(a.gy);
    float* gx = reinterpret_cast<float*>(a.gx);
    const long long count = a.planes * a.h * a.w;
    for (long long u = grid_first_index(); u < count; u += grid_stride()) {
        const long long plane = u / ((long long)a.h * a.w);
        const long long r = u / a.w % a.h, c = u % a.w;
        const long long i0 = first_source_at_least(r, a.h, a.oh), i1 = first_source_at_least(r + 1, a.h, a.oh);
        const long long j0 = first_source_at_least(c, a.w, a.ow), j1 = first_source_at_least(c + 1, a.w, a.ow);
        float acc = 0.0f;
        for (long long i = i0; i < i1; ++i)
            for (long long j = j0; j < j1; ++j) acc += gy[(plane * a.oh + i) * a.ow + j];
        gx[u] = acc;
    }
}
