// Box operations of the detection backend (CudaDetectionBackend): pairwise IoU, the R-CNN box coder (encode and
// decode), the FPN level of each RoI and the proposal matcher, float32, reproducing CpuDetectionBackend (detectron2's
// pairwise_iou, Box2BoxTransform.get_deltas / apply_deltas, assign_boxes_to_levels and Matcher; Girshick et al., "Fast R-CNN", eq. for t_x, t_y, t_w, t_h).
//
// Formulas (the same float expressions in the same order as the CPU backend; __fmul_rn / __fadd_rn where a
// multiply feeds an add, so NVRTC cannot contract them into an FMA the CPU does not do):
//   IoU:    w = max(min(ax2, bx2) − max(ax1, bx1), 0), h likewise, inter = w·h,
//           iou = inter > 0 ? inter / (area_a + area_b − inter) : 0, areas (x2 − x1)·(y2 − y1)
//   encode: sw = sx2 − sx1, scx = sx1 + 0.5·sw (same for y, and for the target), then
//           d = (wx·(tcx − scx) / sw, wy·(tcy − scy) / sh, ww·log(tw / sw), wh·log(th / sh))
//   decode: dw = min(d2 / ww, clamp) (NaN kept, as MathF.Min), pcx = dx·w + cx, pw = exp(dw)·w,
//           out = (pcx − 0.5·pw, pcy − 0.5·ph, pcx + 0.5·pw, pcy + 0.5·ph)
//   level:  size = sqrt((x2 − x1)·(y2 − y1)), k = floor(k0 + log2(size / s0 + 1e-8)) with canonical level k0 and box
//           size s0 (FPN, Lin et al., Eqn. 1, as detectron2's assign_boxes_to_levels), NaN → min level, else clamped to
//           [min, max]; written relative to min
//   match:  per prediction j, the first ground truth g of largest quality[g, j]; label = labels[k] for the interval
//           thresholds[k−1] ≤ best < thresholds[k] (compared in double, as the CPU compares float to double);
//           with low-quality matches, each ground truth's highest quality h_g = max(0, max_j quality[g, j]) and
//           every prediction with quality[g, j] == h_g for some g gets label 1.
// IoU, the encode's first two deltas and the matcher are bit-identical to the CPU backend (IEEE division and
// exact max); expf / logf are within 2 ulp of the CPU's MathF.Exp / Log. The level's sqrtf and division are IEEE
// (no fast math); log2f and the CPU's MathF.Log2 are each within 1 ulp of log2 and exact at powers of two, where
// the level changes, so a level can only differ from the CPU's for a size within a few ulp of s0·2^j.
//
// Layout: boxes (·, 4) = (x1, y1, x2, y2) dense; rois (R, 5) = (batch index, x1, y1, x2, y2) dense; iou (N, M);
// deltas / decoded (R, K·4); quality (M, N) dense, M ground truths by N predictions; matches, labels (N) and
// levels (R) int64; highest (M) float scratch.
// Launch: iou, encode, decode and level are 1-D grid-stride loops over their outputs (iou per (i, j), encode per
// box, decode per (box, class), level per RoI); box_match_kernel and box_low_quality_kernel run one thread per
// prediction, each looping over the ground truths in order (reads quality[g, j] coalesced across threads);
// box_row_max_kernel one block per ground truth (a row of tens of thousands of anchors; grid-stride over the
// rows). Any grid; blocks a multiple of 32 threads (at most 1024).
// Synchronization: none on the host. Bad input (a source box of non-positive size in encode, a negative or NaN
// quality in match) is recorded in the engine_error record (backend.cuh) and raised by the host at its next wait
// on the stream, with the CPU backend's message; the outputs of that call are then incomplete.
#include "backend.cuh"

#define BOX_MAX_THRESHOLDS 8

// DeviceErrorLog.Op and ErrorCode values
#define BOX_OP_ENCODE 9
#define BOX_OP_MATCH 10
#define BOX_ERROR_NON_POSITIVE 5
#define BOX_ERROR_QUALITY 6

struct box_ops_args {
    unsigned long long a;       // iou: boxes a (N, 4); encode: source (R, 4); decode: deltas (R, K·4); match: quality (M, N)
    unsigned long long b;       // iou: boxes b (M, 4); encode: target (R, 4); decode: boxes (R, 4); match: highest (M)
    unsigned long long out;     // iou (N, M) float; encode: deltas (R, 4); decode: output (R, K·4); match: matches (N) int64
    unsigned long long out2;    // match: labels (N) int64
    unsigned long long errors;  // engine_error*
    double weights[4];          // wx, wy, ww, wh
    double scale_clamp;
    double thresholds[BOX_MAX_THRESHOLDS];
    long long rows;             // iou N; encode, decode R; match M
    long long columns;          // iou M; decode K; match N
    int labels[BOX_MAX_THRESHOLDS + 1];
    int num_thresholds;
    int allow_low_quality;
    int reserved;
};

