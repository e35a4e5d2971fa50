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
// Launch: logit_norm_update_kernel uses blocks of (columns, slices) threads, at most 1024 (16 × 64 by default,
//   LogitNormKernels.StatisticsBlock): blockDim.x columns per block, blockDim.y row slices; grid = ceil(K / blockDim.x)
//   blocks (a grid-stride loop covers any grid). Each thread loads LOGN_HELD_ROWS of its rows at once and keeps them
//   in registers for the second pass when N ≤ slices · LOGN_HELD_ROWS (1024 rows at 16 × 64); beyond that it reads
//   them again. The slices' sums are added as a tree, fixed for a block shape, so a shape gives fixed bits. In exact
//   mode logit_norm_count_kernel (any launch) then adds N to count, after every column has read the old count.
//   logit_norm_calibrate_kernel: one block of 32..1024 threads (a multiple of 32) per row, grid-stride over rows; each
//   block recomputes β from μ, so the calibration is one launch and reads no host value.
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
// columns × row slices over column strips, rows held in registers from the sums to the output when they fit), so a
// block shape gives fixed bits.
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

// Rows of its column that one thread loads at once into registers (LogitNormKernels.StatisticsBlock's note): all of
// them in flight together, where a loop of single loads keeps a few. When the thread's rows number at most this, the
// later passes read them from the registers instead of from memory.
#define LOGN_HELD_ROWS 16

// Adds the block's per-slice values of each column: a tree over the slices (pairs at distance 1, 2, 4, …, any slice
// count), fixed for a block shape. Returns the column's total to every thread. Every thread of the block calls it.
__device__ __forceinline__ double sum_over_slices(double* partial, double own)
{
    const int tx = threadIdx.x, ty = threadIdx.y, width = blockDim.x, slices = blockDim.y;
    partial[ty * width + tx] = own;
    __syncthreads();
    for (int span = 1; span < slices; span *= 2) {
        if ((ty & (2 * span - 1)) == 0 && ty + span < slices) partial[ty * width + tx] += partial[(ty + span) * width + tx];
        __syncthreads();
    }
    const double total = partial[tx];
    __syncthreads();
    return total;
}

// Loads thread (tx, ty)'s rows base, base + slices, … (LOGN_HELD_ROWS of them) of column k; rows past the end read 0.
__device__ __forceinline__ void load_rows(const float* z, int rows, int columns, int k, int base, float (&held)[LOGN_HELD_ROWS])
{
#pragma unroll
    for (int r = 0; r < LOGN_HELD_ROWS; ++r) {
        const int i = base + r * blockDim.y;
        held[r] = i < rows ? z[(long long)i * columns + k] : 0.0f;
    }
}

// Column k's batch mean and Σ_i (z_ik − mean)² over all rows, in double, for every thread of the block (thread (tx, ty)
// adds rows ty, ty + slices, … in row order; sum_over_slices adds the slices). A thread past the last column gets
// zeros. Returns whether the thread's rows are all in `held` (rows ≤ slices · LOGN_HELD_ROWS), row ty + r·slices at r.
// Every thread of the block must call it (it synchronizes).
__device__ __forceinline__ bool column_moments(const float* z, int rows, int columns, int k, double* partial, double& batch_mean,
                                               double& squares, float (&held)[LOGN_HELD_ROWS])
{
    const int ty = threadIdx.y, slices = blockDim.y;
    const bool kept = rows <= slices * LOGN_HELD_ROWS;
    double sum = 0.0;
    if (k < columns)
        for (int base = ty; base < rows; base += slices * LOGN_HELD_ROWS) {
            load_rows(z, rows, columns, k, base, held);
#pragma unroll
            for (int r = 0; r < LOGN_HELD_ROWS; ++r) sum += (double)held[r];   // + 0 past the end changes no sum
        }
    batch_mean = sum_over_slices(partial, sum) / rows;

    double own = 0.0;
    if (k < columns)
        for (int base = ty; base < rows; base += slices * LOGN_HELD_ROWS) {
            if (!kept) load_rows(z, rows, columns, k, base, held);
#pragma unroll
            for (int r = 0; r < LOGN_HELD_ROWS; ++r)
                if (base + r * slices < rows) {
                    const double d = (double)held[r] - batch_mean;
                    own = __dadd_rn(own, __dmul_rn(d, d));
                }
        }
    squares = sum_over_slices(partial, own);
    return kept;
}

// μ ← (1 − m)·μ + m·a, v ← (1 − m)·v + m·S / (N − 1), with correctly rounded double operations (the CPU backend's).
__device__ __forceinline__ void ema_update(float* mean, float* variance, int k, double momentum, double batch_mean, double squares, int rows)
{
    const double keep = 1.0 - momentum;
    const double b = squares / (rows - 1);
    mean[k] = (float)__dadd_rn(__dmul_rn(keep, (double)mean[k]), __dmul_rn(momentum, batch_mean));
    variance[k] = (float)__dadd_rn(__dmul_rn(keep, (double)variance[k]), __dmul_rn(momentum, b));
}

