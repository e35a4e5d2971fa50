// Group normalization and batch normalization, forward and closed-form backward: the CUDA side of
// IBackend.Normalization.cs, reproducing CpuBackend.Normalization.cs (same statistics, same saved values,
// same element-wise expressions).
//
// Formulas, x viewed as (N, C, S), w = 1 and b = 0 when weight / bias are absent:
//   group norm, per (n, g) over its m = (C/G)·S values (one contiguous run):
//     μ, σ² = mean and biased variance; rstd = 1/sqrt(σ² + eps); y = (x − μ)·rstd·w[c] + b[c]
//     saves mean (N, G) = μ and rstd (N, G)
//     backward, x̂ = (x − μ)·rstd, A = Σ dy·w, B = Σ dy·w·x̂ over the group:
//       dx = rstd·(dy·w[c] − A/m − x̂·B/m); dweight[c] = Σ_{n,s} dy·x̂; dbias[c] = Σ_{n,s} dy
//   batch norm, per channel c over its m = N·S values (N runs of S, C·S apart):
//     training: μ, σ² (biased), rstd as above; saves mean, variance, rstd (C); y as above
//     evaluation: y = (x − mean[c])·rstd[c]·w[c] + b[c] with the given statistics
//     backward, s0 = Σ dy, s1 = Σ dy·x̂ per channel: dbias = s0, dweight = s1;
//       training dx = w·rstd·(dy − s0/m − x̂·s1/m), evaluation dx = w·rstd·dy
//     evaluation, input gradient alone: dx = dy·scale[c], scale = the float rounding of rstd·w; after the forward's
//       relu pass, from its output y: dx = (y > 0 ? dy : 0)·scale[c], one rounding of the product as
//       BinaryOp.ReluBackward followed by the product with the scale gives
// Statistics are two passes with double accumulation: pass 1 gives μ in double and its float centre μf;
// pass 2 sums x − μf and (x − μf)² in double, giving σ² = Σ(x − μf)²/m − (Σ(x − μf)/m)² (clamped at 0) and
// the refined mean μf + Σ(x − μf)/m. The outputs are written centred on μf as the CPU does:
// y = (x − μf)·scale + shift with scale = rstd·w and shift = b − (μ − μf)·scale formed in double, and
// dx = a·dy + slope·(x − μ) + offset; products and sums there use __fmul_rn / __fadd_rn so that the compiler
// does not contract them into FMAs the CPU backend does not use.
//
// Layout: x, y, dy, dx dense (N, C, S) float32; weight, bias, batch-norm mean / variance / rstd, dweight,
// dbias dense (C); group-norm mean / rstd dense (N, G). Any output pointer may be 0 where the host passes no
// tensor. sums: double scratch of 2·N·C for the group-norm backward (Σ dy per (n, c), then Σ dy·x̂).
// Launch: *_forward / *_backward statistics kernels: one block per group (group norm) or per channel (batch
//   norm), grid-stride over them, blockDim.x a multiple of 32 up to 1024; the block reduces with warp
//   shuffles and a 32-slot shared scratch (common.cuh block_sum), whose order depends only on blockDim.x,
//   so results repeat run to run. batch_norm_forward_kernel: one thread per element, grid-stride, with
//   32-bit index arithmetic where the element count and the grid fit in 31 bits; norm_args.relu applies the ReLU
//   in the same pass (a frozen batch norm followed by its ReLU). batch_norm_scale_backward_kernel: the same walk.
//   group_norm_channel_sums_kernel: one thread per channel adding the N per-sample sums in order of n, so
//   dweight and dbias need no atomics.
// Synchronization: none; the group-norm backward's two kernels are ordered by the stream.
#include "backend.cuh"

struct norm_args {
    unsigned long long x;         // const float* (N, C, S)
    unsigned long long dy;        // const float* (N, C, S), backward
    unsigned long long weight;    // const float* (C) or 0
    unsigned long long bias;      // const float* (C) or 0
    unsigned long long y;         // float* (N, C, S), forward; the relu pass's output or 0, read by the scale backward
    unsigned long long dx;        // float* (N, C, S) or 0, backward
    unsigned long long mean;      // float* out (training forward) / const float* in
    unsigned long long rstd;      // float* out (training forward) / const float* in
    unsigned long long variance;  // float* (C), batch-norm training forward
    unsigned long long dweight;   // float* (C) or 0
    unsigned long long dbias;     // float* (C) or 0
    unsigned long long sums;      // double* (2·N·C) or 0, group-norm backward
    long long n;
    long long c;
    long long s;
    int groups;
    int training;                 // batch-norm backward: 1 when mean / rstd are the batch's own statistics
    double eps;
    int relu;                     // batch-norm forward: 1 to apply the ReLU in the same pass
    int padding;
};

