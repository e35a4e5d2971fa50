// The long-tail losses and helpers of CudaLongTailBackend, float32, reproducing CpuLongTailBackend
// (long-tail-methods.md sections 1.1, 1.3–1.7, 2.2, 4.1, 4.2). Logits (N, K) row-major, labels int64 (N) with the
// background = C; every loss writes rowLoss (N) and gradLogits (N, K) = scale·∂rowLoss/∂logits in one pass.
//
// Formulas (softplus(t) = max(t, 0) + log(1 + e^−|t|), σ(t) = 1/(1 + e^−|t|) or e^−|t|/(1 + e^−|t|), never overflowing):
//   weighted BCE: w_ij = posWeight[j] for j = y_i, else negWeightFg[j] (y_i < numForeground) or negWeightBg[j];
//     rowLoss_i = Σ_j w_ij·(softplus(t_ij) − [j = y_i]·t_ij), grad_ij = scale·w_ij·(σ(t_ij) − [j = y_i]); a label ≥ K
//     has no positive column. Statistics (EQLv2, 1.5): gradMagnitudePos/Neg[j] = Σ_i w_ij·|σ(t_ij) − y_ij| split by
//     y_ij = 1 / 0, one thread per column summing rows in order in double, so the result is reproducible.
//   FCBL (4.2), K = C + 1: δ_ij = α·(ln max(A[y][j]/max(n_y, 1), 1e-3) − ln max(A[j][y]/max(n_j, 1), 1e-3)) for
//     positive rows, j < C, j ≠ y (else 0); t = z + δ; with reweighting, for positive rows π_j = σ(z_j)·(1 − σ(z_C)),
//     ω_j = [π_j ≥ min(π_y, τ)] for j < C and ω_C = 1; rowLoss = Σ_{j≠y} ω_j·softplus(t_j) + softplus(t_y) − t_y,
//     grad = scale·ω·σ(t) off the target, scale·(σ(t_y) − 1) on it.
//   confusion update (4.2 step 4): for positive rows in row order, A[y_i][:] += softmax(z_i[0..C−1]), n[y_i] += 1:
//     one warp per row forms the row's max and Σ exp (double), then one thread per column of A walks the rows in
//     order (so every A[y][j] receives its additions in row order, as on the CPU) and one thread updates n.
//   softmax CE (1.1, 1.3): rowLoss = w[y]·(lse(z) − z_y), grad = scale·w[y]·(softmax(z) − onehot(y)).
//   Seesaw (1.6), K = C + 2 = (u, o_fg, o_bg): positive rows, ln S_yj = p·min(ln N_j − ln N_y, 0)
//     + q·max(ln s_j − max(ln s_y, ln ε), 0) (s = softmax(u), S_yy = 1, N clamped ≥ 1), class term CE(u + ln S, y);
//     every row adds the objectness CE of (o_fg, o_bg) against fg (positive) or bg.
//   calibrate (LogN, 2.2): t_j = (z_j − shift_j) / sd_j, optionally softmax(t) (max-subtracted).
//   scale: y = x·factor[0], the factor read on the device.
//   CRAT row loss (3.4): fisher_mixing.cu writes each row's extra loss in double; this rounds it to the float32 row loss
//     of CratTransfuse and reports a row whose label lies outside 0..C (the mixing kernel has made that row NaN).
// Row sums (lse, losses) accumulate in double; the float results agree with the CPU backend within a few ulp of
// expf / logf and the summation order.
//
// Layout: see long_tail_args. Launch: the per-row kernels run one warp per row (grid-stride over rows, blocks a
// multiple of 32 threads); the column kernels one thread per column; scale a 1-D grid-stride loop.
// Synchronization: none on the host. A label outside the op's range (negative, or above C where the op needs a
// class) is recorded in the engine_error record (backend.cuh) and raised at the host's next wait on the stream;
// that row's loss and gradient are NaN.
#include "backend.cuh"

// DeviceErrorLog.Op and ErrorCode values
#define LT_OP_BCE 11
#define LT_OP_FCBL 12
#define LT_OP_CONFUSION 13
#define LT_OP_SOFTMAX_CE 14
#define LT_OP_SEESAW 15
#define LT_OP_CRAT 16
#define LT_ERROR_LABEL 7

