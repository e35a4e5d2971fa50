// Greedy IoU non-maximum suppression with the keep scan on the device, plain and class-aware (batched), float32
// boxes. Semantics of torchvision's nms / batched_nms and of the engine's CPU backend: walk the boxes by decreasing
// score (ties, and -0 = +0, by increasing index; NaN scores first), keep a box unless a kept box of the same class
// overlaps it with IoU strictly above the threshold. Output: the kept indices by decreasing score.
//
// Formula: IoU(a, b) = inter / (area_a + area_b − inter), inter = max(0, min(x2) − max(x1)) · max(0, min(y2) − max(y1)),
// area = (x2 − x1)(y2 − y1), every step a correctly rounded float operation (the _rn intrinsics forbid contraction
// into FMAs), exactly the expression the CPU backend evaluates, so both suppress the same pairs bit for bit; the
// float IoU is compared in double with the threshold. A NaN IoU never suppresses.
//
// Method (cost Σ_c n_c² IoU pairs for class-aware NMS instead of R²):
//   1. nms_score_keys_kernel: 128-bit keys (0, score key · 2^32 + index), padded to P = 2^k ≥ 2 with all-ones keys.
//   2. bitonic sort of the keys, ascending: nms_sort_tile_kernel sorts tiles of NMS_SORT_TILE keys in shared memory;
//      for each larger stage k, nms_sort_step_kernel runs the steps j ≥ NMS_SORT_TILE in global memory and
//      nms_sort_merge_kernel the remaining steps of the tile in shared memory.
//   3. nms_rank_kernel: order[rank] = index; keys become (class, rank). Class-aware: sort again (step 2), which
//      groups each class into one segment with its boxes in score order; plain NMS skips the second sort.
//   4. nms_segments_kernel (one block): segment starts, and per segment its tile count W² and mask words n·W
//      (W = ceil(n / 64)), prefix-summed, so segment s owns mask words [mask_offset[s], mask_offset[s+1]).
//   5. nms_mask_kernel: for each tile (row block, column block ≥ row block) of each segment, 64 threads set bit j of
//      word (row i, column block) when box j (later in score order) has IoU > threshold with box i.
//   6. nms_scan_kernel: one warp per segment walks its boxes in order, keeping a box unless its "removed" bit is
//      set, and ORs each kept box's mask row into "removed" (dynamic shared memory, W words); writes flags[rank].
//   7. nms_compact_kernel (one block): keep[0..count) = order[rank] of the flagged ranks in rank order, count.
//
// Layout: boxes (R, 4) = (x1, y1, x2, y2) float; scores (R) float; classes (R) int64 or null; keep (R) int64, of
// which only the first count entries are written; kept_count int32 [1]. Workspace (the host allocates it):
// keys 2P uint64, order / sorted_rank / flags R int32 each, seg_start R + 1 int32, tile_offset and mask_offset
// R + 1 int64 each, seg_count int32 [1], mask R·ceil(R / 64) uint64 (the bound for one segment).
// Launch: see each kernel; every launch reads its sizes from the by-value struct, and segment counts and totals
// from device memory, so the host never waits between launches.
// Synchronization: none inside; the host reads kept_count back once, after the last launch, when it needs the
// number of kept boxes (the one sync of a call that returns the count).
#include "common.cuh"

#define NMS_SORT_TILE 2048
#define NMS_BLOCK_BOXES 64

struct nms_args {
    unsigned long long boxes;        // const float (R, 4)
    unsigned long long scores;       // const float (R)
    unsigned long long classes;      // const long long (R), or 0 for plain NMS
    unsigned long long keys;         // unsigned long long (P, 2): (hi, lo) per key
    unsigned long long order;        // int (R): original index of each rank
    unsigned long long sorted_rank;  // int (R): rank of each class-sorted position
    unsigned long long seg_start;    // int (R + 1)
    unsigned long long tile_offset;  // long long (R + 1)
    unsigned long long mask_offset;  // long long (R + 1)
    unsigned long long seg_count;    // int (1)
    unsigned long long mask;         // unsigned long long, see above
    unsigned long long flags;        // int (R): 1 kept, 0 suppressed, by rank
    unsigned long long keep;         // long long (R)
    unsigned long long kept_count;   // int (1)
    double iou_threshold;
    int count;                       // R
    int padded;                      // P
    int stage;                       // sort: k of the bitonic stage
    int step;                        // sort: j of the global step
};