static_assert(sizeof(norm_args) == 144, "norm_args must match the host layout");

// Element offset of value k (0 ≤ k < N·S) of channel ch in a dense (N, C, S) tensor.
__device__ __forceinline__ long long channel_offset(long long k, long long ch, long long c, long long s)
{
    const long long i = k / s;
    return (i * c + ch) * s + (k - i * s);
}

// (x − center)·scale + shift, rounded after each operation as the CPU backend's vector loop does.
__device__ __forceinline__ float affine_centered(float x, float center, float scale, float shift)
{
    return __fadd_rn(__fmul_rn(x - center, scale), shift);
}

// dy·a + (x − center)·slope + offset, rounded after each operation as the CPU backend's vector loop does.
__device__ __forceinline__ float gradient_value(float dy, float x, float a, float center, float slope, float offset)
{
    return __fadd_rn(__fadd_rn(__fmul_rn(dy, a), __fmul_rn(x - center, slope)), offset);
}

// Statistics of one group or channel from the block's partial sums: pass 1's Σx gives the float centre,
// pass 2's Σ(x − μf), Σ(x − μf)² give delta = μ − μf and the biased variance.
struct moments {
    float center;
    double delta;
    double variance;
};

// Moments of the m values at(k), k = 0..m−1, where at(k) is a pointer into the data; every thread of the
// block takes part and receives the result.
template <typename At>
__device__ moments block_moments(At at, long long m, double* scratch)
{
    double sum = 0.0;
    for (long long k = threadIdx.x; k < m; k += blockDim.x) sum += (double)*at(k);
    sum = block_sum(sum, scratch);
    const float center = (float)(sum / (double)m);
    double d = 0.0, q = 0.0;
    for (long long k = threadIdx.x; k < m; k += blockDim.x) {
        const double v = (double)(*at(k) - center);
        d += v;
        q += v * v;
    }
    d = block_sum(d, scratch);
    q = block_sum(q, scratch);
    const double delta = d / (double)m;
    const double variance = fmax(q / (double)m - delta * delta, 0.0);
    return moments { center, delta, variance };
}

extern "C" __global__ void group_norm_forward_kernel(const norm_args a)
{
    __shared__ double scratch[32];
    const float* x = reinterpret_cast<const float*>(a.x);
    const float* w = reinterpret_cast<const float*>(a.weight);
    const float* b = reinterpret_cast<const float*>(a.bias);
    float* y = reinterpret_cast<float*>(a.y);
    float* mean = reinterpret_cast<float*>(a.mean);
    float* rstd = reinterpret_cast<float*>(a.rstd);
    const long long groups = a.groups, cpg = a.c / groups, m = cpg * a.s;
    for (long long u = blockIdx.x; u < a.n * groups; u += gridDim.x) {
        const long long i = u / groups, c0 = (u - i * groups) * cpg;
        const long long start = (i * a.c + c0) * a.s;
        const float* xs = x + start;
        const moments mo = block_moments([xs](long long k) { return xs + k; }, m, scratch);
        const double r = 1.0 / sqrt(mo.variance + a.eps);
        if (threadIdx.x == 0) {
            mean[u] = (float)((double)mo.center + mo.delta);
            rstd[u] = (float)r;
        }
        for (long long k = 0; k < cpg; ++k) {
            const long long ch = c0 + k;
            const double scale = r * (w == nullptr ? 1.0 : (double)w[ch]);
            const double shift = (b == nullptr ? 0.0 : (double)b[ch]) - mo.delta * scale;
            const float fscale = (float)scale, fshift = (float)shift;
            const long long at = start + k * a.s;
            for (long long j = threadIdx.x; j < a.s; j += blockDim.x)
                y[at + j] = affine_centered(x[at + j], mo.center, fscale, fshift);
        }
    }
}

