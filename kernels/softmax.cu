// Softmax and log-softmax along one dim, their backward, and the fused cross-entropy (log-softmax, target
// gather, class weights, label smoothing) with its backward: the CUDA side of IBackend.Softmax.cs.
//
// Formulas, for a line x_1..x_n (CpuBackend.Softmax.cs; PyTorch semantics):
//   softmax      y_k = e^(x_k − m) / Σ_l e^(x_l − m), m = max_l x_l
//   log_softmax  y_k = x_k − m − ln Σ_l e^(x_l − m)
//   backward     softmax gx = y·(g − Σ g·y);  log_softmax gx = g − e^y·Σ g
//   cross-entropy, row i, target t, weights w (1 when absent), smoothing ε, C classes, lse = m + ln Σ e^(x − m):
//     loss_i = (1−ε)·w_t·(lse − x_t) + (ε/C)·Σ_c w_c·(lse − x_c); 0 for ignored rows
//     ∂loss_i/∂x_c = p_c·((1−ε)·w_t + (ε/C)·Σ_c w_c) − (1−ε)·w_t·[c = t] − (ε/C)·w_c, p_c = e^(x_c − lse)
//   Sums are accumulated in double.
//
// Layout: x, y, g, gx dense (outer, n, inner); logits (N, C) dense, target (N) int64, weight (C) or null,
// loss / row_weight / lse (N) dense, grad_row (N) with element stride grad_stride (0 broadcasts one value).
// Launch: *_rows_* kernels (inner == 1, and the cross-entropy): one block per row, grid-stride over rows,
//   blockDim.x a multiple of 32 up to 1024. *_columns_* kernels (inner > 1): one thread per (o, j) column,
//   grid-stride, three passes along n.
// Synchronization: none. A target outside [0, C) that is not ignore_index is reported through the error
// record (backend.cuh) and its row's loss is NaN; the host raises the error at its next wait.
#include "backend.cuh"

struct softmax_args {
    unsigned long long x;        // forward: x; backward: y
    unsigned long long g;        // backward: the output gradient
    unsigned long long y;        // forward: y; backward: gx
    long long outer;
    long long n;
    long long inner;
    int log;
    int pad;
};

static_assert(sizeof(softmax_args) == 56, "softmax_args must match the host layout");

struct cross_entropy_args {
    unsigned long long logits;      // const float* (N, C)
    unsigned long long target;      // const long long* (N)
    unsigned long long weight;      // const float* (C) or 0
    unsigned long long loss;        // float* (N)
    unsigned long long row_weight;  // float* (N)
    unsigned long long lse;         // forward: float* out; backward: const float* in
    unsigned long long grad_row;    // backward: const float*, stride grad_stride
    unsigned long long grad_logits; // backward: float* (N, C)
    unsigned long long errors;      // engine_error*
    long long rows;
    long long classes;
    long long ignore_index;
    long long grad_stride;
    double smoothing;
    int error_op;
    int pad;
};

static_assert(sizeof(cross_entropy_args) == 120, "cross_entropy_args must match the host layout");

extern "C" __global__ void softmax_rows_forward_kernel(const softmax_args a)
{
    __shared__ float fscratch[32];
    __shared__ double dscratch[32];
    const float* x = reinterpret_cast<const float*>(a.x);
    float* y = reinterpret_cast<float*>(a.y);
    for (long long row = blockIdx.x; row < a.outer; row += gridDim.x) {
        const float* xs = x + row * a.n;
        float* ys = y + row * a.n;
        float m = -__int_as_float(0x7f800000);
        for (long long k = threadIdx.x; k < a.n; k += blockDim.x) m = nan_max(m, xs[k]);
        m = block_max(m, -__int_as_float(0x7f800000), fscratch);
        double s = 0.0;
        for (long long k = threadIdx.x; k < a.n; k += blockDim.x) s += (double)expf(xs[k] - m);
        s = block_sum(s, dscratch);
        const float shift = m + (float)log(s);
        const float inv = (float)(1.0 / s);
        for (long long k = threadIdx.x; k < a.n; k += blockDim.x)
            ys[k] = a.log ? xs[k] - shift : expf(xs[k] - m) * inv;
    }
}

