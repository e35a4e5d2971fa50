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
// bilinear weights and the sum are float. A sample sits at start + (i + ½)·(bin / grid), one division per RoI
// instead of one per sample; that is within an ulp of the double of the reference's (i + ½)·bin / grid.
//
// Layout: rois (R, 5) = (batch index, x1, y1, x2, y2) in image coordinates, float; level_of (R) int64 (the level
// each RoI pools from, chosen by the caller), or null for all on level 0; level l's features (N, C, H_l, W_l)
// dense; out / dout (R, C, Ph, Pw) dense. Up to ROI_ALIGN_MAX_LEVELS levels travel in one by-value struct.
// An RoI whose batch index is not an integer in [0, N) or whose level is outside [0, levels) pools to NaN in the
// forward (so the error shows in the output) and scatters nothing in the backward.
//
// Launch: one thread per block computes the RoI's geometry into shared memory. Forward: blockIdx.x strides over the
// RoIs (any grid width) and the y dimension over the RoI's ceil(C / ROI_ALIGN_CHANNELS)·Ph·Pw work items (any grid
// height up to 65535 and block size), one per bin (ph, pw) and group of ROI_ALIGN_CHANNELS channels (the bin's taps
// are computed once for the group), over all levels at once, summed tap by tap in the CPU backend's order. The
// blocks start in grid order, x first, so the blocks in flight pool every RoI for the same few channels (a block of
// 128 threads covers 2 to 4 groups of ROI_ALIGN_CHANNELS): those channels' feature planes (2.9 MB per 4 channels on
// P2–P5 of two 800×1333 images) stay in L2 instead of each RoI's footprint over all channels coming from DRAM (a
// grid the other way round, all of one RoI's channels together, took 23% longer at that size). Backward, two
// launches on one stream: roi_align_zero_kernel (blockIdx.y = level) clears every level's gradient (levels with a
// null gradient pointer are skipped), then roi_align_backward_kernel, where blockIdx.y strides over the RoIs (any
// grid height up to 65535), blockIdx.x over groups of ROI_ALIGN_BACKWARD_CHANNELS channels and the threads over the
// bins (any block size): there, all of one RoI's channels together is the faster order (the other took 11% longer),
// as RoIs that overlap would add to the same pixels at once. A bin's weights are separable per axis (see
// ROI_ALIGN_TILE), so a thread adds each pixel its bin touches once per channel, into a shared tile of the RoI's
// footprint that the block then adds to the gradient with atomicAdd, once per touched pixel and channel (see
// ROI_ALIGN_FOOTPRINT).
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

// The sampling geometry of one RoI on its level; step = bin / grid, the distance between samples.
struct roi_geometry {
    double x0, y0, bin_w, bin_h, step_w, step_h;
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
    g.step_w = g.grid_w > 0 ? g.bin_w / g.grid_w : 0.0;
    g.step_h = g.grid_h > 0 ? g.bin_h / g.grid_h : 0.0;
    return g;
}

// Sample i (0-based) of a bin along an axis: start + (i + ½)·step as one explicit fused multiply-add, so the forward,
// the backward and the backward's tile bounds compute bit-identical coordinates (no contraction left to the compiler).
__device__ __forceinline__ double sample_at(double start, int i, double step)
{
    return __fma_rn(i + 0.5, step, start);
}

// The two bilinear neighbours of sample coordinate v along an axis of `size` pixels, or false when v lies outside
// [-1, size]: below 0 clamps to 0, at or past the last pixel repeats it (lo = hi = size − 1, weight on lo).
struct axis_taps {
    int lo, hi;
    float l, h;   // weight of hi (the fraction), of lo (1 − fraction)
};

__device__ __forceinline__ bool axis_taps_of(double v, int size, axis_taps& t)
{
    if (v < -1.0 || v > size) return false;
    v = fmax(v, 0.0);
    int lo = (int)v;
    if (lo >= size - 1) {
        lo = size - 1;
        v = lo;
    }
    t.lo = lo;
    t.hi = min(lo + 1, size - 1);
    t.l = (float)(v - lo);
    t.h = 1.0f - t.l;
    return true;
}

// The first pixel along an axis any sample at or after v can touch: axis_taps_of's lo with the clamps, for v also
// outside [-1, size] (monotonic in v, so the first sample's value bounds every later one's from below).
__device__ __forceinline__ int first_tap(double v, int size)
{
    const int lo = (int)fmax(v, 0.0);
    return min(lo, size - 1);
}

// The RoIs of a launch, from count = R·C·Ph·Pw (outputs are laid out channel slowest, pw fastest, within an RoI).
__device__ __forceinline__ long long roi_count(const roi_align_args& a)
{
    const long long per_roi = (long long)a.channels * a.pooled_height * a.pooled_width;
    return per_roi > 0 ? a.count / per_roi : 0;
}