static_assert(sizeof(box_ops_args) == 208, "box_ops_args must match BoxOpsArgs in CudaBoxOpsKernels.cs");

struct fpn_level_args {
    unsigned long long rois;    // const float (R, 5)
    unsigned long long levels;  // long long (R)
    long long rows;             // R
    int min_level;
    int max_level;
    int canonical_box_size;
    int canonical_level;
};

static_assert(sizeof(fpn_level_args) == 40, "fpn_level_args must match FpnLevelArgs in CudaBoxOpsKernels.cs");

__device__ __forceinline__ unsigned long long pack_floats(float high, float low)
{
    return ((unsigned long long)(unsigned int)__float_as_int(high) << 32) | (unsigned int)__float_as_int(low);
}

extern "C" __global__ void box_pairwise_iou_kernel(const box_ops_args a)
{
    const float* pa = reinterpret_cast<const float*>(a.a);
    const float* pb = reinterpret_cast<const float*>(a.b);
    float* iou = reinterpret_cast<float*>(a.out);
    const long long total = a.rows * a.columns;
    for (long long e = grid_first_index(); e < total; e += grid_stride()) {
        const long long i = e / a.columns, j = e % a.columns;
        const float x1 = pa[i * 4], y1 = pa[i * 4 + 1], x2 = pa[i * 4 + 2], y2 = pa[i * 4 + 3];
        const float* q = pb + j * 4;
        const float area_a = __fmul_rn(x2 - x1, y2 - y1);
        const float area_b = __fmul_rn(q[2] - q[0], q[3] - q[1]);
        const float w = nan_max(nan_min(x2, q[2]) - nan_max(x1, q[0]), 0.0f);
        const float h = nan_max(nan_min(y2, q[3]) - nan_max(y1, q[1]), 0.0f);
        const float inter = __fmul_rn(w, h);
        iou[e] = inter > 0 ? inter / (area_a + area_b - inter) : 0.0f;
    }
}

extern "C" __global__ void box_encode_kernel(const box_ops_args a)
{
    const float* ps = reinterpret_cast<const float*>(a.a);
    const float* pt = reinterpret_cast<const float*>(a.b);
    float* pd = reinterpret_cast<float*>(a.out);
    const float wx = (float)a.weights[0], wy = (float)a.weights[1], ww = (float)a.weights[2], wh = (float)a.weights[3];
    for (long long i = grid_first_index(); i < a.rows; i += grid_stride()) {
        const float* s = ps + i * 4;
        const float* t = pt + i * 4;
        float* d = pd + i * 4;
        const float sw = s[2] - s[0], sh = s[3] - s[1];
        if (!(sw > 0 && sh > 0)) {
            report_error(reinterpret_cast<engine_error*>(a.errors), BOX_OP_ENCODE, BOX_ERROR_NON_POSITIVE,
                         (long long)pack_floats(s[0], s[1]), i, (long long)pack_floats(s[2], s[3]));
        }
        const float scx = __fadd_rn(s[0], __fmul_rn(0.5f, sw)), scy = __fadd_rn(s[1], __fmul_rn(0.5f, sh));
        const float tw = t[2] - t[0], th = t[3] - t[1];
        const float tcx = __fadd_rn(t[0], __fmul_rn(0.5f, tw)), tcy = __fadd_rn(t[1], __fmul_rn(0.5f, th));
        d[0] = wx * (tcx - scx) / sw;
        d[1] = wy * (tcy - scy) / sh;
        d[2] = ww * logf(tw / sw);
        d[3] = wh * logf(th / sh);
    }
}

