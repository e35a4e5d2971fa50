// LogN, logit normalization (long-tail-methods.md section 2; Zhao, Teng, Wang, IJCV 2024), float32 logits of a
// softmax head with C foreground columns and the background last (K = C + 1 columns).
//
// Statistics (2.1), per column k over the N ≥ 2 rows of a batch, every column including the background (as the
// CPU backend and LogitNormCalibrator do; the calibration ignores the background's statistics):
//   a_k = (1/N) Σ_i z_ik,  b_k = (1/(N − 1)) Σ_i (z_ik − a_k)²   (two passes, double accumulation)
//   EMA:   μ_k ← (1 − m)·μ_k + m·a_k,  v_k ← (1 − m)·v_k + m·b_k
//   exact: Chan et al.'s merge of the batch into (count, μ, M2): δ = a_k − μ_k, μ_k += δ·N/(count + N),
//          M2_k += Σ_i (z_ik − a_k)² + δ²·count·N/(count + N), then count += N.
// The update is computed in double with correctly rounded operations and stored as float, so μ and v match the
// CPU backend's to the last bit whenever the two double sums round alike.
// Calibration (2.2): β = min over foreground c of μ_c, shift_c = μ_c − β (formed in double from the floats, then
// rounded, as LogitNormCalibrator.Calibration does), sd_c = sqrt(max(v_c, 1e-11)) in float; for c < C
//   z'_ic = (z_ic − shift_c) / sd_c,   z'_iC = z_iC (bit-identical: shift 0, sd 1),
// then optionally p_i = softmax(z'_i) (max-subtracted). Without the softmax the result equals the CPU backend's
// float subtraction and division bit for bit.
//
// Layout: logits (N, K) dense row-major; mean, variance (or M2) (K) float; count int64 [1] (exact mode); y (N, K).
// Launch: logit_norm_update_kernel uses blocks of (columns, slices) threads, at most 1024 (32 × 32 by default,
//   LogitNormKernels.StatisticsBlock): blockDim.x columns per block, blockDim.y row slices; grid = ceil(K / blockDim.x)
//   blocks (a grid-stride loop covers any grid). In exact mode logit_norm_count_kernel (any
//   launch) then adds N to count, after every column has read the old count. logit_norm_calibrate_kernel: one
//   block of 32..1024 threads (a multiple of 32) per row, grid-stride over rows; each block recomputes β from μ,
//   so the calibration is one launch and reads no host value.
//
// Batch standardization of `repo` mode (2.3: the affine-free batch normalization of the logits before the softmax CE,
// eps 1e-5), fused with the EMA update above so the training step reads the logits for its statistics once:
//   forward:  a_k and S_k = Σ_i (z_ik − a_k)² as above, r_k = 1 / sqrt(S_k / N + eps) (biased variance, as torch's
//             BatchNorm1d normalizes), y_ik = (z_ik − a_k)·r_k (in double, rounded once), r_k stored for the backward;
//             with running statistics, μ and v follow the EMA with the unbiased S_k / (N − 1) in the same launch.
//   backward: with ḡ_k = (1/N) Σ_i g_ik and c_k = (1/N) Σ_i g_ik·y_ik (double),
//             ∂L/∂z_ik = r_k·(g_ik − ḡ_k − y_ik·c_k)
//             (the chain rule through the mean and the variance; LogitNormReference.StandardizeBackward spells out
//             the Jacobian and the tests compare against it).
// Layout: z, y, g, ∂L/∂z (N, K) dense row-major; r, μ, v (K) float. Launch: as logit_norm_update_kernel (blocks of
// columns × row slices over column strips); the sums over slices run in slice order, so a block shape gives fixed bits.
// Synchronization: none; the forward's running update is in place like the update kernel's.
#include "common.cuh"

struct logit_norm_args {
    unsigned long long logits;    // const float (N, K)
    unsigned long long mean;      // float (K)
    unsigned long long variance;  // float (K): v (EMA, calibration) or M2 (exact)
    unsigned long long count;     // long long [1] (exact mode)
    unsigned long long output;    // float (N, K) (calibration)
    double momentum;
    int rows;                     // N
    int columns;                  // K = C + 1
    int exact;
    int softmax;
};

static_assert(sizeof(logit_norm_args) == 64, "logit_norm_args must match the host layout");