// Channels one thread handles: the taps of a bin are computed once and used for ROI_ALIGN_CHANNELS planes.
#define ROI_ALIGN_CHANNELS 4

// Start of bin p along an axis: origin + p·bin, one explicit fused multiply-add like sample_at.
__device__ __forceinline__ double bin_start(double origin, int p, double bin)
{
    return __fma_rn((double)p, bin, origin);
}

// Fills `shared` with RoI r's geometry; every thread of the block must call it.
__device__ __forceinline__ roi_geometry load_roi(const roi_align_args& a, long long r, roi_geometry& shared)
{
    if (threadIdx.x == 0) shared = roi_geometry_of(a, r);
    __syncthreads();
    return shared;
}

// The pixels one bin's samples can touch, per axis from its first sample's first tap to its last sample's last.
struct bin_window {
    int row0, col0, row1, col1;
};

__device__ __forceinline__ bin_window bin_window_of(const roi_geometry& g, const roi_align_level& level, double y_start, double x_start)
{
    bin_window w;
    w.row0 = first_tap(sample_at(y_start, 0, g.step_h), level.height);
    w.col0 = first_tap(sample_at(x_start, 0, g.step_w), level.width);
    w.row1 = min(first_tap(sample_at(y_start, g.grid_h - 1, g.step_h), level.height) + 1, level.height - 1);
    w.col1 = min(first_tap(sample_at(x_start, g.grid_w - 1, g.step_w), level.width) + 1, level.width - 1);
    return w;
}

// Side of the register tile of one bin's pixel weights. The bin's weight on pixel (y, x) is separable, Y(y)·X(x), with
// Y (X) the sum of the bilinear row (column) weights of its valid sample rows (columns): a sample is valid when both
// its coordinates are, so the pixels the bin touches are its touched rows × its touched columns. A bin whose samples
// touch at most ROI_ALIGN_TILE pixels along each axis (bins up to about 5 pixels: every RoI of the usual FPN level
// assignment) handles each touched pixel once: the backward adds it to the gradient once per channel. Larger bins go
// tap by tap, sample by sample.
#define ROI_ALIGN_TILE 6

// The row (column) weights Y (X) of one bin along an axis, from its samples' taps: weights[u] is pixel first + u's,
// `first` the first sample's first tap. The caller has checked that the samples span at most ROI_ALIGN_TILE pixels.
__device__ __forceinline__ void axis_weights(double start, int grid, double step, int size, int first, float (&weights)[ROI_ALIGN_TILE])
{
#pragma unroll
    for (int u = 0; u < ROI_ALIGN_TILE; ++u) weights[u] = 0.0f;
    for (int i = 0; i < grid; ++i) {
        axis_taps t;
        if (!axis_taps_of(sample_at(start, i, step), size, t)) continue;
#pragma unroll
        for (int u = 0; u < ROI_ALIGN_TILE; ++u) weights[u] += (u == t.lo - first ? t.h : 0.0f) + (u == t.hi - first ? t.l : 0.0f);
    }
}

extern "C" __global__ void roi_align_forward_kernel(const roi_align_args a)
{
    __shared__ roi_geometry shared;
    float* out = reinterpret_cast<float*>(a.output);
    const int bins = a.pooled_height * a.pooled_width;
    const int per_roi = a.channels * bins;
    const int work = (a.channels + ROI_ALIGN_CHANNELS - 1) / ROI_ALIGN_CHANNELS * bins;
    const long long rois = roi_count(a);
    for (long long r = blockIdx.x; r < rois; r += gridDim.x) {
        const roi_geometry g = load_roi(a, r, shared);
        const roi_align_level level = a.levels[g.level];
        const long long plane_size = (long long)level.height * level.width;
        const int samples = g.grid_h * g.grid_w;
        for (int j = blockIdx.y * blockDim.x + threadIdx.x; j < work; j += gridDim.y * blockDim.x) {
            const int group = j / bins;
            const int bin = j - group * bins;
            const int c0 = group * ROI_ALIGN_CHANNELS;
            const int channels = min(ROI_ALIGN_CHANNELS, a.channels - c0);
            float* first_out = out + r * per_roi + (long long)c0 * bins + bin;
            if (!g.valid) {
                for (int k = 0; k < channels; ++k) first_out[(long long)k * bins] = quiet_nan();
                continue;
            }
            const int ph = bin / a.pooled_width;
            const int pw = bin - ph * a.pooled_width;
            const float* plane = reinterpret_cast<const float*>(level.data) + ((long long)g.batch * a.channels + c0) * plane_size;
            const double y_start = bin_start(g.y0, ph, g.bin_h), x_start = bin_start(g.x0, pw, g.bin_w);
            float sum[ROI_ALIGN_CHANNELS];
#pragma unroll
            for (int k = 0; k < ROI_ALIGN_CHANNELS; ++k) sum[k] = 0.0f;
            for (int iy = 0; iy < g.grid_h; ++iy) {
                axis_taps ty;
                if (!axis_taps_of(sample_at(y_start, iy, g.step_h), level.height, ty)) continue;
                const long long row_lo = (long long)ty.lo * level.width, row_hi = (long long)ty.hi * level.width;
                for (int ix = 0; ix < g.grid_w; ++ix) {
                    axis_taps tx;
                    if (!axis_taps_of(sample_at(x_start, ix, g.step_w), level.width, tx)) continue;
                    const float w00 = ty.h * tx.h, w01 = ty.h * tx.l, w10 = ty.l * tx.h, w11 = ty.l * tx.l;
#pragma unroll
                    for (int k = 0; k < ROI_ALIGN_CHANNELS; ++k) {
                        if (k >= channels) break;
                        const float* p = plane + k * plane_size;
                        // the CPU backend's order: (lo, lo), (lo, hi), (hi, lo), (hi, hi)
                        sum[k] += w00 * p[row_lo + tx.lo];
                        sum[k] += w01 * p[row_lo + tx.hi];
                        sum[k] += w10 * p[row_hi + tx.lo];
                        sum[k] += w11 * p[row_hi + tx.hi];
                    }
                }
            }
#pragma unroll
            for (int k = 0; k < ROI_ALIGN_CHANNELS; ++k)
                if (k < channels) first_out[(long long)k * bins] = samples > 0 ? sum[k] / samples : 0.0f;
        }
        __syncthreads();   // the next RoI's load_roi overwrites shared only after every thread has read this one
    }
}