struct long_tail_args {
    unsigned long long logits;    // const float (N, K); scale: x
    unsigned long long labels;    // const long long (N)
    unsigned long long w0;        // bce: posWeight (K); fcbl, confusion: A (C, C); softmax CE: weight (K); seesaw: counts (C) int64;
                                  // calibrate: shift (K); scale: factor [1]; crat row loss: the double row losses (N)
    unsigned long long w1;        // bce: negWeightForeground (K); fcbl, confusion: counts (C); calibrate: sd (K)
    unsigned long long w2;        // bce: negWeightBackground (K); confusion: row max and Σ exp scratch (N, 2)
    unsigned long long row_loss;  // float (N)
    unsigned long long grad;      // float (N, K); calibrate, scale: y
    unsigned long long stat_pos;  // bce: gradMagnitudePos (K) or 0
    unsigned long long stat_neg;  // bce: gradMagnitudeNeg (K) or 0
    unsigned long long errors;    // engine_error*
    double scale;
    double alpha;                 // fcbl α; seesaw p
    double beta;                  // fcbl τ; seesaw q
    double eps;                   // seesaw ε
    long long count;              // scale: elements
    int rows;                     // N
    int columns;                  // K
    int num_foreground;           // bce
    int flag;                     // fcbl: reweight; calibrate: softmax
};

static_assert(sizeof(long_tail_args) == 136, "long_tail_args must match LongTailArgs in CudaLongTailKernels.cs");

__device__ __forceinline__ void softplus_sigmoid(float t, float& sp, float& sig)
{
    const float e = expf(-fabsf(t));
    const float one_plus = 1.0f + e;
    sp = nan_max(t, 0.0f) + logf(one_plus);
    sig = t >= 0 ? 1.0f / one_plus : e / one_plus;
}

// The row's label, or -1 (after reporting it) when it lies outside [0, max_label]; max_label < 0: no upper bound.
__device__ __forceinline__ long long row_label(const long_tail_args& a, long long row, long long max_label, int op)
{
    const long long y = reinterpret_cast<const long long*>(a.labels)[row];
    if (y < 0 || (max_label >= 0 && y > max_label)) {
        if ((threadIdx.x & 31) == 0)
            report_error(reinterpret_cast<engine_error*>(a.errors), op, LT_ERROR_LABEL, y, row, max_label >= 0 ? max_label : a.columns);
        return -1;
    }
    return y;
}

__device__ __forceinline__ void poison_row(const long_tail_args& a, long long row, int lane)
{
    float* g = reinterpret_cast<float*>(a.grad) + row * a.columns;
    for (int j = lane; j < a.columns; j += 32) g[j] = quiet_nan();
    if (lane == 0) reinterpret_cast<float*>(a.row_loss)[row] = quiet_nan();
}

extern "C" __global__ void lt_weighted_bce_kernel(const long_tail_args a)
{
    const int lane = threadIdx.x & 31;
    const long long warps = grid_stride() / 32;
    const float s = (float)a.scale;
    const float* pw = reinterpret_cast<const float*>(a.w0);
    for (long long i = grid_first_index() / 32; i < a.rows; i += warps) {
        const long long y = row_label(a, i, -1, LT_OP_BCE);
        if (y < 0) {
            poison_row(a, i, lane);
            continue;
        }
        const float* negw = reinterpret_cast<const float*>(y < a.num_foreground ? a.w1 : a.w2);
        const float* z = reinterpret_cast<const float*>(a.logits) + i * a.columns;
        float* g = reinterpret_cast<float*>(a.grad) + i * a.columns;
        double loss = 0;
        for (int j = lane; j < a.columns; j += 32) {
            const float t = z[j];
            float sp, sig;
            softplus_sigmoid(t, sp, sig);
            if (j == y) {
                loss += (double)(pw[j] * (sp - t));
                g[j] = s * (pw[j] * (sig - 1.0f));
            } else {
                loss += (double)(negw[j] * sp);
                g[j] = s * (negw[j] * sig);
            }
        }
        loss = warp_sum(loss);
        if (lane == 0) reinterpret_cast<float*>(a.row_loss)[i] = (float)loss;
    }
}

