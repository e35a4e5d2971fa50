// Flat C API of the engine's native CPU library. Every function returns an engine_status;
// on failure the thread-local message from engine_last_error() says what went wrong, and the
// C# side turns it into an exception naming the call.
//
// Conventions of the oneDNN calls (float32 only):
//   activations NCHW, contiguous;  weights (C_out, C_in/groups, kh, kw), contiguous;
//   bias (C_out);  dilation 1 = ordinary convolution (the PyTorch convention, not oneDNN's d-1);
//   padding symmetric: pad_h rows above and below, pad_w columns left and right;
//   out = (in + 2*pad - dil*(k-1) - 1) / stride + 1, and the caller states it in out_h/out_w.
// Outputs, gradients included, are OVERWRITTEN, never accumulated into: the caller adds a
// returned gradient to its running gradient itself.
// Every call may run concurrently from several threads; computation inside one call is spread over
// the cores by oneDNN's OpenMP runtime.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ENGINE_API __attribute__((visibility("default")))

typedef int32_t engine_status;
enum { ENGINE_OK = 0, ENGINE_ERROR = 1 };

ENGINE_API const char* engine_last_error(void);
ENGINE_API int32_t engine_native_abi_version(void);
/// Threads oneDNN's OpenMP runtime uses for one call (OMP_NUM_THREADS, else the core count).
ENGINE_API int32_t engine_native_max_threads(void);

/// One 2-D convolution. All fields are element counts; see the conventions above.
typedef struct engine_conv2d_desc {
    int64_t n, c_in, h, w;
    int64_t c_out, kh, kw;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dil_h, dil_w;
    int64_t groups;
    int64_t out_h, out_w;
} engine_conv2d_desc;

/// Weight caching: oneDNN computes with the weights in a layout of its choosing. A call with
/// weight_key != 0 keeps the weights reordered into that layout and reuses them for as long as
/// (weight_key, weight_version, geometry) is unchanged; the caller must pass a new weight_version
/// whenever it writes the weights. weight_key = 0 disables caching (reordered on every call).

/// dst (N, C_out, out_h, out_w) = conv(src (N, C_in, H, W), weights) + bias; bias may be NULL.
ENGINE_API engine_status engine_conv2d_forward(const engine_conv2d_desc* desc, const float* src,
                                               const float* weights, const float* bias, float* dst,
                                               uint64_t weight_key, uint64_t weight_version);

/// diff_src (N, C_in, H, W) = gradient of the convolution's input, given diff_dst (N, C_out, out_h, out_w).
ENGINE_API engine_status engine_conv2d_backward_data(const engine_conv2d_desc* desc, const float* diff_dst,
                                                     const float* weights, float* diff_src,
                                                     uint64_t weight_key, uint64_t weight_version);

/// diff_weights (C_out, C_in/groups, kh, kw) and, unless diff_bias is NULL, diff_bias (C_out):
/// gradients of the weights and bias, given the forward input src and diff_dst.
ENGINE_API engine_status engine_conv2d_backward_weights(const engine_conv2d_desc* desc, const float* src,
                                                        const float* diff_dst, float* diff_weights,
                                                        float* diff_bias);

/// Batched matrix product C[b] = op(A[b]) @ op(B[b]), b = 0..batch-1, row-major:
///   op(A) is (m, k): A is stored (m, k) with row pitch lda >= k, or, when trans_a, (k, m) with lda >= m;
///   op(B) is (k, n): B is stored (k, n) with ldb >= n, or, when trans_b, (n, k) with ldb >= k;
///   C is (m, n) with ldc >= n.
/// batch_stride_* is the distance in elements between consecutive matrices; 0 for A or B reuses one
/// matrix for every batch entry (broadcast). C is overwritten.
typedef struct engine_matmul_desc {
    int64_t batch, m, n, k;
    int32_t trans_a, trans_b;
    int64_t lda, ldb, ldc;
    int64_t batch_stride_a, batch_stride_b, batch_stride_c;
} engine_matmul_desc;

ENGINE_API engine_status engine_matmul(const engine_matmul_desc* desc, const float* a, const float* b, float* c);

/// Layout policy of the convolutions: which of oneDNN's implementations computes a geometry.
///   0 auto    - the first call of each geometry times both candidates below and keeps the faster
///               (default; ENGINE_ONEDNN_LAYOUT=auto|blocked|plain sets the initial policy);
///   1 blocked - oneDNN picks every layout (blocked channels), activations reordered on the way in/out;
///   2 plain   - oneDNN computes on NCHW directly (GEMM-based), no activation reorders.
/// Every policy gives the same result up to float rounding.
ENGINE_API engine_status engine_onednn_set_layout_policy(int32_t policy);
ENGINE_API int32_t engine_onednn_get_layout_policy(void);

typedef struct engine_onednn_stats {
    uint64_t primitives_created;   // convolution and matmul primitives built (reorders not counted)
    uint64_t weight_reorders;      // weight tensors reordered into a oneDNN layout
    uint64_t cached_plans;         // entries of the primitive cache
    uint64_t cached_weights;       // entries of the reordered-weight cache
} engine_onednn_stats;

ENGINE_API engine_status engine_onednn_get_stats(engine_onednn_stats* stats);
/// Weight reorders performed so far for one weight_key (counts survive engine_onednn_clear_caches).
ENGINE_API uint64_t engine_onednn_weight_reorders_for_key(uint64_t weight_key);
/// Drops every cached primitive and reordered weight tensor (the counters keep running).
ENGINE_API engine_status engine_onednn_clear_caches(void);
/// Drops the cached reordered copies of one weight; called when the weight's memory is freed.
ENGINE_API engine_status engine_onednn_forget_weights(uint64_t weight_key);

#ifdef __cplusplus
}
#endif