// Clears every level's gradient (N, C, H_l, W_l): blockIdx.y picks the level, the x dimension strides over it.
extern "C" __global__ void roi_align_zero_kernel(const roi_align_args a)
{
    if ((int)blockIdx.y >= a.num_levels) return;
    const roi_align_level level = a.levels[blockIdx.y];
    float* grad = reinterpret_cast<float*>(level.data);
    if (!grad) return;
    const long long size = (long long)a.batch * a.channels * level.height * level.width;
    for (long long i = grid_first_index(); i < size; i += grid_stride()) grad[i] = 0.0f;
}

// Channels one backward block handles, and the floats of its shared tile: the RoI's whole footprint on the level for
// each of those channels (a footprint up to 1024 pixels: RoIs up to about 30 × 30 pixels on their level, every RoI
// of the usual FPN level assignment). The block's threads add their bins' weights there with shared-memory atomics,
// then add each touched pixel of each channel to the gradient once, neighbouring threads on neighbouring pixels. A
// larger footprint adds every bin's pixels to the gradient directly.
#define ROI_ALIGN_BACKWARD_CHANNELS 4
#define ROI_ALIGN_FOOTPRINT 1024

// Adds w to pixel (y, x) of channel k: into the shared footprint tile when there is one, else into the gradient.
__device__ __forceinline__ void scatter(float* tile, int row0, int col0, int tile_w, int tile_size, float* plane, long long plane_size,
                                        int width, int k, int y, int x, float w)
{
    if (tile) atomicAdd(tile + k * tile_size + (y - row0) * tile_w + (x - col0), w);
    else atomicAdd(plane + k * plane_size + (long long)y * width + x, w);
}

