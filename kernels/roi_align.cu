// Multi-level ROIAlign, forward and backward, float32 (torchvision roi_align semantics; He et al., "Mask R-CNN",
// section 3; aligned = Detectron2's ROIAlignV2 half-pixel shift).
//
// Formula, for RoI r on its FPN level l (scale s_l), bin (ph, pw) and channel c:
//   x0 = x1·s_l − o, y0 = y1·s_l − o, w = x2·s_l − o − x0, h = y2·s_l − o − y0   (o = 0.5 when aligned, else 0 and
//   w, h at least 1), bin size bh = h / Ph, bw = w / Pw, grid gh = ratio or ceil(h / Ph), gw = ratio or ceil(w / Pw)
//   (adaptive sampling when ratio = 0), and
//   out[r, c, ph, pw] = (1 / (gh·gw)) Σ_iy Σ_ix bilinear(F_l[b_r, c], y0 + ph·bh + (iy + ½)·bh/gh, x0 + pw·bw + (ix + ½)·bw/gw)
// where a sample outside [-1, H] × [-1, W] contributes 0, coordinates below 0 clamp to 0 and the last row/column
// repeats. An RoI with gh·gw = 0 (an empty box) pools to 0. Backward: the forward is linear in F, so
//   dF_l[b_r, c, y, x] = Σ over the samples that read (y, x) of weight · dout[r, c, ph, pw] / (gh·gw).
// The box geometry and sample coordinates are computed in double, so the adaptive grid size and the border tests
// agree with the double reference (Engine.Detection.Reference.RoiAlignReference) and the CPU backend; the
// bilinear weights and the sum are float.
//
// Layout: rois (R, 5) = (batch index, x1, y1, x2, y2) in image coordinates, float; level_of (R) int64 (the level
// each RoI pools from, chosen by the caller), or null for all on level 0; level l's features (N, C, H_l, W_l)
// dense; out / dout (R, C, Ph, Pw) dense. Up to ROI_ALIGN_MAX_LEVELS levels travel in one by-value struct.
// An RoI whose batch index is not an integer in [0, N) or whose level is outside [0, levels) pools to NaN in the
// forward (so the error shows in the output) and scatters nothing in the backward.
//
// Launch: every kernel is a 1-D grid-stride loop, any grid and block size. The forward has one thread per output
// element (r, c, ph, pw) over all levels at once. The backward is two launches on one stream:
// roi_align_zero_kernel clears every level's gradient (levels with a null gradient pointer are skipped), then
// roi_align_backward_kernel scatters with atomicAdd, one thread per element of dout.
// Synchronization: none on the host. The backward's atomics make the gradient's last bits depend on the order in
// which threads add (not bit-reproducible from run to run, unlike the CPU backend).
#include "common.cuh"

#define ROI_ALIGN_MAX_LEVELS 5

struct roi_align_level {
    unsigned long long data;   // forward: const float* features; backward: float* gradient (0 = no gradient wanted)
    int height;
    int width;
    double scale;              // feature size / image size, e.g. 1/8
};

struct roi_align_args {
    roi_align_level levels[ROI_ALIGN_MAX_LEVELS];
    unsigned long long rois;      // const float (R, 5)
    unsigned long long level_of;  // const long long (R), or 0
    unsigned long long output;    // forward: float out (R, C, Ph, Pw); backward: const float dout
    long long count;              // R·C·Ph·Pw
    int num_levels;
    int batch;
    int channels;
    int pooled_height;
    int pooled_width;
    int sampling_ratio;           // 0 = adaptive
    int aligned;
    int reserved;
};

static_assert(sizeof(roi_align_level) == 24, "roi_align_level must match the host layout");
static_assert(sizeof(roi_align_args) == 184, "roi_align_args must match the host layout");

// The sampling geometry of one RoI on its level.
struct roi_geometry {
    double x0, y0, bin_w, bin_h;
    int grid_w, grid_h;
    int level, batch;
    bool valid;
};

__device__ __forceinline__ roi_geometry roi_geometry_of(const roi_align_args& a, long long r)
{
    roi_geometry g;
    const float* roi = reinterpret_cast<const float*>(a.rois) + r * 5;
    const long long* level_of = reinterpret_cast<const long long*>(a.level_of);
    const long long level = level_of ? level_of[r] : 0;
    const float b = roi[0];
    g.valid = level >= 0 && level < a.num_levels && b >= 0.0f && b < (float)a.batch && b == floorf(b);
    g.level = g.valid ? (int)level : 0;
    g.batch = g.valid ? (int)b : 0;
    const double scale = a.levels[g.level].scale;
    const double offset = a.aligned ? 0.5 : 0.0;
    g.x0 = (double)roi[1] * scale - offset;
    g.y0 = (double)roi[2] * scale - offset;
    double w = (double)roi[3] * scale - offset - g.x0;
    double h = (double)roi[4] * scale - offset - g.y0;
    if (!a.aligned) {
        w = fmax(w, 1.0);
        h = fmax(h, 1.0);
    }
    g.bin_w = w / a.pooled_width;
    g.bin_h = h / a.pooled_height;
    g.grid_w = a.sampling_ratio > 0 ? a.sampling_ratio : (int)ceil(w / a.pooled_width);
    g.grid_h = a.sampling_ratio > 0 ? a.sampling_ratio : (int)ceil(h / a.pooled_height);
    return g;
}