extern "C" __global__ void group_norm_backward_kernel(const norm_args a)
{
    __shared__ double scratch[32];
    const float* dy = reinterpret_cast<const float*>(a.dy);
    const float* x = reinterpret_cast<const float*>(a.x);
    const float* w = reinterpret_cast<const float*>(a.weight);
    const float* mean = reinterpret_cast<const float*>(a.mean);
    const float* rstd = reinterpret_cast<const float*>(a.rstd);
    float* dx = reinterpret_cast<float*>(a.dx);
    double* sums = reinterpret_cast<double*>(a.sums);
    const long long groups = a.groups, cpg = a.c / groups, m = cpg * a.s, nc = a.n * a.c;
    for (long long u = blockIdx.x; u < a.n * groups; u += gridDim.x) {
        const long long i = u / groups, c0 = (u - i * groups) * cpg;
        const long long start = (i * a.c + c0) * a.s;
        const float mu = mean[u];
        const double r = (double)rstd[u];
        double ga = 0.0, gb = 0.0;   // A = Σ dy·w, B = Σ dy·w·x̂ over the group
        for (long long k = 0; k < cpg; ++k) {
            const long long ch = c0 + k, at = start + k * a.s;
            double s0 = 0.0, s1 = 0.0;   // Σ dy, Σ dy·(x − μ) over the channel's S values
            for (long long j = threadIdx.x; j < a.s; j += blockDim.x) {
                const double g = (double)dy[at + j];
                s0 += g;
                s1 += g * (double)(x[at + j] - mu);
            }
            s0 = block_sum(s0, scratch);
            s1 = block_sum(s1, scratch);
            if (sums != nullptr && threadIdx.x == 0) {
                sums[i * a.c + ch] = s0;
                sums[nc + i * a.c + ch] = r * s1;
            }
            const double wc = w == nullptr ? 1.0 : (double)w[ch];
            ga += wc * s0;
            gb += wc * r * s1;
        }
        if (dx == nullptr) continue;
        // dx = r·(w·dy − A/m − x̂·B/m) = (r·w)·dy + (−r²·B/m)·(x − μ) + (−r·A/m)
        const float slope = (float)(-r * r * gb / (double)m);
        const float offset = (float)(-r * ga / (double)m);
        for (long long k = 0; k < cpg; ++k) {
            const long long at = start + k * a.s;
            const float scale = (float)(r * (w == nullptr ? 1.0 : (double)w[c0 + k]));
            for (long long j = threadIdx.x; j < a.s; j += blockDim.x)
                dx[at + j] = gradient_value(dy[at + j], x[at + j], scale, mu, slope, offset);
        }
    }
}

extern "C" __global__ void group_norm_channel_sums_kernel(const norm_args a)
{
    const double* sums = reinterpret_cast<const double*>(a.sums);
    float* dweight = reinterpret_cast<float*>(a.dweight);
    float* dbias = reinterpret_cast<float*>(a.dbias);
    const long long nc = a.n * a.c;
    for (long long ch = grid_first_index(); ch < a.c; ch += grid_stride()) {
        double sdy = 0.0, sdyx = 0.0;
        for (long long i = 0; i < a.n; ++i) {
            sdy += sums[i * a.c + ch];
            sdyx += sums[nc + i * a.c + ch];
        }
        if (dbias != nullptr) dbias[ch] = (float)sdy;
        if (dweight != nullptr) dweight[ch] = (float)sdyx;
    }
}

extern "C" __global__ void batch_norm_training_forward_kernel(const norm_args a)
{
    __shared__ double scratch[32];
    const float* x = reinterpret_cast<const float*>(a.x);
    const float* w = reinterpret_cast<const float*>(a.weight);
    const float* b = reinterpret_cast<const float*>(a.bias);
    float* y = reinterpret_cast<float*>(a.y);
    float* mean = reinterpret_cast<float*>(a.mean);
    float* variance = reinterpret_cast<float*>(a.variance);
    float* rstd = reinterpret_cast<float*>(a.rstd);
    const long long m = a.n * a.s, c = a.c, s = a.s;
    for (long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
        const moments mo = block_moments([x, ch, c, s](long long k) { return x + channel_offset(k, ch, c, s); }, m, scratch);
        const double r = 1.0 / sqrt(mo.variance + a.eps);
        if (threadIdx.x == 0) {
            mean[ch] = (float)((double)mo.center + mo.delta);
            variance[ch] = (float)mo.variance;
            rstd[ch] = (float)r;
        }
        const double scale = r * (w == nullptr ? 1.0 : (double)w[ch]);
        const double shift = (b == nullptr ? 0.0 : (double)b[ch]) - mo.delta * scale;
        const float fscale = (float)scale, fshift = (float)shift;
        for (long long k = threadIdx.x; k < m; k += blockDim.x) {
            const long long at = channel_offset(k, ch, c, s);
            y[at] = affine_centered(x[at], mo.center, fscale, fshift);
        }
    }
}

// rstd[c]·w[c] rounded to float once (w absent: rstd[c]); the product of two floats is exact in double, so this is
// the correctly rounded float product, as the CPU backend forms it.
__device__ __forceinline__ float channel_scale(const float* rstd, const float* w, long long ch)
{
    return (float)((double)rstd[ch] * (w == nullptr ? 1.0 : (double)w[ch]));
}