extern "C" __global__ void box_decode_kernel(const box_ops_args a)
{
    const float* pd = reinterpret_cast<const float*>(a.a);
    const float* pb = reinterpret_cast<const float*>(a.b);
    float* po = reinterpret_cast<float*>(a.out);
    const float wx = (float)a.weights[0], wy = (float)a.weights[1], ww = (float)a.weights[2], wh = (float)a.weights[3];
    const float clamp = (float)a.scale_clamp;
    const long long total = a.rows * a.columns;
    for (long long e = grid_first_index(); e < total; e += grid_stride()) {
        const long long i = e / a.columns;
        const float* b = pb + i * 4;
        const float* d = pd + e * 4;
        float* o = po + e * 4;
        const float w = b[2] - b[0], h = b[3] - b[1];
        const float cx = __fadd_rn(b[0], __fmul_rn(0.5f, w)), cy = __fadd_rn(b[1], __fmul_rn(0.5f, h));
        const float dx = d[0] / wx, dy = d[1] / wy;
        const float dw = nan_min(d[2] / ww, clamp), dh = nan_min(d[3] / wh, clamp);
        const float pcx = __fadd_rn(__fmul_rn(dx, w), cx), pcy = __fadd_rn(__fmul_rn(dy, h), cy);
        const float pw = __fmul_rn(expf(dw), w), ph = __fmul_rn(expf(dh), h);
        const float hw = __fmul_rn(0.5f, pw), hh = __fmul_rn(0.5f, ph);
        o[0] = __fsub_rn(pcx, hw);
        o[1] = __fsub_rn(pcy, hh);
        o[2] = __fadd_rn(pcx, hw);
        o[3] = __fadd_rn(pcy, hh);
    }
}

extern "C" __global__ void box_fpn_level_kernel(const fpn_level_args a)
{
    const float* rois = reinterpret_cast<const float*>(a.rois);
    long long* levels = reinterpret_cast<long long*>(a.levels);
    const float canonical_size = (float)a.canonical_box_size, canonical_level = (float)a.canonical_level;
    for (long long i = grid_first_index(); i < a.rows; i += grid_stride()) {
        const float* b = rois + i * 5;
        const float size = sqrtf(__fmul_rn(b[3] - b[1], b[4] - b[2]));
        const float k = floorf(__fadd_rn(canonical_level, log2f(__fadd_rn(size / canonical_size, 1e-8f))));
        levels[i] = k != k ? 0 : (long long)fminf(fmaxf(k, (float)a.min_level), (float)a.max_level) - a.min_level;
    }
}

extern "C" __global__ void box_match_kernel(const box_ops_args a)
{
    const float* q = reinterpret_cast<const float*>(a.a);
    long long* matches = reinterpret_cast<long long*>(a.out);
    long long* labels = reinterpret_cast<long long*>(a.out2);
    const long long m = a.rows, n = a.columns;
    for (long long j = grid_first_index(); j < n; j += grid_stride()) {
        if (m == 0) {
            // no ground truth: matched to nothing (index 0), the first interval's label
            matches[j] = 0;
            labels[j] = a.labels[0];
            continue;
        }
        float best = -1.0f;
        long long match = 0;
        for (long long g = 0; g < m; g++) {
            const float v = q[g * n + j];
            if (!(v >= 0)) {
                report_error(reinterpret_cast<engine_error*>(a.errors), BOX_OP_MATCH, BOX_ERROR_QUALITY,
                             (long long)(unsigned int)__float_as_int(v), g * n + j, n);
            }
            if (v > best) {
                best = v;
                match = g;
            }
        }
        int k = 0;
        while (k < a.num_thresholds && (double)best >= a.thresholds[k]) k++;
        matches[j] = match;
        labels[j] = a.labels[k];
    }
}

extern "C" __global__ void box_row_max_kernel(const box_ops_args a)
{
    __shared__ float scratch[32];
    const float* q = reinterpret_cast<const float*>(a.a);
    float* highest = reinterpret_cast<float*>(a.b);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (long long g = blockIdx.x; g < a.rows; g += gridDim.x) {
        // max is exact, so any split of the row gives the CPU's value
        const float* row = q + g * a.columns;
        float h = 0.0f;
        for (long long j = threadIdx.x; j < a.columns; j += blockDim.x) h = nan_max(h, row[j]);
        for (int d = 16; d > 0; d >>= 1) h = nan_max(h, __shfl_xor_sync(ENGINE_FULL_MASK, h, d));
        if (lane == 0) scratch[warp] = h;
        __syncthreads();
        if (warp == 0) {
            h = lane < warps ? scratch[lane] : 0.0f;
            for (int d = 16; d > 0; d >>= 1) h = nan_max(h, __shfl_xor_sync(ENGINE_FULL_MASK, h, d));
            if (lane == 0) highest[g] = h;
        }
        __syncthreads();
    }
}

extern "C" __global__ void box_low_quality_kernel(const box_ops_args a)
{
    const float* q = reinterpret_cast<const float*>(a.a);
    const float* highest = reinterpret_cast<const float*>(a.b);
    long long* labels = reinterpret_cast<long long*>(a.out2);
    const long long m = a.rows, n = a.columns;
    for (long long j = grid_first_index(); j < n; j += grid_stride()) {
        for (long long g = 0; g < m; g++) {
            if (q[g * n + j] == highest[g]) {
                labels[j] = 1;
                break;
            }
        }
    }
}