static_assert(sizeof(nms_args) == 136, "nms_args must match the host layout");

struct nms_key {
    unsigned long long hi, lo;
};

__device__ __forceinline__ bool key_greater(const nms_key& a, const nms_key& b)
{
    return a.hi > b.hi || (a.hi == b.hi && a.lo > b.lo);
}

__device__ __forceinline__ nms_key load_key(const unsigned long long* keys, long long p) { return {keys[2 * p], keys[2 * p + 1]}; }

__device__ __forceinline__ void store_key(unsigned long long* keys, long long p, const nms_key& k)
{
    keys[2 * p] = k.hi;
    keys[2 * p + 1] = k.lo;
}

// Descending score as an ascending 32-bit key: monotone in the float value, -0 = +0, every NaN above +inf.
__device__ __forceinline__ unsigned int descending_score_key(float s)
{
    if (s == 0.0f) s = 0.0f;
    const unsigned int bits = __float_as_uint(s);
    const unsigned int ascending = s != s ? 0xffffffffu : ((bits & 0x80000000u) ? ~bits : (bits | 0x80000000u));
    return ~ascending;
}

extern "C" __global__ void nms_score_keys_kernel(const nms_args a)
{
    unsigned long long* keys = reinterpret_cast<unsigned long long*>(a.keys);
    const float* scores = reinterpret_cast<const float*>(a.scores);
    for (long long p = grid_first_index(); p < a.padded; p += grid_stride()) {
        if (p < a.count) store_key(keys, p, {0ull, ((unsigned long long)descending_score_key(scores[p]) << 32) | (unsigned long long)p});
        else store_key(keys, p, {~0ull, ~0ull});
    }
}

// Compare-exchange of positions i < partner for bitonic stage k: ascending where (i & k) == 0.
__device__ __forceinline__ void bitonic_exchange(nms_key& x, nms_key& y, long long i, long long k)
{
    const bool ascending = (i & k) == 0;
    if (key_greater(x, y) == ascending) {
        const nms_key t = x;
        x = y;
        y = t;
    }
}

// One block of min(P, NMS_SORT_TILE) / 2 threads sorts each tile of min(P, NMS_SORT_TILE) keys: stages
// k = 2 .. tile, each tile in the direction its global position gives (so tiles form bitonic runs for later stages).
extern "C" __global__ void nms_sort_tile_kernel(const nms_args a)
{
    __shared__ nms_key tile[NMS_SORT_TILE];
    unsigned long long* keys = reinterpret_cast<unsigned long long*>(a.keys);
    const int size = min(a.padded, NMS_SORT_TILE);
    for (long long base = (long long)blockIdx.x * size; base < a.padded; base += (long long)gridDim.x * size) {
        for (int t = threadIdx.x; t < size; t += blockDim.x) tile[t] = load_key(keys, base + t);
        __syncthreads();
        for (int k = 2; k <= size; k <<= 1)
            for (int j = k >> 1; j > 0; j >>= 1) {
                for (int t = threadIdx.x; t < size / 2; t += blockDim.x) {
                    const int i = 2 * t - (t & (j - 1));   // the lower position of pair t at distance j
                    bitonic_exchange(tile[i], tile[i + j], base + i, k);
                }
                __syncthreads();
            }
        for (int t = threadIdx.x; t < size; t += blockDim.x) store_key(keys, base + t, tile[t]);
        __syncthreads();
    }
}