extern "C" __global__ void lt_bce_statistics_kernel(const long_tail_args a)
{
    const float* pw = reinterpret_cast<const float*>(a.w0);
    const long long* labels = reinterpret_cast<const long long*>(a.labels);
    for (long long j = grid_first_index(); j < a.columns; j += grid_stride()) {
        double pos = 0, neg = 0;
        for (long long i = 0; i < a.rows; i++) {
            const long long y = labels[i];
            if (y < 0) continue;  // reported by lt_weighted_bce_kernel
            float sp, sig;
            softplus_sigmoid(reinterpret_cast<const float*>(a.logits)[i * a.columns + j], sp, sig);
            if (j == y) {
                pos += (double)(pw[j] * fabsf(sig - 1.0f));
            } else {
                const float* negw = reinterpret_cast<const float*>(y < a.num_foreground ? a.w1 : a.w2);
                neg += (double)(negw[j] * sig);
            }
        }
        reinterpret_cast<float*>(a.stat_pos)[j] = (float)pos;
        reinterpret_cast<float*>(a.stat_neg)[j] = (float)neg;
    }
}

extern "C" __global__ void lt_fcbl_kernel(const long_tail_args a)
{
    const int lane = threadIdx.x & 31;
    const long long warps = grid_stride() / 32;
    const int c = a.columns - 1;
    const float s = (float)a.scale, alpha = (float)a.alpha, tau = (float)a.beta;
    const float* conf = reinterpret_cast<const float*>(a.w0);
    const float* counts = reinterpret_cast<const float*>(a.w1);
    for (long long i = grid_first_index() / 32; i < a.rows; i += warps) {
        const long long y = row_label(a, i, c, LT_OP_FCBL);
        if (y < 0) {
            poison_row(a, i, lane);
            continue;
        }
        const float* z = reinterpret_cast<const float*>(a.logits) + i * a.columns;
        float* g = reinterpret_cast<float*>(a.grad) + i * a.columns;
        const bool positive = y < c;
        const bool margins = positive && a.alpha != 0;
        const bool reweight = positive && a.flag != 0;
        float not_background = 1.0f, bar = 0.0f;
        if (reweight) {
            float sp, sig;
            softplus_sigmoid(z[c], sp, sig);
            not_background = 1.0f - sig;
            bar = nan_min((1.0f / (1.0f + expf(-z[y]))) * not_background, tau);
        }
        const float count_y = margins ? fmaxf(counts[y], 1.0f) : 1.0f;
        double loss = 0;
        for (int j = lane; j < a.columns; j += 32) {
            const float raw = z[j];
            float t = raw;
            if (margins && j < c && j != y) {
                const float row = nan_max(conf[y * c + j] / count_y, 1e-3f);
                const float column = nan_max(conf[(long long)j * c + y] / fmaxf(counts[j], 1.0f), 1e-3f);
                t = raw + (logf(row) - logf(column)) * alpha;
            }
            float sp, sig;
            softplus_sigmoid(t, sp, sig);
            if (j == y) {
                loss += (double)(sp - t);
                g[j] = s * (sig - 1.0f);
                continue;
            }
            float omega = 1.0f;
            if (reweight && j < c) omega = (1.0f / (1.0f + expf(-raw))) * not_background >= bar ? 1.0f : 0.0f;
            loss += (double)(omega * sp);
            g[j] = s * (omega * sig);
        }
        loss = warp_sum(loss);
        if (lane == 0) reinterpret_cast<float*>(a.row_loss)[i] = (float)loss;
    }
}

extern "C" __global__ void lt_confusion_rows_kernel(const long_tail_args a)
{
    const int lane = threadIdx.x & 31;
    const long long warps = grid_stride() / 32;
    const int c = a.columns - 1;
    float* moments = reinterpret_cast<float*>(a.w2);
    for (long long i = grid_first_index() / 32; i < a.rows; i += warps) {
        const long long y = row_label(a, i, -1, LT_OP_CONFUSION);
        if (y < 0 || y >= c) continue;
        const float* z = reinterpret_cast<const float*>(a.logits) + i * a.columns;
        float largest = -__int_as_float(0x7f800000);
        for (int j = lane; j < c; j += 32) largest = nan_max(largest, z[j]);
        for (int d = 16; d > 0; d >>= 1) largest = nan_max(largest, __shfl_xor_sync(ENGINE_FULL_MASK, largest, d));
        double sum = 0;
        for (int j = lane; j < c; j += 32) sum += (double)expf(z[j] - largest);
        sum = warp_sum(sum);
        if (lane == 0) {
            moments[2 * i] = largest;
            moments[2 * i + 1] = (float)sum;
        }
    }
}

