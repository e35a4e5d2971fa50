// Bindings to the CUDA driver API (libcuda.so.1, cuda.h). Functions carry their C names; where cuda.h
// maps a name to a versioned symbol (#define cuMemAlloc cuMemAlloc_v2) the EntryPoint is that
// exported symbol. Types: CUdevice = int, CUdeviceptr = unsigned long long, CUcontext / CUstream /
// CUmodule / CUfunction = opaque pointers. Callers go through Check, so no raw status leaves here.
using System.Runtime.InteropServices;

namespace Engine.Cuda.Interop;

/// <summary>CUresult. Only the codes the engine reacts to are named; every other code is reported
/// through cuGetErrorName / cuGetErrorString.</summary>
internal enum CUresult
{
    CUDA_SUCCESS = 0,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_STUB_LIBRARY = 34,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_NOT_READY = 600,
}

/// <summary>CUmemPool_attribute values (cuda.h); the threshold and the counters are cuuint64_t.</summary>
internal enum CUmemPool_attribute
{
    CU_MEMPOOL_ATTR_RELEASE_THRESHOLD = 4,
    CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT = 5,
    CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH = 6,
    CU_MEMPOOL_ATTR_USED_MEM_CURRENT = 7,
    CU_MEMPOOL_ATTR_USED_MEM_HIGH = 8,
}

/// <summary>CUdevice_attribute values used by the engine (cuda.h).</summary>
internal enum CUdevice_attribute
{
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1,
    CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X = 5,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR = 39,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 115,
}

internal static unsafe partial class CudaDriver
{
    static CudaDriver() => CudaLibraries.EnsureResolver();

    /// <summary>Throws a <see cref="CudaException"/> naming <paramref name="call"/> unless the status is success.</summary>
    public static void Check(CUresult status, string call, string? context = null)
    {
        if (status == CUresult.CUDA_SUCCESS) return;
        throw new CudaException(call, status, ErrorName(status), ErrorDescription(status), context);
    }

    public static string ErrorName(CUresult status) =>
        cuGetErrorName(status, out var text) == CUresult.CUDA_SUCCESS && text != 0
            ? Marshal.PtrToStringUTF8(text) ?? $"CUresult {(int)status}"
            : $"CUresult {(int)status}";

    public static string ErrorDescription(CUresult status) =>
        cuGetErrorString(status, out var text) == CUresult.CUDA_SUCCESS && text != 0
            ? Marshal.PtrToStringUTF8(text) ?? "unrecognized error code"
            : "unrecognized error code";

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuInit(uint flags);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuDriverGetVersion(out int driverVersion);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuGetErrorName(CUresult error, out nint pStr);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuGetErrorString(CUresult error, out nint pStr);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuDeviceGetCount(out int count);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuDeviceGet(out int device, int ordinal);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuDeviceGetName(byte* name, int len, int dev);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuDeviceGetAttribute(out int pi, CUdevice_attribute attrib, int dev);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuDevicePrimaryCtxRetain(out nint pctx, int dev);

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuDevicePrimaryCtxRelease_v2")]
    public static partial CUresult cuDevicePrimaryCtxRelease(int dev);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuCtxSetCurrent(nint ctx);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuCtxSynchronize();

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuProfilerStart();

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuProfilerStop();

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemAlloc_v2")]
    public static partial CUresult cuMemAlloc(out ulong dptr, nuint bytesize);

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemFree_v2")]
    public static partial CUresult cuMemFree(ulong dptr);

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemcpyHtoD_v2")]
    public static partial CUresult cuMemcpyHtoD(ulong dstDevice, void* srcHost, nuint byteCount);

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemcpyDtoH_v2")]
    public static partial CUresult cuMemcpyDtoH(void* dstHost, ulong srcDevice, nuint byteCount);

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemsetD32_v2")]
    public static partial CUresult cuMemsetD32(ulong dstDevice, uint ui, nuint n);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuStreamCreate(out nint phStream, uint flags);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuStreamSynchronize(nint hStream);

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuStreamDestroy_v2")]
    public static partial CUresult cuStreamDestroy(nint hStream);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuModuleLoadData(out nint module, void* image);

    [LibraryImport(CudaLibraries.Driver, StringMarshalling = StringMarshalling.Utf8)]
    public static partial CUresult cuModuleGetFunction(out nint hfunc, nint hmod, string name);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuModuleUnload(nint hmod);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuLaunchKernel(nint f, uint gridDimX, uint gridDimY, uint gridDimZ,
                                                  uint blockDimX, uint blockDimY, uint blockDimZ,
                                                  uint sharedMemBytes, nint hStream, void** kernelParams, void** extra);

    // ---- stream-ordered memory (CUDA 11.2+), pinned host memory, asynchronous copies ----

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuDeviceGetDefaultMemPool(out nint pool, int dev);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuMemPoolSetAttribute(nint pool, CUmemPool_attribute attr, void* value);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuMemPoolGetAttribute(nint pool, CUmemPool_attribute attr, void* value);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuMemPoolTrimTo(nint pool, nuint minBytesToKeep);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuMemAllocFromPoolAsync(out ulong dptr, nuint bytesize, nint pool, nint hStream);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuMemFreeAsync(ulong dptr, nint hStream);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuMemHostAlloc(out void* pp, nuint bytesize, uint flags);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuMemFreeHost(void* p);

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemHostGetDevicePointer_v2")]
    public static partial CUresult cuMemHostGetDevicePointer(out ulong pdptr, void* p, uint flags);

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemcpyHtoDAsync_v2")]
    public static partial CUresult cuMemcpyHtoDAsync(ulong dstDevice, void* srcHost, nuint byteCount, nint hStream);

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemcpyDtoHAsync_v2")]
    public static partial CUresult cuMemcpyDtoHAsync(void* dstHost, ulong srcDevice, nuint byteCount, nint hStream);

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuMemcpyDtoDAsync_v2")]
    public static partial CUresult cuMemcpyDtoDAsync(ulong dstDevice, ulong srcDevice, nuint byteCount, nint hStream);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuMemsetD8Async(ulong dstDevice, byte uc, nuint n, nint hStream);

    // ---- events ----

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuEventCreate(out nint phEvent, uint flags);

    [LibraryImport(CudaLibraries.Driver, EntryPoint = "cuEventDestroy_v2")]
    public static partial CUresult cuEventDestroy(nint hEvent);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuEventRecord(nint hEvent, nint hStream);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuEventSynchronize(nint hEvent);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuEventQuery(nint hEvent);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuEventElapsedTime(out float pMilliseconds, nint hStart, nint hEnd);

    [LibraryImport(CudaLibraries.Driver)]
    public static partial CUresult cuStreamWaitEvent(nint hStream, nint hEvent, uint flags);
}