// Bilinear neighbours of sample (y, x) on an H × W plane, or false when it lies outside [-1, H] × [-1, W].
// offsets: y0·W + x0, y0·W + x1, y1·W + x0, y1·W + x1; weights in the same order.
__device__ __forceinline__ bool bilinear_taps(double y, double x, int height, int width, int (&offsets)[4], float (&weights)[4])
{
    if (y < -1.0 || y > height || x < -1.0 || x > width) return false;
    y = fmax(y, 0.0);
    x = fmax(x, 0.0);
    int y0 = (int)y, x0 = (int)x;
    if (y0 >= height - 1) { y0 = height - 1; y = y0; }
    if (x0 >= width - 1) { x0 = width - 1; x = x0; }
    const int y1 = min(y0 + 1, height - 1), x1 = min(x0 + 1, width - 1);
    const float ly = (float)(y - y0), lx = (float)(x - x0);
    const float hy = 1.0f - ly, hx = 1.0f - lx;
    offsets[0] = y0 * width + x0; weights[0] = hy * hx;
    offsets[1] = y0 * width + x1; weights[1] = hy * lx;
    offsets[2] = y1 * width + x0; weights[2] = ly * hx;
    offsets[3] = y1 * width + x1; weights[3] = ly * lx;
    return true;
}

extern "C" __global__ void roi_align_forward_kernel(const roi_align_args a)
{
    float* out = reinterpret_cast<float*>(a.output);
    for (long long i = grid_first_index(); i < a.count; i += grid_stride()) {
        const int pw = (int)(i % a.pooled_width);
        long long rest = i / a.pooled_width;
        const int ph = (int)(rest % a.pooled_height);
        rest /= a.pooled_height;
        const int c = (int)(rest % a.channels);
        const long long r = rest / a.channels;

        const roi_geometry g = roi_geometry_of(a, r);
        if (!g.valid) {
            out[i] = quiet_nan();
            continue;
        }
        const roi_align_level level = a.levels[g.level];
        const float* plane = reinterpret_cast<const float*>(level.data) +
                             ((long long)g.batch * a.channels + c) * level.height * level.width;
        float sum = 0.0f;
        for (int iy = 0; iy < g.grid_h; ++iy) {
            const double y = g.y0 + ph * g.bin_h + (iy + 0.5) * g.bin_h / g.grid_h;
            for (int ix = 0; ix < g.grid_w; ++ix) {
                const double x = g.x0 + pw * g.bin_w + (ix + 0.5) * g.bin_w / g.grid_w;
                int offsets[4];
                float weights[4];
                if (!bilinear_taps(y, x, level.height, level.width, offsets, weights)) continue;
                for (int t = 0; t < 4; ++t) sum += weights[t] * plane[offsets[t]];
            }
        }
        const int samples = g.grid_h * g.grid_w;
        out[i] = samples > 0 ? sum / samples : 0.0f;
    }
}

// Clears every level's gradient (N, C, H_l, W_l), the levels one after another in one index space.
extern "C" __global__ void roi_align_zero_kernel(const roi_align_args a)
{
    long long total = 0;
    for (int l = 0; l < a.num_levels; ++l) total += (long long)a.batch * a.channels * a.levels[l].height * a.levels[l].width;
    for (long long i = grid_first_index(); i < total; i += grid_stride()) {
        long long local = i;
        int l = 0;
        for (; l < a.num_levels - 1; ++l) {
            const long long size = (long long)a.batch * a.channels * a.levels[l].height * a.levels[l].width;
            if (local < size) break;
            local -= size;
        }
        float* grad = reinterpret_cast<float*>(a.levels[l].data);
        if (grad) grad[local] = 0.0f;
    }
}

extern "C" __global__ void roi_align_backward_kernel(const roi_align_args a)
{
    const float* dout = reinterpret_cast<const float*>(a.output);
    for (long long i = grid_first_index(); i < a.count; i += grid_stride()) {
        const int pw = (int)(i % a.pooled_width);
        long long rest = i / a.pooled_width;
        const int ph = (int)(rest % a.pooled_height);
        rest /= a.pooled_height;
        const int c = (int)(rest % a.channels);
        const long long r = rest / a.channels;

        const roi_geometry g = roi_geometry_of(a, r);
        if (!g.valid) continue;
        const roi_align_level level = a.levels[g.level];
        float* plane = reinterpret_cast<float*>(level.data);
        const int samples = g.grid_h * g.grid_w;
        if (!plane || samples == 0) continue;
        plane += ((long long)g.batch * a.channels + c) * level.height * level.width;
        const float scaled = dout[i] / samples;
        for (int iy = 0; iy < g.grid_h; ++iy) {
            const double y = g.y0 + ph * g.bin_h + (iy + 0.5) * g.bin_h / g.grid_h;
            for (int ix = 0; ix < g.grid_w; ++ix) {
                const double x = g.x0 + pw * g.bin_w + (ix + 0.5) * g.bin_w / g.grid_w;
                int offsets[4];
                float weights[4];
                if (!bilinear_taps(y, x, level.height, level.width, offsets, weights)) continue;
                for (int t = 0; t < 4; ++t) atomicAdd(plane + offsets[t], weights[t] * scaled);
            }
        }
    }
}