struct logit_standardize_args {
    unsigned long long input;       // const float (N, K): z (forward) or y (backward)
    unsigned long long gradient;    // const float (N, K): ∂L/∂y (backward)
    unsigned long long output;      // float (N, K): y (forward) or ∂L/∂z (backward)
    unsigned long long inverse_sd;  // float (K): r, written by the forward, read by the backward
    unsigned long long mean;        // float (K): running mean, updated in place by the forward; 0 = no update
    unsigned long long variance;    // float (K): running variance
    double momentum;
    double eps;
    int rows;                       // N ≥ 2
    int columns;                    // K
};

static_assert(sizeof(logit_standardize_args) == 72, "logit_standardize_args must match the host layout");

// Column k's batch mean and Σ_i (z_ik − mean)² over all rows, in double (thread (tx, ty) walks rows ty, ty + slices, …;
// the slices' partial sums are added in slice order). Every thread gets the mean; the sum of squares goes to every
// thread when squares_everywhere, else to the first slice only (threads past the last column get zeros). Every thread of
// the block must call it (it synchronizes).
__device__ __forceinline__ void column_moments(const float* z, int rows, int columns, int k, bool squares_everywhere, double* partial,
                                               double& batch_mean, double& squares)
{
    const int tx = threadIdx.x, ty = threadIdx.y, width = blockDim.x, slices = blockDim.y;
    double sum = 0.0;
    if (k < columns)
        for (int i = ty; i < rows; i += slices) sum += (double)z[(long long)i * columns + k];
    partial[ty * width + tx] = sum;
    __syncthreads();
    double total = 0.0;
    for (int s = 0; s < slices; ++s) total += partial[s * width + tx];
    batch_mean = total / rows;
    __syncthreads();

    double own = 0.0;
    if (k < columns)
        for (int i = ty; i < rows; i += slices) {
            const double d = (double)z[(long long)i * columns + k] - batch_mean;
            own = __dadd_rn(own, __dmul_rn(d, d));
        }
    partial[ty * width + tx] = own;
    __syncthreads();
    squares = 0.0;
    if (squares_everywhere || ty == 0)
        for (int s = 0; s < slices; ++s) squares += partial[s * width + tx];
    __syncthreads();
}

// μ ← (1 − m)·μ + m·a, v ← (1 − m)·v + m·S / (N − 1), with correctly rounded double operations (the CPU backend's).
__device__ __forceinline__ void ema_update(float* mean, float* variance, int k, double momentum, double batch_mean, double squares, int rows)
{
    const double keep = 1.0 - momentum;
    const double b = squares / (rows - 1);
    mean[k] = (float)__dadd_rn(__dmul_rn(keep, (double)mean[k]), __dmul_rn(momentum, batch_mean));
    variance[k] = (float)__dadd_rn(__dmul_rn(keep, (double)variance[k]), __dmul_rn(momentum, b));
}

extern "C" __global__ void logit_norm_update_kernel(const logit_norm_args a)
{
    __shared__ double partial[1024];   // [slice][column] of the block's blockDim.y × blockDim.x threads
    const float* z = reinterpret_cast<const float*>(a.logits);
    float* mean = reinterpret_cast<float*>(a.mean);
    float* second = reinterpret_cast<float*>(a.variance);
    const int width = blockDim.x;
    for (int first = blockIdx.x * width; first < a.columns; first += gridDim.x * width) {
        const int k = first + threadIdx.x;
        double batch_mean, ss;
        column_moments(z, a.rows, a.columns, k, false, partial, batch_mean, ss);
        if (threadIdx.y != 0 || k >= a.columns) continue;
        if (!a.exact) {
            ema_update(mean, second, k, a.momentum, batch_mean, ss, a.rows);
        } else {
            const double seen = (double)*reinterpret_cast<const long long*>(a.count);
            const double n = a.rows, total_rows = seen + n;
            const double delta = batch_mean - (double)mean[k];
            mean[k] = (float)((double)mean[k] + __ddiv_rn(__dmul_rn(delta, n), total_rows));
            const double cross = __ddiv_rn(__dmul_rn(__dmul_rn(__dmul_rn(delta, delta), seen), n), total_rows);
            second[k] = (float)__dadd_rn(__dadd_rn((double)second[k], ss), cross);
        }
    }
}

// Exact mode, after logit_norm_update_kernel: count += N.
extern "C" __global__ void logit_norm_count_kernel(const logit_norm_args a)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) *reinterpret_cast<long long*>(a.count) += a.rows;
}

