// Device helpers shared by the CUDA backend's tensor kernels (tensor.cu, reduce.cu, softmax.cu, indexing.cu,
// sort.cu, pooling.cu, normalization.cu): element access by dtype code, value conversions with the CPU
// backend's rules, and the deferred error record through which a kernel reports bad input (an index out of
// range, a target outside [0, C)) without the host waiting for it.
//
// dtype codes are Engine.DType's: 0 float32, 1 int32, 2 int64, 3 uint8.
// Conversions go through double, as CpuBackend.ReadDouble / WriteDouble do: to an integer type by
// truncation toward zero, saturating at the type's range, NaN giving 0 (.NET's conversion rules).
//
// Error record (mirrored by src/Engine.Cuda/Backend/DeviceErrorLog.cs, 40 bytes): page-locked host memory
// mapped into the device. The first failing thread claims it with atomicCAS on `code` and fills in the op,
// the values and the position; later failures are dropped. The host reads it after the next point where it
// waits for the stream anyway (a copy to the host, a data-dependent shape) and throws there, naming the op,
// the values and the fix. So a kernel never needs a host synchronization to reject its input.
#pragma once

#include "common.cuh"

#define ENGINE_DT_FLOAT32 0
#define ENGINE_DT_INT32 1
#define ENGINE_DT_INT64 2
#define ENGINE_DT_UINT8 3

struct engine_error {
    int code;            // 0: no error; else a code of DeviceErrorLog.ErrorCode
    int op;              // DeviceErrorLog.Op of the kernel that failed
    long long value;     // the offending value (an index, a target)
    long long position;  // where it was found (element of the index tensor, row)
    long long limit;     // the size it had to stay below
    long long extra;     // a second size where the message needs one
};

static_assert(sizeof(engine_error) == 40, "engine_error must match the host layout");

__device__ __forceinline__ void report_error(engine_error* log, int op, int code, long long value, long long position,
                                             long long limit, long long extra = 0)
{
    if (log == nullptr) return;
    if (atomicCAS(&log->code, 0, -1) == 0) {
        log->op = op;
        log->value = value;
        log->position = position;
        log->limit = limit;
        log->extra = extra;
        __threadfence_system();
        atomicExch(&log->code, code);
    }
}

__device__ __forceinline__ int dtype_size(int dtype)
{
    return dtype == ENGINE_DT_INT64 ? 8 : (dtype == ENGINE_DT_UINT8 ? 1 : 4);
}

__device__ __forceinline__ double load_double(const void* base, int dtype, long long i)
{
    switch (dtype) {
    case ENGINE_DT_FLOAT32: return (double)static_cast<const float*>(base)[i];
    case ENGINE_DT_INT32: return (double)static_cast<const int*>(base)[i];
    case ENGINE_DT_INT64: return (double)static_cast<const long long*>(base)[i];
    default: return (double)static_cast<const unsigned char*>(base)[i];
    }
}

// Truncation toward zero with saturation; NaN gives 0.
__device__ __forceinline__ long long saturate_to(double v, double lo, double hi)
{
    if (v != v) return 0;
    if (v <= lo) return (long long)lo;
    if (v >= hi) return (long long)hi;
    return (long long)v;
}

__device__ __forceinline__ void store_double(void* base, int dtype, long long i, double v)
{
    switch (dtype) {
    case ENGINE_DT_FLOAT32: static_cast<float*>(base)[i] = (float)v; break;
    case ENGINE_DT_INT32: static_cast<int*>(base)[i] = (int)saturate_to(v, -2147483648.0, 2147483647.0); break;
    case ENGINE_DT_INT64:
        // 2^63 is not representable as long long; values at or above it saturate to the maximum.
        if (v != v) static_cast<long long*>(base)[i] = 0;
        else if (v >= 9223372036854775807.0) static_cast<long long*>(base)[i] = 0x7fffffffffffffffLL;
        else if (v <= -9223372036854775808.0) static_cast<long long*>(base)[i] = (long long)0x8000000000000000ULL;
        else static_cast<long long*>(base)[i] = (long long)v;
        break;
    default:
        // The low 8 bits of the int32 conversion, as the CPU backend's (byte) cast and PyTorch's float-to-uint8 cast
        // give: -37.5 becomes 219, 300 becomes 44 (a direct float-to-unsigned conversion would differ by compiler).
        static_cast<unsigned char*>(base)[i] = (unsigned char)(unsigned int)(int)saturate_to(v, -2147483648.0, 2147483647.0);
        break;
    }
}

// Copies one element of `size` bytes (1, 4 or 8).
__device__ __forceinline__ void copy_element(void* dst, long long di, const void* src, long long si, int size)
{
    if (size == 4) static_cast<int*>(dst)[di] = static_cast<const int*>(src)[si];
    else if (size == 8) static_cast<long long*>(dst)[di] = static_cast<const long long*>(src)[si];
    else static_cast<unsigned char*>(dst)[di] = static_cast<const unsigned char*>(src)[si];
}

// Element offset of row-major position i of a tensor with `shape` and `strides` (rank ≤ ENGINE_MAX_DIMS);
// coords receives the coordinates when not null.
__device__ __forceinline__ long long strided_offset(long long i, int rank, const long long* shape, const long long* strides,
                                                    long long* coords = nullptr)
{
    long long offset = 0;
    for (int d = rank - 1; d >= 0; --d) {
        const long long size = shape[d];
        const long long q = size > 0 ? i / size : 0;
        const long long c = i - q * size;
        i = q;
        offset += c * strides[d];
        if (coords != nullptr) coords[d] = c;
    }
    return offset;
}