extern "C" __global__ void softmax_columns_forward_kernel(const softmax_args a)
{
    const float* x = reinterpret_cast<const float*>(a.x);
    float* y = reinterpret_cast<float*>(a.y);
    const long long count = a.outer * a.inner;
    for (long long u = grid_first_index(); u < count; u += grid_stride()) {
        const long long o = u / a.inner, j = u - o * a.inner;
        const float* xs = x + o * a.n * a.inner + j;
        float* ys = y + o * a.n * a.inner + j;
        float m = -__int_as_float(0x7f800000);
        for (long long k = 0; k < a.n; ++k) m = nan_max(m, xs[k * a.inner]);
        double s = 0.0;
        for (long long k = 0; k < a.n; ++k) s += (double)expf(xs[k * a.inner] - m);
        const float shift = m + (float)log(s);
        const float inv = (float)(1.0 / s);
        for (long long k = 0; k < a.n; ++k)
            ys[k * a.inner] = a.log ? xs[k * a.inner] - shift : expf(xs[k * a.inner] - m) * inv;
    }
}

extern "C" __global__ void softmax_rows_backward_kernel(const softmax_args a)
{
    __shared__ double dscratch[32];
    const float* y = reinterpret_cast<const float*>(a.x);
    const float* g = reinterpret_cast<const float*>(a.g);
    float* gx = reinterpret_cast<float*>(a.y);
    for (long long row = blockIdx.x; row < a.outer; row += gridDim.x) {
        const long long base = row * a.n;
        double s = 0.0;
        for (long long k = threadIdx.x; k < a.n; k += blockDim.x)
            s += a.log ? (double)g[base + k] : (double)g[base + k] * (double)y[base + k];
        const float total = (float)block_sum(s, dscratch);
        for (long long k = threadIdx.x; k < a.n; k += blockDim.x) {
            const float yk = y[base + k], gk = g[base + k];
            gx[base + k] = a.log ? gk - expf(yk) * total : yk * (gk - total);
        }
    }
}

extern "C" __global__ void softmax_columns_backward_kernel(const softmax_args a)
{
    const float* y = reinterpret_cast<const float*>(a.x);
    const float* g = reinterpret_cast<const float*>(a.g);
    float* gx = reinterpret_cast<float*>(a.y);
    const long long count = a.outer * a.inner;
    for (long long u = grid_first_index(); u < count; u += grid_stride()) {
        const long long o = u / a.inner, j = u - o * a.inner;
        const long long base = o * a.n * a.inner + j;
        double s = 0.0;
        for (long long k = 0; k < a.n; ++k) {
            const long long at = base + k * a.inner;
            s += a.log ? (double)g[at] : (double)g[at] * (double)y[at];
        }
        const float total = (float)s;
        for (long long k = 0; k < a.n; ++k) {
            const long long at = base + k * a.inner;
            gx[at] = a.log ? g[at] - expf(y[at]) * total : y[at] * (g[at] - total);
        }
    }
}

// Σ_c w_c over the block (C when unweighted), returned to every thread.
__device__ double total_weight(const float* w, long long classes, double* scratch)
{
    if (w == nullptr) return (double)classes;
    double s = 0.0;
    for (long long c = threadIdx.x; c < classes; c += blockDim.x) s += (double)w[c];
    return block_sum(s, scratch);
}

