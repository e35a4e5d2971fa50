// CRAT, cross-class gradient transfusing for the box regressor (long-tail-methods.md section 3, the code's
// behaviour; Engine.LongTail.CratTransfuser is the CPU implementation whose numbers these kernels reproduce):
// the per-class Fisher bank update and the cross-class mixing weights with the transfused gradient.
//
// Formula, for R RoIs with labels y_n (C = background), L1 residuals r_{n,c,k} = Δ_{n,4c+k} − t_{n,k}, embeddings
// x_n (D), normalizer N and positives P = {n : y_n < C}:
//   Fisher (3.2)   g_c[4f+k] = (1/N) Σ_{n∈P, y_n=c} sign(r_{n,c,k})·x_{n,f};  F[c] ← (1 − a)F[c] + a·g_c² for every
//                  class present among the positives (absent classes unchanged). The sum runs over the class's rows
//                  in row order in double, and the update uses correctly rounded double operations, as the CPU does.
//   similarity     s_{n,c} = cos(q_n, F_c) / T = q_n·F_c / (max(‖q_n‖, 1e-12)·max(‖F_c‖, 1e-12)) / T with
//     (3.3)        first sample: q = sign(r_{n0,y_n0,k})·x_{n0,f} / N of the first positive n0, for every positive;
//                  per sample:   q_n[4f+k] = x_{n,f}²/N², so q_n·F_c = Σ_f q_{n,f}·Σ_k F_c[4f+k] and ‖q_n‖ =
//                  2·sqrt(Σ_f q_{n,f}²): a (P, D) × (D, C) product of unit-scale float operands (as the CPU's matmul).
//   weights        w_{n,c} = u_c·softmax_{c≠y_n}(s_{n,c}) (max-subtracted, double), w_{n,y_n} = 0, gate
//                  u_c = [Σ_i F_c[i] ≠ 0] applied after the softmax; background rows are 0.
//   mixing (3.4)   the transfused gradient e_{n,4c+k} = λ_b·w_{n,c}·sign(r_{n,c,k}) (0 where w = 0), added by the
//                  caller to the regressor's incoming gradient, and the loss λ_b·Σ_c w_{n,c}·|r_{n,c,k}| per row.
//
// Layout: deltas (R, 4C), embeddings (R, D), targets (R, 4), labels (R) int64, Fisher bank (C, 4D) feature-major,
// coordinate-minor (index 4f + k); outputs weights / ungated weights (R, C) float, extra gradient (R, 4C) float,
// row loss (R) double. Workspace: class_start (C + 1), class_cursor (C), rows_by_class (R), positive_of_row (R)
// int32; batch_info int32 [3] = (positives, first positive row, invalid labels); class_norm (C) double,
// class_gate (C) int32; collapsed (C, D) and query (R, D) float (per-sample query only); logits (R, C) double.
// A label outside [0, C] makes every output of its row NaN.
//
// Launch, in stream order (the launcher issues them):
//   1. crat_bucket_kernel          one block of 256 threads: counts per class, class_start, the class's rows in row
//                                  order, each row's index among the positives, the first positive.
//   2. crat_fisher_update_kernel   grid-stride over C·4D bank elements (skipped when the bank is not updated).
//   3. crat_class_kernel           one block of 256 threads per class, grid-stride: ‖F_c‖, u_c, and the first-sample
//                                  similarity s_c (or the per-sample query's collapsed F_c / ‖F_c‖).
//   4. crat_query_kernel           per-sample only: one block of 256 threads per row, grid-stride: the unit query.
//   5. crat_similarity_kernel      per-sample only: 16 × 16 thread blocks, one 16 × 16 tile of (P, C) per block.
//   6. crat_mixing_kernel          one block of 256 threads per row, grid-stride: weights, gradient and row loss
//                                  over the flat (R, 4C) gradient buffer in one launch.
// Synchronization: none on the host; steps 2-6 read what the earlier launches on the same stream wrote. A batch
// without positives leaves the bank unchanged and writes zero weights, gradient and loss.
#include "common.cuh"

#define CRAT_THREADS 256
#define CRAT_TILE 16