// One global step (stage k = a.stage, distance j = a.step ≥ NMS_SORT_TILE) over P / 2 pairs, grid-stride.
extern "C" __global__ void nms_sort_step_kernel(const nms_args a)
{
    unsigned long long* keys = reinterpret_cast<unsigned long long*>(a.keys);
    const long long j = a.step;
    for (long long t = grid_first_index(); t < a.padded / 2; t += grid_stride()) {
        const long long i = 2 * t - (t & (j - 1));
        nms_key x = load_key(keys, i), y = load_key(keys, i + j);
        bitonic_exchange(x, y, i, a.stage);
        store_key(keys, i, x);
        store_key(keys, i + j, y);
    }
}

// The steps j = NMS_SORT_TILE / 2 .. 1 of stage k = a.stage, one tile per block iteration, in shared memory.
extern "C" __global__ void nms_sort_merge_kernel(const nms_args a)
{
    __shared__ nms_key tile[NMS_SORT_TILE];
    unsigned long long* keys = reinterpret_cast<unsigned long long*>(a.keys);
    for (long long base = (long long)blockIdx.x * NMS_SORT_TILE; base < a.padded; base += (long long)gridDim.x * NMS_SORT_TILE) {
        for (int t = threadIdx.x; t < NMS_SORT_TILE; t += blockDim.x) tile[t] = load_key(keys, base + t);
        __syncthreads();
        for (int j = NMS_SORT_TILE >> 1; j > 0; j >>= 1) {
            for (int t = threadIdx.x; t < NMS_SORT_TILE / 2; t += blockDim.x) {
                const int i = 2 * t - (t & (j - 1));
                bitonic_exchange(tile[i], tile[i + j], base + i, a.stage);
            }
            __syncthreads();
        }
        for (int t = threadIdx.x; t < NMS_SORT_TILE; t += blockDim.x) store_key(keys, base + t, tile[t]);
        __syncthreads();
    }
}

// After the score sort: order[rank] = index, and key[rank] = (class, rank) for the class sort (plain NMS: (0, rank),
// already in order).
extern "C" __global__ void nms_rank_kernel(const nms_args a)
{
    unsigned long long* keys = reinterpret_cast<unsigned long long*>(a.keys);
    int* order = reinterpret_cast<int*>(a.order);
    const long long* classes = reinterpret_cast<const long long*>(a.classes);
    for (long long p = grid_first_index(); p < a.count; p += grid_stride()) {
        const int index = (int)(keys[2 * p + 1] & 0xffffffffull);
        order[p] = index;
        // flipping the sign bit orders signed class ids as unsigned keys
        const unsigned long long cls = classes ? ((unsigned long long)classes[index] ^ 0x8000000000000000ull) : 0ull;
        store_key(keys, p, {cls, (unsigned long long)p});
    }
}

// One block (blockDim.x a multiple of 32): segment boundaries of the (class, rank)-sorted keys and the tile and
// mask-word offsets of each segment.
extern "C" __global__ void nms_segments_kernel(const nms_args a)
{
    __shared__ long long scratch[32];
    __shared__ int base;
    const unsigned long long* keys = reinterpret_cast<const unsigned long long*>(a.keys);
    int* sorted_rank = reinterpret_cast<int*>(a.sorted_rank);
    int* seg_start = reinterpret_cast<int*>(a.seg_start);
    long long* tile_offset = reinterpret_cast<long long*>(a.tile_offset);
    long long* mask_offset = reinterpret_cast<long long*>(a.mask_offset);
    if (threadIdx.x == 0) base = 0;
    __syncthreads();
    for (int chunk = 0; chunk < a.count; chunk += blockDim.x) {
        const int p = chunk + threadIdx.x;
        int head = 0;
        if (p < a.count) {
            sorted_rank[p] = (int)keys[2 * p + 1];
            head = p == 0 || keys[2 * p] != keys[2 * (p - 1)];
        }
        long long total;
        const long long before = block_exclusive_scan((long long)head, scratch, total);
        if (head) seg_start[base + before] = p;
        __syncthreads();
        if (threadIdx.x == 0) base += (int)total;
        __syncthreads();
    }
    const int segments = base;
    if (threadIdx.x == 0) {
        seg_start[segments] = a.count;
        *reinterpret_cast<int*>(a.seg_count) = segments;
    }
    __syncthreads();
    long long tiles_before = 0, words_before = 0;
    for (int chunk = 0; chunk < segments; chunk += blockDim.x) {
        const int s = chunk + threadIdx.x;
        long long tiles = 0, words = 0;
        if (s < segments) {
            const long long n = seg_start[s + 1] - seg_start[s];
            const long long w = (n + NMS_BLOCK_BOXES - 1) / NMS_BLOCK_BOXES;
            tiles = w * w;
            words = n * w;
        }
        long long tiles_total, words_total;
        const long long tile_prefix = block_exclusive_scan(tiles, scratch, tiles_total);
        const long long word_prefix = block_exclusive_scan(words, scratch, words_total);
        if (s < segments) {
            tile_offset[s] = tiles_before + tile_prefix;
            mask_offset[s] = words_before + word_prefix;
        }
        tiles_before += tiles_total;
        words_before += words_total;
    }
    if (threadIdx.x == 0) {
        tile_offset[segments] = tiles_before;
        mask_offset[segments] = words_before;
    }
}