extern "C" __global__ void lt_confusion_columns_kernel(const long_tail_args a)
{
    const int c = a.columns - 1;
    const long long* labels = reinterpret_cast<const long long*>(a.labels);
    const float* moments = reinterpret_cast<const float*>(a.w2);
    float* conf = reinterpret_cast<float*>(a.w0);
    float* counts = reinterpret_cast<float*>(a.w1);
    // threads 0..C-1 own one column of A each; thread C owns the counts
    for (long long j = grid_first_index(); j <= c; j += grid_stride()) {
        for (long long i = 0; i < a.rows; i++) {
            const long long y = labels[i];
            if (y < 0 || y >= c) continue;
            if (j == c) counts[y] += 1.0f;
            else conf[y * c + j] += expf(reinterpret_cast<const float*>(a.logits)[i * a.columns + j] - moments[2 * i]) / moments[2 * i + 1];
        }
    }
}

extern "C" __global__ void lt_softmax_ce_kernel(const long_tail_args a)
{
    const int lane = threadIdx.x & 31;
    const long long warps = grid_stride() / 32;
    const float* weight = reinterpret_cast<const float*>(a.w0);
    for (long long i = grid_first_index() / 32; i < a.rows; i += warps) {
        const long long y = row_label(a, i, a.columns - 1, LT_OP_SOFTMAX_CE);
        if (y < 0) {
            poison_row(a, i, lane);
            continue;
        }
        const float* z = reinterpret_cast<const float*>(a.logits) + i * a.columns;
        float* g = reinterpret_cast<float*>(a.grad) + i * a.columns;
        float largest = -__int_as_float(0x7f800000);
        for (int j = lane; j < a.columns; j += 32) largest = nan_max(largest, z[j]);
        for (int d = 16; d > 0; d >>= 1) largest = nan_max(largest, __shfl_xor_sync(ENGINE_FULL_MASK, largest, d));
        double sum = 0;
        for (int j = lane; j < a.columns; j += 32) sum += (double)expf(z[j] - largest);
        sum = warp_sum(sum);
        const float lse = largest + (float)log(sum);
        const float wy = weight[y];
        const float factor = (float)(a.scale * wy);
        for (int j = lane; j < a.columns; j += 32) g[j] = factor * (expf(z[j] - lse) - (j == y ? 1.0f : 0.0f));
        if (lane == 0) reinterpret_cast<float*>(a.row_loss)[i] = -wy * (z[y] - lse);
    }
}