struct crat_args {
    unsigned long long deltas;          // const float (R, 4C)
    unsigned long long embeddings;      // const float (R, D)
    unsigned long long targets;         // const float (R, 4)
    unsigned long long labels;          // const long long (R)
    unsigned long long fisher;          // float (C, 4D), updated in place
    unsigned long long class_start;     // int (C + 1)
    unsigned long long class_cursor;    // int (C)
    unsigned long long rows_by_class;   // int (R)
    unsigned long long positive_of_row; // int (R): index among the positives, -1 for other rows
    unsigned long long batch_info;      // int [3]
    unsigned long long class_norm;      // double (C)
    unsigned long long class_gate;      // int (C)
    unsigned long long collapsed;       // float (C, D)
    unsigned long long query;           // float (R, D)
    unsigned long long logits;          // double (R, C); first sample: row 0 only
    unsigned long long weights;         // float (R, C)
    unsigned long long ungated;         // float (R, C), or 0
    unsigned long long extra_grad;      // float (R, 4C)
    unsigned long long row_loss;        // double (R)
    double fisher_rate;                 // a
    double temperature;                 // T
    double box_weight;                  // λ_b
    int rows;                           // R
    int classes;                        // C
    int dim;                            // D
    int normalizer;                     // N
    int per_sample;                     // 1: per-sample query, 0: first sample
    int update_fisher;                  // 1: step 2 runs
};

static_assert(sizeof(crat_args) == 200, "crat_args must match the host layout");

__device__ __forceinline__ float sign_of(float v) { return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f); }

extern "C" __global__ void crat_bucket_kernel(const crat_args a)
{
    __shared__ int scratch[32];
    __shared__ int chunk_labels[CRAT_THREADS];
    __shared__ int positives_before;
    const long long* labels = reinterpret_cast<const long long*>(a.labels);
    int* class_start = reinterpret_cast<int*>(a.class_start);
    int* cursor = reinterpret_cast<int*>(a.class_cursor);
    int* rows_by_class = reinterpret_cast<int*>(a.rows_by_class);
    int* positive_of_row = reinterpret_cast<int*>(a.positive_of_row);
    int* info = reinterpret_cast<int*>(a.batch_info);
    if (blockIdx.x != 0) return;

    for (int c = threadIdx.x; c < a.classes; c += blockDim.x) class_start[c] = cursor[c] = 0;
    if (threadIdx.x == 0) {
        info[0] = 0;
        info[1] = a.rows;
        info[2] = 0;
        positives_before = 0;
    }
    __syncthreads();
    for (int n = threadIdx.x; n < a.rows; n += blockDim.x) {
        const long long y = labels[n];
        if (y < 0 || y > a.classes) atomicAdd(&info[2], 1);
        else if (y < a.classes) {
            atomicAdd(&class_start[y], 1);
            atomicMin(&info[1], n);
        }
    }
    __syncthreads();
    int base = 0;
    for (int chunk = 0; chunk < a.classes; chunk += blockDim.x) {
        const int c = chunk + threadIdx.x;
        const int count = c < a.classes ? class_start[c] : 0;
        int total;
        const int before = block_exclusive_scan(count, scratch, total);
        if (c < a.classes) class_start[c] = base + before;
        base += total;
    }
    if (threadIdx.x == 0) {
        class_start[a.classes] = base;
        info[0] = base;
    }
    __syncthreads();

    // stable scatter: a row's place in its class is the class start plus the rows of that class before it
    for (int chunk = 0; chunk < a.rows; chunk += blockDim.x) {
        const int n = chunk + threadIdx.x;
        const long long y = n < a.rows ? labels[n] : -1;
        const int positive = y >= 0 && y < a.classes;
        chunk_labels[threadIdx.x] = positive ? (int)y : -1;
        int total;
        const int before = block_exclusive_scan(positive, scratch, total);   // ends with a barrier
        if (n < a.rows) positive_of_row[n] = positive ? positives_before + before : -1;
        int same_before = 0;
        bool last = true;
        if (positive) {
            for (int t = 0; t < blockDim.x; ++t) {
                if (chunk_labels[t] != (int)y) continue;
                if (t < (int)threadIdx.x) ++same_before;
                else if (t > (int)threadIdx.x) last = false;
            }
            rows_by_class[class_start[y] + cursor[y] + same_before] = n;
        }
        __syncthreads();
        if (positive && last) cursor[y] += same_before + 1;
        if (threadIdx.x == 0) positives_before += total;
        __syncthreads();
    }
}

