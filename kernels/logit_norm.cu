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
// Synchronization: none; the update kernels modify μ, v / M2 and count in place, so launches on one stream are
// ordered and nothing else may touch those buffers concurrently.
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

extern "C" __global__ void logit_norm_update_kernel(const logit_norm_args a)
{
    __shared__ double partial[1024];   // [slice][column] of the block's blockDim.y × blockDim.x threads
    const float* z = reinterpret_cast<const float*>(a.logits);
    float* mean = reinterpret_cast<float*>(a.mean);
    float* second = reinterpret_cast<float*>(a.variance);
    const int tx = threadIdx.x, ty = threadIdx.y, width = blockDim.x, slices = blockDim.y;
    for (int first = blockIdx.x * width; first < a.columns; first += gridDim.x * width) {
        const int k = first + tx;
        double sum = 0.0;
        if (k < a.columns)
            for (int i = ty; i < a.rows; i += slices) sum += (double)z[(long long)i * a.columns + k];
        partial[ty * width + tx] = sum;
        __syncthreads();
        double total = 0.0;
        for (int s = 0; s < slices; ++s) total += partial[s * width + tx];
        const double batch_mean = total / a.rows;
        __syncthreads();

        double squares = 0.0;
        if (k < a.columns)
            for (int i = ty; i < a.rows; i += slices) {
                const double d = (double)z[(long long)i * a.columns + k] - batch_mean;
                squares = __dadd_rn(squares, __dmul_rn(d, d));
            }
        partial[ty * width + tx] = squares;
        __syncthreads();
        if (ty == 0 && k < a.columns) {
            double ss = 0.0;
            for (int s = 0; s < slices; ++s) ss += partial[s * width + tx];
            if (!a.exact) {
                const double m = a.momentum, keep = 1.0 - m;
                const double b = ss / (a.rows - 1);
                mean[k] = (float)__dadd_rn(__dmul_rn(keep, (double)mean[k]), __dmul_rn(m, batch_mean));
                second[k] = (float)__dadd_rn(__dmul_rn(keep, (double)second[k]), __dmul_rn(m, b));
            } else {
                const double seen = (double)*reinterpret_cast<const long long*>(a.count);
                const double n = a.rows, total_rows = seen + n;
                const double delta = batch_mean - (double)mean[k];
                mean[k] = (float)((double)mean[k] + __ddiv_rn(__dmul_rn(delta, n), total_rows));
                const double cross = __ddiv_rn(__dmul_rn(__dmul_rn(__dmul_rn(delta, delta), seen), n), total_rows);
                second[k] = (float)__dadd_rn(__dadd_rn((double)second[k], ss), cross);
            }
        }
        __syncthreads();
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