extern "C" __global__ void lt_seesaw_kernel(const long_tail_args a)
{
    const int lane = threadIdx.x & 31;
    const long long warps = grid_stride() / 32;
    const int c = a.columns - 2;
    const float s = (float)a.scale, p = (float)a.alpha, q = (float)a.beta, log_eps = (float)log(a.eps);
    const long long* counts = reinterpret_cast<const long long*>(a.w0);
    for (long long i = grid_first_index() / 32; i < a.rows; i += warps) {
        const long long y = row_label(a, i, c, LT_OP_SEESAW);
        if (y < 0) {
            poison_row(a, i, lane);
            continue;
        }
        const float* u = reinterpret_cast<const float*>(a.logits) + i * a.columns;
        float* g = reinterpret_cast<float*>(a.grad) + i * a.columns;
        const bool positive = y < c;
        float class_loss = 0.0f;
        if (positive) {
            // ln s = u − lse(u)
            float largest = -__int_as_float(0x7f800000);
            for (int j = lane; j < c; j += 32) largest = nan_max(largest, u[j]);
            for (int d = 16; d > 0; d >>= 1) largest = nan_max(largest, __shfl_xor_sync(ENGINE_FULL_MASK, largest, d));
            double sum = 0;
            for (int j = lane; j < c; j += 32) sum += (double)expf(u[j] - largest);
            sum = warp_sum(sum);
            const float lse = largest + (float)log(sum);
            const float log_count_y = (float)log((double)(counts[y] > 1 ? counts[y] : 1));
            const float reference = nan_max(u[y] - lse, log_eps);
            // shifted logits u_j + ln S_yj, recomputed per pass
#define SEESAW_SHIFTED(j)                                                                                              \
    ((j) == y ? u[j]                                                                                                   \
              : u[j] + (p * nan_min((float)log((double)(counts[j] > 1 ? counts[j] : 1)) - log_count_y, 0.0f) +          \
                        q * nan_max((u[j] - lse) - reference, 0.0f)))
            float top = -__int_as_float(0x7f800000);
            for (int j = lane; j < c; j += 32) top = nan_max(top, SEESAW_SHIFTED(j));
            for (int d = 16; d > 0; d >>= 1) top = nan_max(top, __shfl_xor_sync(ENGINE_FULL_MASK, top, d));
            double total = 0;
            for (int j = lane; j < c; j += 32) total += (double)expf(SEESAW_SHIFTED(j) - top);
            total = warp_sum(total);
            const float lse2 = top + (float)log(total);
            for (int j = lane; j < c; j += 32) g[j] = s * (expf(SEESAW_SHIFTED(j) - lse2) - (j == y ? 1.0f : 0.0f));
#undef SEESAW_SHIFTED
            class_loss = -(u[y] - lse2);
        } else {
            for (int j = lane; j < c; j += 32) g[j] = 0.0f;
        }
        if (lane == 0) {
            const float ofg = u[c], obg = u[c + 1];
            const float m = nan_max(ofg, obg);
            const float lse = m + logf(expf(ofg - m) + expf(obg - m));
            const float lp_fg = ofg - lse, lp_bg = obg - lse;
            g[c] = s * (expf(lp_fg) - (positive ? 1.0f : 0.0f));
            g[c + 1] = s * (expf(lp_bg) - (positive ? 0.0f : 1.0f));
            reinterpret_cast<float*>(a.row_loss)[i] = class_loss + (positive ? -lp_fg : -lp_bg);
        }
    }
}

extern "C" __global__ void lt_calibrate_kernel(const long_tail_args a)
{
    const int lane = threadIdx.x & 31;
    const long long warps = grid_stride() / 32;
    const float* shift = reinterpret_cast<const float*>(a.w0);
    const float* sd = reinterpret_cast<const float*>(a.w1);
    for (long long i = grid_first_index() / 32; i < a.rows; i += warps) {
        const float* z = reinterpret_cast<const float*>(a.logits) + i * a.columns;
        float* out = reinterpret_cast<float*>(a.grad) + i * a.columns;
        if (!a.flag) {
            for (int j = lane; j < a.columns; j += 32) out[j] = (z[j] - shift[j]) / sd[j];
            continue;
        }
        float largest = -__int_as_float(0x7f800000);
        for (int j = lane; j < a.columns; j += 32) largest = nan_max(largest, (z[j] - shift[j]) / sd[j]);
        for (int d = 16; d > 0; d >>= 1) largest = nan_max(largest, __shfl_xor_sync(ENGINE_FULL_MASK, largest, d));
        double sum = 0;
        for (int j = lane; j < a.columns; j += 32) sum += (double)expf((z[j] - shift[j]) / sd[j] - largest);
        sum = warp_sum(sum);
        const float total = (float)sum;
        for (int j = lane; j < a.columns; j += 32) out[j] = expf((z[j] - shift[j]) / sd[j] - largest) / total;
    }
}

extern "C" __global__ void lt_scale_kernel(const long_tail_args a)
{
    const float* x = reinterpret_cast<const float*>(a.logits);
    float* y = reinterpret_cast<float*>(a.grad);
    const float f = reinterpret_cast<const float*>(a.w0)[0];
    for (long long e = grid_first_index(); e < a.count; e += grid_stride()) y[e] = x[e] * f;
}

// rows = R, columns = C; one thread per row
extern "C" __global__ void lt_crat_row_loss_kernel(const long_tail_args a)
{
    const double* source = reinterpret_cast<const double*>(a.w0);
    const long long* labels = reinterpret_cast<const long long*>(a.labels);
    float* loss = reinterpret_cast<float*>(a.row_loss);
    for (long long n = grid_first_index(); n < a.rows; n += grid_stride()) {
        const long long y = labels[n];
        if (y < 0 || y > a.columns)
            report_error(reinterpret_cast<engine_error*>(a.errors), LT_OP_CRAT, LT_ERROR_LABEL, y, n, a.columns);
        loss[n] = (float)source[n];
    }
}