__device__ __forceinline__ float box_area(float x1, float y1, float x2, float y2)
{
    return __fmul_rn(__fsub_rn(x2, x1), __fsub_rn(y2, y1));
}

// IoU of a (the higher-scored box) and b, with a[4] and b[4] the areas.
__device__ __forceinline__ float box_iou(const float* a, const float* b)
{
    const float w = nan_max(0.0f, __fsub_rn(nan_min(a[2], b[2]), nan_max(a[0], b[0])));
    const float h = nan_max(0.0f, __fsub_rn(nan_min(a[3], b[3]), nan_max(a[1], b[1])));
    const float inter = __fmul_rn(w, h);
    return __fdiv_rn(inter, __fsub_rn(__fadd_rn(a[4], b[4]), inter));
}

__device__ __forceinline__ void load_box(const nms_args& a, int sorted_position, float* box)
{
    const int index = reinterpret_cast<const int*>(a.order)[reinterpret_cast<const int*>(a.sorted_rank)[sorted_position]];
    const float* b = reinterpret_cast<const float*>(a.boxes) + 4LL * index;
    box[0] = b[0];
    box[1] = b[1];
    box[2] = b[2];
    box[3] = b[3];
    box[4] = box_area(b[0], b[1], b[2], b[3]);
}

// Largest s in [0, segments) with offsets[s] <= t (offsets rise, offsets[0] = 0 <= t).
__device__ __forceinline__ int find_segment(const long long* offsets, int segments, long long t)
{
    int lo = 0, hi = segments - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (offsets[mid] <= t) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

// Blocks of NMS_BLOCK_BOXES threads, grid-stride over all tiles of all segments.
extern "C" __global__ void nms_mask_kernel(const nms_args a)
{
    __shared__ float columns[NMS_BLOCK_BOXES * 5];
    const int segments = *reinterpret_cast<const int*>(a.seg_count);
    const long long* tile_offset = reinterpret_cast<const long long*>(a.tile_offset);
    const long long* mask_offset = reinterpret_cast<const long long*>(a.mask_offset);
    const int* seg_start = reinterpret_cast<const int*>(a.seg_start);
    unsigned long long* mask = reinterpret_cast<unsigned long long*>(a.mask);
    const long long tiles = segments > 0 ? tile_offset[segments] : 0;
    for (long long t = blockIdx.x; t < tiles; t += gridDim.x) {
        const int s = find_segment(tile_offset, segments, t);
        const int start = seg_start[s];
        const int n = seg_start[s + 1] - start;
        const int words = (n + NMS_BLOCK_BOXES - 1) / NMS_BLOCK_BOXES;
        const long long local = t - tile_offset[s];
        const int row_block = (int)(local / words), column_block = (int)(local % words);
        if (column_block < row_block) continue;   // uniform over the block; the scan never reads these words
        const int column_count = min(NMS_BLOCK_BOXES, n - column_block * NMS_BLOCK_BOXES);
        if (threadIdx.x < column_count) load_box(a, start + column_block * NMS_BLOCK_BOXES + threadIdx.x, columns + 5 * threadIdx.x);
        __syncthreads();
        const int row = row_block * NMS_BLOCK_BOXES + threadIdx.x;
        if (row < n) {
            float box[5];
            load_box(a, start + row, box);
            unsigned long long word = 0;
            for (int j = 0; j < column_count; ++j)
                if (column_block * NMS_BLOCK_BOXES + j > row && (double)box_iou(box, columns + 5 * j) > a.iou_threshold)
                    word |= 1ull << j;
            mask[mask_offset[s] + (long long)row * words + column_block] = word;
        }
        __syncthreads();
    }
}

// Blocks of 32 threads (one warp) with ceil(R / 64) · 8 bytes of dynamic shared memory, grid-stride over segments.
extern "C" __global__ void nms_scan_kernel(const nms_args a)
{
    extern __shared__ unsigned long long removed[];
    const int segments = *reinterpret_cast<const int*>(a.seg_count);
    const int* seg_start = reinterpret_cast<const int*>(a.seg_start);
    const int* sorted_rank = reinterpret_cast<const int*>(a.sorted_rank);
    const long long* mask_offset = reinterpret_cast<const long long*>(a.mask_offset);
    const unsigned long long* all_masks = reinterpret_cast<const unsigned long long*>(a.mask);
    int* flags = reinterpret_cast<int*>(a.flags);
    const int lane = threadIdx.x;
    for (int s = blockIdx.x; s < segments; s += gridDim.x) {
        const int start = seg_start[s];
        const int n = seg_start[s + 1] - start;
        const int words = (n + NMS_BLOCK_BOXES - 1) / NMS_BLOCK_BOXES;
        const unsigned long long* mask = all_masks + mask_offset[s];
        for (int w = lane; w < words; w += 32) removed[w] = 0;
        __syncwarp();
        for (int b = 0; b < words; ++b) {
            // every lane resolves the block's 64 boxes identically from the diagonal words (no exchange needed)
            const int rows = min(NMS_BLOCK_BOXES, n - b * NMS_BLOCK_BOXES);
            unsigned long long current = removed[b], kept = 0;
            for (int bit = 0; bit < rows; ++bit) {
                if ((current >> bit) & 1ull) continue;
                kept |= 1ull << bit;
                current |= mask[(long long)(b * NMS_BLOCK_BOXES + bit) * words + b];
            }
            for (int bit = lane; bit < rows; bit += 32)
                flags[sorted_rank[start + b * NMS_BLOCK_BOXES + bit]] = (int)((kept >> bit) & 1ull);
            // each kept box removes what it overlaps in the later blocks; lanes own distinct words
            for (unsigned long long left = kept; left != 0; left &= left - 1) {
                const int bit = __ffsll((long long)left) - 1;
                const unsigned long long* row = mask + (long long)(b * NMS_BLOCK_BOXES + bit) * words;
                for (int w = b + 1 + lane; w < words; w += 32) removed[w] |= row[w];
            }
            __syncwarp();
        }
        __syncwarp();
    }
}

// One block (blockDim.x a multiple of 32): keep[0..count) = order[rank] for the kept ranks in rank order.
extern "C" __global__ void nms_compact_kernel(const nms_args a)
{
    __shared__ int scratch[32];
    __shared__ int base;
    const int* flags = reinterpret_cast<const int*>(a.flags);
    const int* order = reinterpret_cast<const int*>(a.order);
    long long* keep = reinterpret_cast<long long*>(a.keep);
    if (threadIdx.x == 0) base = 0;
    __syncthreads();
    for (int chunk = 0; chunk < a.count; chunk += blockDim.x) {
        const int rank = chunk + threadIdx.x;
        const int kept = rank < a.count ? flags[rank] : 0;
        int total;
        const int before = block_exclusive_scan(kept, scratch, total);
        if (kept) keep[base + before] = order[rank];
        __syncthreads();
        if (threadIdx.x == 0) base += total;
        __syncthreads();
    }
    if (threadIdx.x == 0) *reinterpret_cast<int*>(a.kept_count) = base;
}
