// Element-wise float32 kernels: unary maps, binary maps with NumPy broadcasting, and the backward
// kernels that fuse what would otherwise take several passes (relu, sigmoid and tanh from a saved
// tensor; pow, maximum and minimum for both operands at once).
//
// Forward, y = f(x) or out = f(a, b):
//   neg -x | exp e^x | log ln x | sqrt √x | abs |x| | sign -1, 0, +1 (±0 and NaN kept)
//   relu x if x > 0 or x is NaN, else 0 (NaN propagates, as in PyTorch and the engine's reference)
//   sigmoid 1 / (1 + e^-x) | tanh
//   add a+b | sub a-b | mul a·b | div a/b | pow a^b (C99 powf special cases)
//   maximum / minimum: the larger / smaller operand; a NaN in either operand gives NaN
// Backward, g = ∂L/∂y given:
//   relu      dx = g · [s > 0], s the relu input or output (both have the same sign pattern)
//   sigmoid   dx = g · y (1 - y)          (σ' = σ(1 - σ)), y the sigmoid output
//   tanh      dx = g · (1 - y²)           (tanh' = 1 - tanh²), y the tanh output
//   pow       da = g · b a^(b-1), 0 where b = 0;  db = g · a^b ln a, 0 where a = 0 and b >= 0
//   maximum   the selected operand gets g; on a tie (a == b) each gets g / 2
//   minimum   likewise
// Gradient conventions at kinks and special values are PyTorch's (tools/autograd/derivatives.yaml). The pow,
// maximum and minimum backward kernels write both gradients at the OUTPUT shape; the gradient of a
// broadcast operand is their sum over its broadcast dimensions, a reduction left to the caller.
// abs backward is g · sign(x), two existing ops, so it has no kernel of its own.
//
// Layout: every input is read through a strided_index_map (common.cuh): any strides, stride 0 on
// broadcast dimensions, up to ENGINE_MAX_DIMS dimensions. Every output is dense row-major over
// map.sizes (element i at offset i). Inputs may alias each other but never an output.
// Launch: 1-D grid-stride loop (for_each_element: 32-bit index arithmetic where the map fits), any grid and
// block size; map.count = 0 writes nothing.
// Synchronization: none inside or between these kernels; each reads only its inputs and writes
// only its own output elements, so launches on one stream need no host synchronization until
// the host reads a result back.
#include "common.cuh"

template <typename F>
__device__ __forceinline__ void map_unary(float* y, const float* x, const strided_index_map& map, F f)
{
    for_each_element<1>(map, [&](long long i, const long long (&offsets)[1]) { y[i] = f(x[offsets[0]]); });
}

template <typename F>
__device__ __forceinline__ void map_binary(float* out, const float* a, const float* b, const strided_index_map& map, F f)
{
    for_each_element<2>(map, [&](long long i, const long long (&offsets)[2]) { out[i] = f(a[offsets[0]], b[offsets[1]]); });
}

// Gradients of a binary op: reads (dy, a, b), writes (da, db).
template <typename F>
__device__ __forceinline__ void map_binary_backward(float* da, float* db, const float* dy, const float* a,
                                                    const float* b, const strided_index_map& map, F f)
{
    for_each_element<3>(map, [&](long long i, const long long (&offsets)[3]) {
        f(dy[offsets[0]], a[offsets[1]], b[offsets[2]], da[i], db[i]);
    });
}

// ---- unary forward ------------------------------------------------------------------------------

extern "C" __global__ void neg_forward_kernel(float* y, const float* x, const strided_index_map map)
{
    map_unary(y, x, map, [](float v) { return -v; });
}

extern "C" __global__ void exp_forward_kernel(float* y, const float* x, const strided_index_map map)
{
    map_unary(y, x, map, [](float v) { return expf(v); });
}

extern "C" __global__ void log_forward_kernel(float* y, const float* x, const strided_index_map map)
{
    map_unary(y, x, map, [](float v) { return logf(v); });
}

extern "C" __global__ void sqrt_forward_kernel(float* y, const float* x, const strided_index_map map)
{
    map_unary(y, x, map, [](float v) { return sqrtf(v); });
}

extern "C" __global__ void abs_forward_kernel(float* y, const float* x, const strided_index_map map)
{
    map_unary(y, x, map, [](float v) { return fabsf(v); });
}

extern "C" __global__ void relu_forward_kernel(float* y, const float* x, const strided_index_map map)
{
    map_unary(y, x, map, [](float v) { return relu_value(v); });
}