// A grid-stride walk over the count elements of a dense (N, C, S) tensor calling f(u, channel of u); the channel in
// 32-bit division where the walk fits in 32 bits (the 64-bit sequence is several times longer).
template <class F>
__device__ __forceinline__ void walk_channels(long long count, long long c, long long s, F f)
{
    if (grid_walk_fits_32(count)) {
        const unsigned int end = (unsigned int)count, stride = (unsigned int)grid_stride();
        const unsigned int s32 = (unsigned int)s, c32 = (unsigned int)c;
        for (unsigned int u = (unsigned int)grid_first_index(); u < end; u += stride) f(u, (u / s32) % c32);
        return;
    }
    for (long long u = grid_first_index(); u < count; u += grid_stride()) f(u, (u / s) % c);
}

extern "C" __global__ void batch_norm_forward_kernel(const norm_args a)
{
    const float* x = reinterpret_cast<const float*>(a.x);
    const float* w = reinterpret_cast<const float*>(a.weight);
    const float* b = reinterpret_cast<const float*>(a.bias);
    const float* mean = reinterpret_cast<const float*>(a.mean);
    const float* rstd = reinterpret_cast<const float*>(a.rstd);
    float* y = reinterpret_cast<float*>(a.y);
    walk_channels(a.n * a.c * a.s, a.c, a.s, [&](long long u, long long ch) {
        const float v = affine_centered(x[u], mean[ch], channel_scale(rstd, w, ch), b == nullptr ? 0.0f : b[ch]);
        y[u] = a.relu != 0 ? relu_value(v) : v;
    });
}

extern "C" __global__ void batch_norm_scale_backward_kernel(const norm_args a)
{
    const float* dy = reinterpret_cast<const float*>(a.dy);
    const float* y = reinterpret_cast<const float*>(a.y);
    const float* w = reinterpret_cast<const float*>(a.weight);
    const float* rstd = reinterpret_cast<const float*>(a.rstd);
    float* dx = reinterpret_cast<float*>(a.dx);
    walk_channels(a.n * a.c * a.s, a.c, a.s, [&](long long u, long long ch) {
        dx[u] = __fmul_rn(y == nullptr || y[u] > 0.0f ? dy[u] : 0.0f, channel_scale(rstd, w, ch));
    });
}

extern "C" __global__ void batch_norm_backward_kernel(const norm_args a)
{
    __shared__ double scratch[32];
    const float* dy = reinterpret_cast<const float*>(a.dy);
    const float* x = reinterpret_cast<const float*>(a.x);
    const float* w = reinterpret_cast<const float*>(a.weight);
    const float* mean = reinterpret_cast<const float*>(a.mean);
    const float* rstd = reinterpret_cast<const float*>(a.rstd);
    float* dx = reinterpret_cast<float*>(a.dx);
    float* dweight = reinterpret_cast<float*>(a.dweight);
    float* dbias = reinterpret_cast<float*>(a.dbias);
    const long long m = a.n * a.s, c = a.c, s = a.s;
    const bool need_sums = a.training != 0 || dweight != nullptr || dbias != nullptr;
    for (long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
        const float center = mean[ch];
        const double r = (double)rstd[ch];
        double s0 = 0.0, s1 = 0.0;   // Σ dy, Σ dy·x̂
        if (need_sums) {
            double dot = 0.0;
            for (long long k = threadIdx.x; k < m; k += blockDim.x) {
                const long long at = channel_offset(k, ch, c, s);
                const double g = (double)dy[at];
                s0 += g;
                dot += g * (double)(x[at] - center);
            }
            s0 = block_sum(s0, scratch);
            s1 = r * block_sum(dot, scratch);
            if (threadIdx.x == 0) {
                if (dbias != nullptr) dbias[ch] = (float)s0;
                if (dweight != nullptr) dweight[ch] = (float)s1;
            }
        }
        if (dx == nullptr) continue;
        const double scale = r * (w == nullptr ? 1.0 : (double)w[ch]);
        // training: dx = a·(dy − s0/m − x̂·s1/m) = a·dy + (−a·r·s1/m)·(x − μ) + (−a·s0/m)
        const float slope = a.training != 0 ? (float)(-scale * r * s1 / (double)m) : 0.0f;
        const float offset = a.training != 0 ? (float)(-scale * s0 / (double)m) : 0.0f;
        const float fscale = (float)scale;
        for (long long k = threadIdx.x; k < m; k += blockDim.x) {
            const long long at = channel_offset(k, ch, c, s);
            dx[at] = gradient_value(dy[at], x[at], fscale, center, slope, offset);
        }
    }
}
