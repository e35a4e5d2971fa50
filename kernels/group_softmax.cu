// BAGS group softmax (long-tail-methods.md section 6; Li et al., "Overcoming Classifier Imbalance for Long-tail
// Object Detection with Balanced Group Softmax", CVPR 2020): a softmax, or log-softmax, within each group of
// columns of every row, forward and backward, float32.
//
// Formula, for row i and group g covering columns [o_g, o_{g+1}) (each group's "others" logit is simply one of its
// columns, the first of a BAGS foreground group; a group of one column gives p = 1, log p = 0):
//   forward   p_j = exp(x_j − m) / Σ_{l∈g} exp(x_l − m), m = max_{l∈g} x_l;   log p_j = x_j − m − ln Σ_{l∈g} exp(x_l − m)
//   backward  from the output y and its gradient dy, per group:
//             softmax      dx_j = y_j·(dy_j − Σ_{l∈g} dy_l·y_l)
//             log-softmax  dx_j = dy_j − exp(y_j)·Σ_{l∈g} dy_l
// (the vector-Jacobian products of ∂p_a/∂x_b = p_a([a = b] − p_b) and ∂log p_a/∂x_b = [a = b] − p_b; the same
// formulas as ILongTailBackend.GroupSoftmax/GroupSoftmaxBackward and SoftmaxLossReference).
//
// Layout: x, y, dy, dx (N, K) dense row-major; the G + 1 offsets (0 = o_0 < o_1 < ... < o_G = K) travel by value
// in the argument struct, at most GROUP_SOFTMAX_MAX_GROUPS groups. Output and input never alias.
// Launch: one warp per (row, group) pair, pairs numbered row-major; blocks of any multiple of 32 threads, any
// grid (a grid-stride loop over warps covers every pair).
// Synchronization: none; each warp reads only its segment and writes only its segment of the output.
#include "common.cuh"

#define GROUP_SOFTMAX_MAX_GROUPS 64

struct group_softmax_args {
    unsigned long long input;      // forward: x; backward: y (the forward's output)
    unsigned long long grad;       // backward: dy; unused in the forward
    unsigned long long output;     // forward: y; backward: dx
    long long offsets[GROUP_SOFTMAX_MAX_GROUPS + 1];
    int rows;                      // N
    int columns;                   // K
    int groups;                    // G
    int log;                       // 1: log-softmax
};

static_assert(sizeof(group_softmax_args) == 560, "group_softmax_args must match the host layout");

extern "C" __global__ void group_softmax_forward_kernel(const group_softmax_args a)
{
    const float* x = reinterpret_cast<const float*>(a.input);
    float* y = reinterpret_cast<float*>(a.output);
    const int lane = threadIdx.x & 31;
    const long long pairs = (long long)a.rows * a.groups;
    const long long warps = grid_stride() / 32;
    for (long long task = grid_first_index() / 32; task < pairs; task += warps) {
        const long long row = task / a.groups;
        const int g = (int)(task % a.groups);
        const long long begin = row * a.columns + a.offsets[g], end = row * a.columns + a.offsets[g + 1];
        float largest = -__int_as_float(0x7f800000);
        for (long long j = begin + lane; j < end; j += 32) largest = fmaxf(largest, x[j]);
        largest = warp_max(largest);
        float sum = 0.0f;
        for (long long j = begin + lane; j < end; j += 32) sum += expf(x[j] - largest);
        sum = warp_sum(sum);
        if (a.log) {
            const float shift = largest + logf(sum);
            for (long long j = begin + lane; j < end; j += 32) y[j] = x[j] - shift;
        } else {
            for (long long j = begin + lane; j < end; j += 32) y[j] = expf(x[j] - largest) / sum;
        }
    }
}

extern "C" __global__ void group_softmax_backward_kernel(const group_softmax_args a)
{
    const float* y = reinterpret_cast<const float*>(a.input);
    const float* dy = reinterpret_cast<const float*>(a.grad);
    float* dx = reinterpret_cast<float*>(a.output);
    const int lane = threadIdx.x & 31;
    const long long pairs = (long long)a.rows * a.groups;
    const long long warps = grid_stride() / 32;
    for (long long task = grid_first_index() / 32; task < pairs; task += warps) {
        const long long row = task / a.groups;
        const int g = (int)(task % a.groups);
        const long long begin = row * a.columns + a.offsets[g], end = row * a.columns + a.offsets[g + 1];
        float sum = 0.0f;
        if (a.log) {
            for (long long j = begin + lane; j < end; j += 32) sum += dy[j];
            sum = warp_sum(sum);
            for (long long j = begin + lane; j < end; j += 32) dx[j] = dy[j] - expf(y[j]) * sum;
        } else {
            for (long long j = begin + lane; j < end; j += 32) sum += dy[j] * y[j];
            sum = warp_sum(sum);
            for (long long j = begin + lane; j < end; j += 32) dx[j] = y[j] * (dy[j] - sum);
        }
    }
}