extern "C" __global__ void sigmoid_forward_kernel(float* y, const float* x, const strided_index_map map)
{
    // For x -> -inf, expf(-x) overflows to inf and the quotient is exactly 0, the correct limit.
    map_unary(y, x, map, [](float v) { return 1.0f / (1.0f + expf(-v)); });
}

extern "C" __global__ void tanh_forward_kernel(float* y, const float* x, const strided_index_map map)
{
    map_unary(y, x, map, [](float v) { return tanhf(v); });
}

extern "C" __global__ void sign_forward_kernel(float* y, const float* x, const strided_index_map map)
{
    // Returning v itself for zero and NaN keeps the sign of zero and propagates NaN.
    map_unary(y, x, map, [](float v) { return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v); });
}

// ---- binary forward -----------------------------------------------------------------------------

extern "C" __global__ void add_forward_kernel(float* out, const float* a, const float* b, const strided_index_map map)
{
    map_binary(out, a, b, map, [](float u, float v) { return u + v; });
}

extern "C" __global__ void sub_forward_kernel(float* out, const float* a, const float* b, const strided_index_map map)
{
    map_binary(out, a, b, map, [](float u, float v) { return u - v; });
}

extern "C" __global__ void mul_forward_kernel(float* out, const float* a, const float* b, const strided_index_map map)
{
    map_binary(out, a, b, map, [](float u, float v) { return u * v; });
}

extern "C" __global__ void div_forward_kernel(float* out, const float* a, const float* b, const strided_index_map map)
{
    map_binary(out, a, b, map, [](float u, float v) { return u / v; });
}

extern "C" __global__ void pow_forward_kernel(float* out, const float* a, const float* b, const strided_index_map map)
{
    map_binary(out, a, b, map, [](float u, float v) { return powf(u, v); });
}

extern "C" __global__ void maximum_forward_kernel(float* out, const float* a, const float* b, const strided_index_map map)
{
    // fmaxf would drop a NaN operand; a NaN in either operand must reach the output.
    map_binary(out, a, b, map, [](float u, float v) { return (u > v || u != u) ? u : v; });
}

extern "C" __global__ void minimum_forward_kernel(float* out, const float* a, const float* b, const strided_index_map map)
{
    map_binary(out, a, b, map, [](float u, float v) { return (u < v || u != u) ? u : v; });
}

extern "C" __global__ void add_relu_forward_kernel(float* out, const float* a, const float* b, const strided_index_map map)
{
    map_binary(out, a, b, map, [](float u, float v) { return relu_value(u + v); });
}

// ---- backward -----------------------------------------------------------------------------------

extern "C" __global__ void relu_backward_kernel(float* dx, const float* dy, const float* saved, const strided_index_map map)
{
    map_binary(dx, dy, saved, map, [](float g, float s) { return s > 0.0f ? g : 0.0f; });
}

extern "C" __global__ void sigmoid_backward_kernel(float* dx, const float* dy, const float* y, const strided_index_map map)
{
    map_binary(dx, dy, y, map, [](float g, float out) { return g * out * (1.0f - out); });
}

extern "C" __global__ void tanh_backward_kernel(float* dx, const float* dy, const float* y, const strided_index_map map)
{
    map_binary(dx, dy, y, map, [](float g, float out) { return g * (1.0f - out * out); });
}

extern "C" __global__ void pow_backward_kernel(float* da, float* db, const float* dy, const float* a, const float* b,
                                               const strided_index_map map)
{
    map_binary_backward(da, db, dy, a, b, map, [](float g, float u, float v, float& gu, float& gv) {
        gu = v == 0.0f ? 0.0f : g * v * powf(u, v - 1.0f);
        gv = (u == 0.0f && v >= 0.0f) ? 0.0f : g * powf(u, v) * logf(u);
    });
}

extern "C" __global__ void maximum_backward_kernel(float* da, float* db, const float* dy, const float* a, const float* b,
                                                   const strided_index_map map)
{
    map_binary_backward(da, db, dy, a, b, map, [](float g, float u, float v, float& gu, float& gv) {
        if (u == v) { gu = 0.5f * g; gv = 0.5f * g; }
        else if (u > v || u != u) { gu = g; gv = 0.0f; }
        else { gu = 0.0f; gv = g; }
    });
}

extern "C" __global__ void minimum_backward_kernel(float* da, float* db, const float* dy, const float* a, const float* b,
                                                   const strided_index_map map)
{
    map_binary_backward(da, db, dy, a, b, map, [](float g, float u, float v, float& gu, float& gv) {
        if (u == v) { gu = 0.5f * g; gv = 0.5f * g; }
        else if (u < v || u != u) { gu = g; gv = 0.0f; }
        else { gu = 0.0f; gv = g; }
    });
}