extern "C" __global__ void roi_align_backward_kernel(const roi_align_args a)
{
    __shared__ roi_geometry shared;
    __shared__ float footprint[ROI_ALIGN_BACKWARD_CHANNELS * ROI_ALIGN_FOOTPRINT];
    const float* dout = reinterpret_cast<const float*>(a.output);
    const int bins = a.pooled_height * a.pooled_width;
    const int per_roi = a.channels * bins;
    const int groups = (a.channels + ROI_ALIGN_BACKWARD_CHANNELS - 1) / ROI_ALIGN_BACKWARD_CHANNELS;
    const long long rois = roi_count(a);
    for (long long r = blockIdx.y; r < rois; r += gridDim.y) {
        const roi_geometry g = load_roi(a, r, shared);
        const roi_align_level level = a.levels[g.level];
        const long long plane_size = (long long)level.height * level.width;
        const int samples = g.grid_h * g.grid_w;
        if (g.valid && level.data && g.grid_h > 0 && g.grid_w > 0) {   // uniform across the block
            // the RoI's footprint: from the first bin's first pixels to the last bin's last, per axis
            const bin_window first = bin_window_of(g, level, bin_start(g.y0, 0, g.bin_h), bin_start(g.x0, 0, g.bin_w));
            const bin_window last = bin_window_of(g, level, bin_start(g.y0, a.pooled_height - 1, g.bin_h), bin_start(g.x0, a.pooled_width - 1, g.bin_w));
            const int fr0 = first.row0, fc0 = first.col0;
            const int tile_h = last.row1 - fr0 + 1, tile_w = last.col1 - fc0 + 1;
            const bool tiled = tile_h >= 1 && tile_w >= 1 && (long long)tile_h * tile_w <= ROI_ALIGN_FOOTPRINT;
            const int tile_size = tiled ? tile_h * tile_w : 0;
            float* tile = tiled ? footprint : nullptr;
            for (int group = blockIdx.x; group < groups; group += gridDim.x) {
                const int c0 = group * ROI_ALIGN_BACKWARD_CHANNELS;
                const int channels = min(ROI_ALIGN_BACKWARD_CHANNELS, a.channels - c0);
                float* plane = reinterpret_cast<float*>(level.data) + ((long long)g.batch * a.channels + c0) * plane_size;
                if (tiled) {
                    for (int i = threadIdx.x; i < channels * tile_size; i += blockDim.x) footprint[i] = 0.0f;
                    __syncthreads();
                }
                for (int bin = threadIdx.x; bin < bins; bin += blockDim.x) {
                    const int ph = bin / a.pooled_width;
                    const int pw = bin - ph * a.pooled_width;
                    const float* first_dout = dout + r * per_roi + (long long)c0 * bins + bin;
                    float scaled[ROI_ALIGN_BACKWARD_CHANNELS];
#pragma unroll
                    for (int k = 0; k < ROI_ALIGN_BACKWARD_CHANNELS; ++k) scaled[k] = k < channels ? first_dout[(long long)k * bins] / samples : 0.0f;
                    const double y_start = bin_start(g.y0, ph, g.bin_h), x_start = bin_start(g.x0, pw, g.bin_w);
                    const bin_window win = bin_window_of(g, level, y_start, x_start);
                    const int row0 = win.row0, col0 = win.col0, row1 = win.row1, col1 = win.col1;
                    if (row1 - row0 < ROI_ALIGN_TILE && col1 - col0 < ROI_ALIGN_TILE) {
                        float ys[ROI_ALIGN_TILE], xs[ROI_ALIGN_TILE];
                        axis_weights(y_start, g.grid_h, g.step_h, level.height, row0, ys);
                        axis_weights(x_start, g.grid_w, g.step_w, level.width, col0, xs);
#pragma unroll
                        for (int u = 0; u < ROI_ALIGN_TILE; ++u) {
                            if (u > row1 - row0 || ys[u] == 0.0f) continue;
#pragma unroll
                            for (int v = 0; v < ROI_ALIGN_TILE; ++v) {
                                const float w = ys[u] * xs[v];
                                if (v > col1 - col0 || w == 0.0f) continue;
#pragma unroll
                                for (int k = 0; k < ROI_ALIGN_BACKWARD_CHANNELS; ++k)
                                    if (k < channels)
                                        scatter(tile, fr0, fc0, tile_w, tile_size, plane, plane_size, level.width, k, row0 + u, col0 + v, w * scaled[k]);
                            }
                        }
                    } else {
                        for (int iy = 0; iy < g.grid_h; ++iy) {
                            axis_taps ty;
                            if (!axis_taps_of(sample_at(y_start, iy, g.step_h), level.height, ty)) continue;
                            for (int ix = 0; ix < g.grid_w; ++ix) {
                                axis_taps tx;
                                if (!axis_taps_of(sample_at(x_start, ix, g.step_w), level.width, tx)) continue;
                                for (int k = 0; k < channels; ++k) {
                                    scatter(tile, fr0, fc0, tile_w, tile_size, plane, plane_size, level.width, k, ty.lo, tx.lo, ty.h * tx.h * scaled[k]);
                                    scatter(tile, fr0, fc0, tile_w, tile_size, plane, plane_size, level.width, k, ty.lo, tx.hi, ty.h * tx.l * scaled[k]);
                                    scatter(tile, fr0, fc0, tile_w, tile_size, plane, plane_size, level.width, k, ty.hi, tx.lo, ty.l * tx.h * scaled[k]);
                                    scatter(tile, fr0, fc0, tile_w, tile_size, plane, plane_size, level.width, k, ty.hi, tx.hi, ty.l * tx.l * scaled[k]);
                                }
                            }
                        }
                    }
                }
                if (tiled) {
                    __syncthreads();
                    for (int i = threadIdx.x; i < channels * tile_size; i += blockDim.x) {
                        const float w = footprint[i];
                        if (w == 0.0f) continue;
                        const int k = i / tile_size;
                        const int cell = i - k * tile_size;
                        const int y = cell / tile_w;
                        atomicAdd(plane + k * plane_size + (long long)(fr0 + y) * level.width + fc0 + (cell - y * tile_w), w);
                    }
                    __syncthreads();   // the next group clears the tile only after every thread has flushed this one
                }
            }
        }
        __syncthreads();
    }
}