extern "C" __global__ void crat_fisher_update_kernel(const crat_args a)
{
    const float* deltas = reinterpret_cast<const float*>(a.deltas);
    const float* x = reinterpret_cast<const float*>(a.embeddings);
    const float* t = reinterpret_cast<const float*>(a.targets);
    const int* class_start = reinterpret_cast<const int*>(a.class_start);
    const int* rows_by_class = reinterpret_cast<const int*>(a.rows_by_class);
    float* fisher = reinterpret_cast<float*>(a.fisher);
    const long long width = 4LL * a.dim;
    const long long total = (long long)a.classes * width;
    for (long long e = grid_first_index(); e < total; e += grid_stride()) {
        const int c = (int)(e / width);
        const int begin = class_start[c], end = class_start[c + 1];
        if (begin == end) continue;
        const int i = (int)(e - c * width), f = i >> 2, k = i & 3;
        double g = 0.0;
        for (int q = begin; q < end; ++q) {
            const long long n = rows_by_class[q];
            const float s = sign_of(deltas[n * 4 * a.classes + 4 * c + k] - t[n * 4 + k]);
            if (s != 0.0f) g += s * (double)x[n * a.dim + f];
        }
        const double gi = g / a.normalizer;
        fisher[e] = (float)__dadd_rn(__dmul_rn(1.0 - a.fisher_rate, (double)fisher[e]), __dmul_rn(__dmul_rn(a.fisher_rate, gi), gi));
    }
}

extern "C" __global__ void crat_class_kernel(const crat_args a)
{
    __shared__ double scratch[32];
    const float* fisher = reinterpret_cast<const float*>(a.fisher);
    const float* deltas = reinterpret_cast<const float*>(a.deltas);
    const float* x = reinterpret_cast<const float*>(a.embeddings);
    const float* t = reinterpret_cast<const float*>(a.targets);
    const long long* labels = reinterpret_cast<const long long*>(a.labels);
    const int* info = reinterpret_cast<const int*>(a.batch_info);
    const int width = 4 * a.dim;
    const int first = info[1];
    for (int c = blockIdx.x; c < a.classes; c += gridDim.x) {
        const float* row = fisher + (long long)c * width;
        double squares = 0.0, sum = 0.0;
        for (int i = threadIdx.x; i < width; i += blockDim.x) {
            const double v = row[i];
            squares += v * v;
            sum += v;
        }
        squares = block_sum(squares, scratch);
        sum = block_sum(sum, scratch);
        const double norm = sqrt(squares);
        if (threadIdx.x == 0) {
            reinterpret_cast<double*>(a.class_norm)[c] = norm;
            reinterpret_cast<int*>(a.class_gate)[c] = sum != 0.0;
        }
        const double norm_floor = fmax(norm, 1e-12);
        if (a.per_sample) {
            float* collapsed = reinterpret_cast<float*>(a.collapsed) + (long long)c * a.dim;
            for (int f = threadIdx.x; f < a.dim; f += blockDim.x)
                collapsed[f] = (float)(((double)row[4 * f] + row[4 * f + 1] + row[4 * f + 2] + row[4 * f + 3]) / norm_floor);
            continue;
        }
        if (first >= a.rows) continue;   // no positive: no weights to compute (uniform over the block)
        const long long y = labels[first];
        double dot = 0.0, query_squares = 0.0;
        for (int i = threadIdx.x; i < width; i += blockDim.x) {
            const int f = i >> 2, k = i & 3;
            const float s = sign_of(deltas[(long long)first * 4 * a.classes + 4 * y + k] - t[(long long)first * 4 + k]);
            const double q = s * (double)x[(long long)first * a.dim + f] / a.normalizer;
            dot += q * row[i];
            query_squares += q * q;
        }
        dot = block_sum(dot, scratch);
        query_squares = block_sum(query_squares, scratch);
        if (threadIdx.x == 0)
            reinterpret_cast<double*>(a.logits)[c] = dot / (fmax(sqrt(query_squares), 1e-12) * norm_floor) / a.temperature;
    }
}

extern "C" __global__ void crat_query_kernel(const crat_args a)
{
    __shared__ double scratch[32];
    const float* x = reinterpret_cast<const float*>(a.embeddings);
    const int* positive_of_row = reinterpret_cast<const int*>(a.positive_of_row);
    const double n2 = (double)a.normalizer * a.normalizer;
    for (int n = blockIdx.x; n < a.rows; n += gridDim.x) {
        const int p = positive_of_row[n];
        if (p < 0) continue;   // uniform over the block
        const float* row = x + (long long)n * a.dim;
        double squares = 0.0;
        for (int f = threadIdx.x; f < a.dim; f += blockDim.x) {
            const double v = row[f];
            const double q = v * v / n2;
            squares += q * q;
        }
        const double norm = fmax(2.0 * sqrt(block_sum(squares, scratch)), 1e-12);
        float* query = reinterpret_cast<float*>(a.query) + (long long)p * a.dim;
        for (int f = threadIdx.x; f < a.dim; f += blockDim.x) {
            const double v = row[f];
            query[f] = (float)(v * v / n2 / norm);
        }
    }
}

