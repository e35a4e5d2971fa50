// The CUDA backend's basic tensor kernels beyond elementwise.cu: fill and copy of any dtype into a strided
// destination (with dtype conversion), the float unary ops elementwise.cu lacks, binary ops on integer
// dtypes and every comparison, and where. (Float unary and binary maps come from elementwise.cu.)
//
// Formulas (x float32 unless noted; the CPU backend's rules, CpuBackend.cs):
//   fill        out = (dtype) alpha
//   copy        out = src when the dtypes match (bit copy), else (out dtype)(double) src, truncating toward
//               zero and saturating for integer outputs, NaN giving 0 (backend.cuh)
//   unary_extra op 0 pow_scalar x^alpha | 1 clamp min(max(x, alpha), beta), NaN kept | 2 square x·x |
//               3 reciprocal 1/x | 4 softplus max(x, 0) + ln(1 + e^-|x|)
//   binary_generic  on values read as double: add, sub, mul, div (integer dtypes: floor(a / b); b = 0
//               reports an error and writes 0), pow, maximum, minimum, and the comparisons eq ne lt le gt ge
//               (output uint8 0/1); the op code is Engine.BinaryOp's number
//   where       out = cond ? a : b, cond uint8, any element size
//
// Layout: one strided_index_map (common.cuh) per launch. Operand 0 is the OUTPUT for fill and copy (their
// destination may be a strided view; operand 1 is copy's source); for unary_extra, binary_generic and
// where the output is dense over map.sizes and the operands are the inputs (x; a, b; cond, a, b), with
// stride 0 on broadcast dimensions.
// Launch: 1-D grid-stride loop over map.count (for_each_element, common.cuh), any grid and block.
// Synchronization: none. Integer division by zero is reported through the error record and surfaces at
// the host's next wait on the stream.
#include "backend.cuh"

struct tensor_args {
    unsigned long long out;
    unsigned long long a;
    unsigned long long b;
    unsigned long long c;
    unsigned long long errors;   // engine_error*
    int out_dtype;
    int in_dtype;
    int op;
    int error_op;                // DeviceErrorLog.Op reported on an error
    double alpha;
    double beta;
    strided_index_map map;
};

static_assert(sizeof(tensor_args) == 344, "tensor_args must match the host layout");

extern "C" __global__ void fill_kernel(const tensor_args args)
{
    for_each_element<1>(args.map, [&](long long, const long long (&offsets)[1]) {
        store_double(reinterpret_cast<void*>(args.out), args.out_dtype, offsets[0], args.alpha);
    });
}

extern "C" __global__ void copy_kernel(const tensor_args args)
{
    void* out = reinterpret_cast<void*>(args.out);
    const void* src = reinterpret_cast<const void*>(args.a);
    const bool same = args.out_dtype == args.in_dtype;
    const int size = dtype_size(args.out_dtype);
    for_each_element<2>(args.map, [&](long long, const long long (&offsets)[2]) {
        if (same) copy_element(out, offsets[0], src, offsets[1], size);
        else store_double(out, args.out_dtype, offsets[0], load_double(src, args.in_dtype, offsets[1]));
    });
}

extern "C" __global__ void unary_extra_kernel(const tensor_args args)
{
    float* y = reinterpret_cast<float*>(args.out);
    const float* x = reinterpret_cast<const float*>(args.a);
    const float alpha = (float)args.alpha, beta = (float)args.beta;
    for_each_element<1>(args.map, [&](long long i, const long long (&offsets)[1]) {
        const float v = x[offsets[0]];
        float r;
        switch (args.op) {
        case 0: r = powf(v, alpha); break;
        case 1: r = v != v ? v : fmaxf(fminf(v, beta), alpha); break;
        case 2: r = v * v; break;
        case 3: r = 1.0f / v; break;
        default: r = fmaxf(v, 0.0f) + logf(1.0f + expf(-fabsf(v))); if (v != v) r = v; break;
        }
        y[i] = r;
    });
}

// Engine.BinaryOp numbering.
#define OP_ADD 0
#define OP_SUB 1
#define OP_MUL 2
#define OP_DIV 3
#define OP_POW 4
#define OP_MAXIMUM 5
#define OP_MINIMUM 6
#define OP_EQ 7
#define OP_NE 8
#define OP_LT 9
#define OP_LE 10
#define OP_GT 11
#define OP_GE 12

extern "C" __global__ void binary_generic_kernel(const tensor_args args)
{
    void* out = reinterpret_cast<void*>(args.out);
    const void* a = reinterpret_cast<const void*>(args.a);
    const void* b = reinterpret_cast<const void*>(args.b);
    engine_error* errors = reinterpret_cast<engine_error*>(args.errors);
    const bool integral = args.in_dtype != ENGINE_DT_FLOAT32;
    for_each_element<2>(args.map, [&](long long i, const long long (&offsets)[2]) {
        const double u = load_double(a, args.in_dtype, offsets[0]);
        const double v = load_double(b, args.in_dtype, offsets[1]);
        double r;
        switch (args.op) {
        case OP_EQ: r = u == v ? 1.0 : 0.0; break;
        case OP_NE: r = u != v ? 1.0 : 0.0; break;
        case OP_LT: r = u < v ? 1.0 : 0.0; break;
        case OP_LE: r = u <= v ? 1.0 : 0.0; break;
        case OP_GT: r = u > v ? 1.0 : 0.0; break;
        case OP_GE: r = u >= v ? 1.0 : 0.0; break;
        case OP_ADD: r = u + v; break;
        case OP_SUB: r = u - v; break;
        case OP_MUL: r = u * v; break;
        case OP_DIV:
            if (integral && v == 0.0) {
                report_error(errors, args.error_op, 1, (long long)u, i, 0);
                r = 0.0;
            } else {
                r = integral ? floor(u / v) : u / v;
            }
            break;
        case OP_MAXIMUM: r = fmax(u, v); break;
        case OP_MINIMUM: r = fmin(u, v); break;
        default: r = pow(u, v); break;
        }
        store_double(out, args.out_dtype, i, r);
    });
}

extern "C" __global__ void where_kernel(const tensor_args args)
{
    void* out = reinterpret_cast<void*>(args.out);
    const unsigned char* cond = reinterpret_cast<const unsigned char*>(args.a);
    const void* a = reinterpret_cast<const void*>(args.b);
    const void* b = reinterpret_cast<const void*>(args.c);
    const int size = dtype_size(args.out_dtype);
    for_each_element<3>(args.map, [&](long long i, const long long (&offsets)[3]) {
        if (cond[offsets[0]] != 0) copy_element(out, i, a, offsets[1], size);
        else copy_element(out, i, b, offsets[2], size);
    });
}