extern "C" __global__ void cross_entropy_forward_kernel(const cross_entropy_args a)
{
    __shared__ float fscratch[32];
    __shared__ double dscratch[32];
    const float* logits = reinterpret_cast<const float*>(a.logits);
    const long long* target = reinterpret_cast<const long long*>(a.target);
    const float* w = reinterpret_cast<const float*>(a.weight);
    float* loss = reinterpret_cast<float*>(a.loss);
    float* row_weight = reinterpret_cast<float*>(a.row_weight);
    float* lse_out = reinterpret_cast<float*>(a.lse);
    engine_error* errors = reinterpret_cast<engine_error*>(a.errors);
    const long long C = a.classes;
    const double eps = a.smoothing;
    const double wsum = eps == 0.0 ? 0.0 : total_weight(w, C, dscratch);
    for (long long row = blockIdx.x; row < a.rows; row += gridDim.x) {
        const float* xs = logits + row * C;
        float m = -__int_as_float(0x7f800000);
        for (long long c = threadIdx.x; c < C; c += blockDim.x) m = nan_max(m, xs[c]);
        m = block_max(m, -__int_as_float(0x7f800000), fscratch);
        double s = 0.0, dot = 0.0;
        for (long long c = threadIdx.x; c < C; c += blockDim.x) {
            const float shifted = xs[c] - m;
            s += (double)expf(shifted);
            if (eps != 0.0) dot += (w == nullptr ? 1.0 : (double)w[c]) * (double)shifted;
        }
        s = block_sum(s, dscratch);
        if (eps != 0.0) dot = block_sum(dot, dscratch);
        if (threadIdx.x == 0) {
            const double log_sum = log(s);
            lse_out[row] = (float)((double)m + log_sum);
            const long long t = target[row];
            if (t == a.ignore_index) {
                loss[row] = 0.0f;
                row_weight[row] = 0.0f;
            } else if (t < 0 || t >= C) {
                report_error(errors, a.error_op, 3, t, row, C);
                loss[row] = quiet_nan();
                row_weight[row] = quiet_nan();
            } else {
                const double wy = w == nullptr ? 1.0 : (double)w[t];
                const double nll = log_sum - ((double)xs[t] - (double)m);
                const double smooth = wsum * log_sum - dot;
                loss[row] = (float)((1.0 - eps) * wy * nll + eps / (double)C * smooth);
                row_weight[row] = (float)wy;
            }
        }
    }
}

extern "C" __global__ void cross_entropy_backward_kernel(const cross_entropy_args a)
{
    __shared__ double dscratch[32];
    const float* logits = reinterpret_cast<const float*>(a.logits);
    const long long* target = reinterpret_cast<const long long*>(a.target);
    const float* w = reinterpret_cast<const float*>(a.weight);
    const float* lse = reinterpret_cast<const float*>(a.lse);
    const float* grad_row = reinterpret_cast<const float*>(a.grad_row);
    float* gx = reinterpret_cast<float*>(a.grad_logits);
    engine_error* errors = reinterpret_cast<engine_error*>(a.errors);
    const long long C = a.classes;
    const double eps = a.smoothing;
    const double wsum = total_weight(w, C, dscratch);
    for (long long row = blockIdx.x; row < a.rows; row += gridDim.x) {
        float* dst = gx + row * C;
        const long long t = target[row];
        if (t == a.ignore_index) {
            for (long long c = threadIdx.x; c < C; c += blockDim.x) dst[c] = 0.0f;
            continue;
        }
        if (t < 0 || t >= C) {
            if (threadIdx.x == 0) report_error(errors, a.error_op, 3, t, row, C);
            for (long long c = threadIdx.x; c < C; c += blockDim.x) dst[c] = quiet_nan();
            continue;
        }
        const double g = (double)grad_row[row * a.grad_stride];
        const double wy = w == nullptr ? 1.0 : (double)w[t];
        const float scale = (float)(g * ((1.0 - eps) * wy + eps / (double)C * wsum));
        const float smooth = (float)(-g * eps / (double)C);
        const float l = lse[row];
        for (long long c = threadIdx.x; c < C; c += blockDim.x) {
            float v = expf(logits[row * C + c] - l) * scale;
            if (eps != 0.0) v += w == nullptr ? smooth : w[c] * smooth;
            if (c == t) v -= (float)(g * (1.0 - eps) * wy);
            dst[c] = v;
        }
    }
}