extern "C" __global__ void __launch_bounds__(1024) logit_norm_update_kernel(const logit_norm_args a)
{
    __shared__ double partial[1024];   // [slice][column] of the block's blockDim.y × blockDim.x threads
    const float* z = reinterpret_cast<const float*>(a.logits);
    float* mean = reinterpret_cast<float*>(a.mean);
    float* second = reinterpret_cast<float*>(a.variance);
    const int width = blockDim.x;
    for (int first = blockIdx.x * width; first < a.columns; first += gridDim.x * width) {
        const int k = first + threadIdx.x;
        double batch_mean, ss;
        float held[LOGN_HELD_ROWS];
        column_moments(z, a.rows, a.columns, k, partial, batch_mean, ss, held);
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

extern "C" __global__ void __launch_bounds__(1024) logit_norm_standardize_kernel(const logit_standardize_args a)
{
    __shared__ double partial[1024];
    const float* z = reinterpret_cast<const float*>(a.input);
    float* y = reinterpret_cast<float*>(a.output);
    float* inverse_sd = reinterpret_cast<float*>(a.inverse_sd);
    const int width = blockDim.x, slices = blockDim.y;
    for (int first = blockIdx.x * width; first < a.columns; first += gridDim.x * width) {
        const int k = first + threadIdx.x;
        double batch_mean, ss;
        float held[LOGN_HELD_ROWS];
        const bool kept = column_moments(z, a.rows, a.columns, k, partial, batch_mean, ss, held);   // every slice writes y with r
        if (k >= a.columns) continue;   // no barrier follows in this strip
        const double r = 1.0 / sqrt(ss / a.rows + a.eps);
        if (threadIdx.y == 0) {
            inverse_sd[k] = (float)r;
            if (a.mean) ema_update(reinterpret_cast<float*>(a.mean), reinterpret_cast<float*>(a.variance), k, a.momentum, batch_mean, ss, a.rows);
        }
        if (kept) {
#pragma unroll
            for (int q = 0; q < LOGN_HELD_ROWS; ++q) {
                const int i = threadIdx.y + q * slices;
                if (i < a.rows) y[(long long)i * a.columns + k] = (float)(((double)held[q] - batch_mean) * r);
            }
        } else {
            for (int i = threadIdx.y; i < a.rows; i += slices) {
                const long long at = (long long)i * a.columns + k;
                y[at] = (float)(((double)z[at] - batch_mean) * r);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(1024) logit_norm_standardize_backward_kernel(const logit_standardize_args a)
{
    __shared__ double partial[1024];
    const float* y = reinterpret_cast<const float*>(a.input);
    const float* g = reinterpret_cast<const float*>(a.gradient);
    float* gx = reinterpret_cast<float*>(a.output);
    const float* inverse_sd = reinterpret_cast<const float*>(a.inverse_sd);
    const int ty = threadIdx.y, width = blockDim.x, slices = blockDim.y;
    const bool kept = a.rows <= slices * LOGN_HELD_ROWS;
    for (int first = blockIdx.x * width; first < a.columns; first += gridDim.x * width) {
        const int k = first + threadIdx.x;
        double sg = 0.0, sgy = 0.0;
        float held_g[LOGN_HELD_ROWS], held_y[LOGN_HELD_ROWS];
        if (k < a.columns)
            for (int base = ty; base < a.rows; base += slices * LOGN_HELD_ROWS) {
                load_rows(g, a.rows, a.columns, k, base, held_g);
                load_rows(y, a.rows, a.columns, k, base, held_y);
#pragma unroll
                for (int r = 0; r < LOGN_HELD_ROWS; ++r) {   // + 0 past the end changes no sum
                    const double gi = held_g[r];
                    sg += gi;
                    sgy += gi * (double)held_y[r];
                }
            }
        const double total_g = sum_over_slices(partial, sg);
        const double total_gy = sum_over_slices(partial, sgy);
        if (k >= a.columns) continue;   // no barrier follows in this strip
        const double mean_g = total_g / a.rows, mean_gy = total_gy / a.rows, r = inverse_sd[k];
        if (kept) {
#pragma unroll
            for (int q = 0; q < LOGN_HELD_ROWS; ++q) {
                const int i = ty + q * slices;
                if (i < a.rows) gx[(long long)i * a.columns + k] = (float)(r * ((double)held_g[q] - mean_g - (double)held_y[q] * mean_gy));
            }
        } else {
            for (int i = ty; i < a.rows; i += slices) {
                const long long at = (long long)i * a.columns + k;
                gx[at] = (float)(r * ((double)g[at] - mean_g - (double)y[at] * mean_gy));
            }
        }
    }
}