extern "C" __global__ void logit_norm_calibrate_kernel(const logit_norm_args a)
{
    __shared__ float scratch[32];
    const float* z = reinterpret_cast<const float*>(a.logits);
    const float* mean = reinterpret_cast<const float*>(a.mean);
    const float* variance = reinterpret_cast<const float*>(a.variance);
    float* y = reinterpret_cast<float*>(a.output);
    const int foreground = a.columns - 1;
    const float infinity = __int_as_float(0x7f800000);

    // β = min over the foreground means, recomputed by every block (C reads, cheaper than a launch)
    float lowest = infinity;
    for (int c = threadIdx.x; c < foreground; c += blockDim.x) lowest = fminf(lowest, mean[c]);
    const float beta = -block_max(-lowest, -infinity, scratch);

    for (long long i = blockIdx.x; i < a.rows; i += gridDim.x) {
        const float* row = z + i * a.columns;
        float* out = y + i * a.columns;
        float largest = -infinity;
        for (int c = threadIdx.x; c < a.columns; c += blockDim.x) {
            float t = row[c];
            if (c < foreground) {
                const float shift = (float)((double)mean[c] - (double)beta);
                const float sd = sqrtf(nan_max(variance[c], 1e-11f));
                t = __fdiv_rn(__fsub_rn(t, shift), sd);
            }
            out[c] = t;
            largest = fmaxf(largest, t);
        }
        if (!a.softmax) continue;   // uniform over the block
        largest = block_max(largest, -infinity, scratch);
        float sum = 0.0f;
        for (int c = threadIdx.x; c < a.columns; c += blockDim.x) {
            const float e = expf(out[c] - largest);
            out[c] = e;
            sum += e;
        }
        sum = block_sum(sum, scratch);
        for (int c = threadIdx.x; c < a.columns; c += blockDim.x) out[c] = out[c] / sum;
    }
}

extern "C" __global__ void logit_norm_standardize_kernel(const logit_standardize_args a)
{
    __shared__ double partial[1024];
    const float* z = reinterpret_cast<const float*>(a.input);
    float* y = reinterpret_cast<float*>(a.output);
    float* inverse_sd = reinterpret_cast<float*>(a.inverse_sd);
    const int width = blockDim.x, slices = blockDim.y;
    for (int first = blockIdx.x * width; first < a.columns; first += gridDim.x * width) {
        const int k = first + threadIdx.x;
        double batch_mean, ss;
        column_moments(z, a.rows, a.columns, k, true, partial, batch_mean, ss);   // every slice writes y with r
        if (k >= a.columns) continue;   // no barrier follows in this strip
        const double r = 1.0 / sqrt(ss / a.rows + a.eps);
        if (threadIdx.y == 0) {
            inverse_sd[k] = (float)r;
            if (a.mean) ema_update(reinterpret_cast<float*>(a.mean), reinterpret_cast<float*>(a.variance), k, a.momentum, batch_mean, ss, a.rows);
        }
        for (int i = threadIdx.y; i < a.rows; i += slices) {
            const long long at = (long long)i * a.columns + k;
            y[at] = (float)(((double)z[at] - batch_mean) * r);
        }
    }
}

extern "C" __global__ void logit_norm_standardize_backward_kernel(const logit_standardize_args a)
{
    __shared__ double partial_g[1024];
    __shared__ double partial_gy[1024];
    const float* y = reinterpret_cast<const float*>(a.input);
    const float* g = reinterpret_cast<const float*>(a.gradient);
    float* gx = reinterpret_cast<float*>(a.output);
    const float* inverse_sd = reinterpret_cast<const float*>(a.inverse_sd);
    const int tx = threadIdx.x, ty = threadIdx.y, width = blockDim.x, slices = blockDim.y;
    for (int first = blockIdx.x * width; first < a.columns; first += gridDim.x * width) {
        const int k = first + tx;
        double sg = 0.0, sgy = 0.0;
        if (k < a.columns)
            for (int i = ty; i < a.rows; i += slices) {
                const long long at = (long long)i * a.columns + k;
                const double gi = g[at];
                sg += gi;
                sgy += gi * (double)y[at];
            }
        partial_g[ty * width + tx] = sg;
        partial_gy[ty * width + tx] = sgy;
        __syncthreads();
        double total_g = 0.0, total_gy = 0.0;
        for (int s = 0; s < slices; ++s) {
            total_g += partial_g[s * width + tx];
            total_gy += partial_gy[s * width + tx];
        }
        __syncthreads();
        if (k >= a.columns) continue;
        const double mean_g = total_g / a.rows, mean_gy = total_gy / a.rows, r = inverse_sd[k];
        for (int i = ty; i < a.rows; i += slices) {
            const long long at = (long long)i * a.columns + k;
            gx[at] = (float)(r * ((double)g[at] - mean_g - (double)y[at] * mean_gy));
        }
    }
}