// logits[p, c] = (query[p] · collapsed[c]) / T, one CRAT_TILE × CRAT_TILE tile per block; blocks past the
// positives exit.
extern "C" __global__ void crat_similarity_kernel(const crat_args a)
{
    __shared__ float query_tile[CRAT_TILE][CRAT_TILE + 1];
    __shared__ float class_tile[CRAT_TILE][CRAT_TILE + 1];
    const int positives = reinterpret_cast<const int*>(a.batch_info)[0];
    const float* query = reinterpret_cast<const float*>(a.query);
    const float* collapsed = reinterpret_cast<const float*>(a.collapsed);
    const int p0 = blockIdx.y * CRAT_TILE, c0 = blockIdx.x * CRAT_TILE;
    if (p0 >= positives) return;
    const int tx = threadIdx.x, ty = threadIdx.y;
    float dot = 0.0f;
    for (int f0 = 0; f0 < a.dim; f0 += CRAT_TILE) {
        const int p = p0 + ty, c = c0 + ty, f = f0 + tx;
        query_tile[ty][tx] = p < positives && f < a.dim ? query[(long long)p * a.dim + f] : 0.0f;
        class_tile[ty][tx] = c < a.classes && f < a.dim ? collapsed[(long long)c * a.dim + f] : 0.0f;
        __syncthreads();
        for (int j = 0; j < CRAT_TILE; ++j) dot += query_tile[ty][j] * class_tile[tx][j];
        __syncthreads();
    }
    const int p = p0 + ty, c = c0 + tx;
    if (p < positives && c < a.classes) reinterpret_cast<double*>(a.logits)[(long long)p * a.classes + c] = (double)dot / a.temperature;
}

extern "C" __global__ void crat_mixing_kernel(const crat_args a)
{
    __shared__ double scratch[32];
    const long long* labels = reinterpret_cast<const long long*>(a.labels);
    const int* positive_of_row = reinterpret_cast<const int*>(a.positive_of_row);
    const int* gate = reinterpret_cast<const int*>(a.class_gate);
    const float* deltas = reinterpret_cast<const float*>(a.deltas);
    const float* t = reinterpret_cast<const float*>(a.targets);
    float* weights = reinterpret_cast<float*>(a.weights);
    float* ungated = reinterpret_cast<float*>(a.ungated);
    float* extra = reinterpret_cast<float*>(a.extra_grad);
    double* row_loss = reinterpret_cast<double*>(a.row_loss);
    const double infinity = __longlong_as_double(0x7ff0000000000000LL);
    for (long long n = blockIdx.x; n < a.rows; n += gridDim.x) {
        const long long y = labels[n];
        const long long row_w = n * a.classes, row_e = n * 4LL * a.classes;
        if (y < 0 || y >= a.classes) {
            // background: no transfusion; an invalid label: NaN everywhere in the row
            const float fill = y == a.classes ? 0.0f : quiet_nan();
            for (int c = threadIdx.x; c < a.classes; c += blockDim.x) {
                weights[row_w + c] = fill;
                if (ungated) ungated[row_w + c] = fill;
            }
            for (int j = threadIdx.x; j < 4 * a.classes; j += blockDim.x) extra[row_e + j] = fill;
            if (threadIdx.x == 0) row_loss[n] = fill;
            continue;
        }
        const double* z = reinterpret_cast<const double*>(a.logits) + (a.per_sample ? (long long)positive_of_row[n] * a.classes : 0);
        double largest = -infinity;
        for (int c = threadIdx.x; c < a.classes; c += blockDim.x)
            if (c != y && z[c] > largest) largest = z[c];
        largest = block_max(largest, -infinity, scratch);
        double sum = 0.0;
        for (int c = threadIdx.x; c < a.classes; c += blockDim.x)
            if (c != y) sum += exp(z[c] - largest);
        sum = block_sum(sum, scratch);
        double loss = 0.0;
        for (int c = threadIdx.x; c < a.classes; c += blockDim.x) {
            const double v = c == y ? 0.0 : exp(z[c] - largest) / sum;
            const double w = gate[c] ? v : 0.0;
            weights[row_w + c] = (float)w;
            if (ungated) ungated[row_w + c] = (float)v;
            for (int k = 0; k < 4; ++k) {
                const double r = (double)deltas[row_e + 4 * c + k] - (double)t[n * 4 + k];
                const double s = r > 0.0 ? 1.0 : (r < 0.0 ? -1.0 : 0.0);
                extra[row_e + 4 * c + k] = w == 0.0 ? 0.0f : (float)(a.box_weight * w * s);
                loss += w * fabs(r);
            }
        }
        loss = block_sum(loss, scratch);
        if (threadIdx.x == 0) row_loss[n] = a.box_weight * loss;
    }
}
