// Bindings to cuBLAS (libcublas.so.N, cublas_api.h): handle, stream, workspace, math mode and the two GEMM
// entry points the backend uses (cublasGemmEx, cublasGemmStridedBatchedEx). Functions carry their C names;
// where cublas_api.h maps a name to a versioned symbol (#define cublasCreate cublasCreate_v2) the EntryPoint
// is that exported symbol. cuBLAS is column-major; the row-major mapping lives in the caller (CublasGemm).
// Statuses become a CublasException through Check, with the name and description from
// cublasGetStatusName / cublasGetStatusString (cuBLAS 11.4.2 and later), or from the table below when the
// library is absent or older.
using System.Runtime.InteropServices;

namespace Engine.Cuda.Interop;

/// <summary>cublasStatus_t (cublas_api.h).</summary>
internal enum cublasStatus_t
{
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16,
}

internal enum cublasOperation_t
{
    CUBLAS_OP_N = 0,
    CUBLAS_OP_T = 1,
}

/// <summary>cublasComputeType_t: how products are accumulated. 32F is IEEE float throughout; FAST_TF32 lets
/// tensor cores round the inputs to TF32 (10-bit mantissa) and accumulate in float.</summary>
internal enum cublasComputeType_t
{
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
}

/// <summary>cudaDataType_t (library_types.h); only float is used.</summary>
internal enum cudaDataType_t
{
    CUDA_R_32F = 0,
}

internal enum cublasGemmAlgo_t
{
    CUBLAS_GEMM_DEFAULT = -1,
}

/// <summary>cublasMath_t: DEFAULT keeps float GEMMs in float; TF32_TENSOR_OP allows TF32 for 32F compute.</summary>
internal enum cublasMath_t
{
    CUBLAS_DEFAULT_MATH = 0,
    CUBLAS_PEDANTIC_MATH = 2,
    CUBLAS_TF32_TENSOR_OP_MATH = 3,
}

internal static unsafe partial class CuBlas
{
    static CuBlas() => CudaLibraries.EnsureResolver();

    /// <summary>Throws a <see cref="CublasException"/> naming <paramref name="call"/> unless the status is success.</summary>
    public static void Check(cublasStatus_t status, string call, string? context = null)
    {
        if (status == cublasStatus_t.CUBLAS_STATUS_SUCCESS) return;
        var (name, description) = Describe(status);
        throw new CublasException(call, (int)status, name, description, context);
    }

    /// <summary>The status name and description: cuBLAS's own where it is loaded and has them, else the names of
    /// cublas_api.h and a note that cuBLAS did not describe the status.</summary>
    public static (string Name, string Description) Describe(cublasStatus_t status)
    {
        if (CudaLibraries.TryLoad(CudaLibraries.Cublas, out _))
        {
            try
            {
                var name = Marshal.PtrToStringUTF8(cublasGetStatusName(status));
                var text = Marshal.PtrToStringUTF8(cublasGetStatusString(status));
                if (!string.IsNullOrEmpty(name)) return (name, text ?? "");
            }
            catch (EntryPointNotFoundException)
            {
                // cuBLAS before 11.4.2 has no status strings: fall through to the header names.
            }
        }
        return (Enum.IsDefined(status) ? status.ToString() : $"cublasStatus_t {(int)status}",
                "no description (cuBLAS is not loaded or predates cublasGetStatusString)");
    }

    [LibraryImport(CudaLibraries.Cublas)]
    public static partial nint cublasGetStatusName(cublasStatus_t status);

    [LibraryImport(CudaLibraries.Cublas)]
    public static partial nint cublasGetStatusString(cublasStatus_t status);

    [LibraryImport(CudaLibraries.Cublas, EntryPoint = "cublasGetVersion_v2")]
    public static partial cublasStatus_t cublasGetVersion(nint handle, out int version);

    [LibraryImport(CudaLibraries.Cublas, EntryPoint = "cublasCreate_v2")]
    public static partial cublasStatus_t cublasCreate(out nint handle);

    [LibraryImport(CudaLibraries.Cublas, EntryPoint = "cublasDestroy_v2")]
    public static partial cublasStatus_t cublasDestroy(nint handle);

    [LibraryImport(CudaLibraries.Cublas, EntryPoint = "cublasSetStream_v2")]
    public static partial cublasStatus_t cublasSetStream(nint handle, nint streamId);

    [LibraryImport(CudaLibraries.Cublas, EntryPoint = "cublasSetWorkspace_v2")]
    public static partial cublasStatus_t cublasSetWorkspace(nint handle, ulong workspace, nuint workspaceSizeInBytes);

    [LibraryImport(CudaLibraries.Cublas)]
    public static partial cublasStatus_t cublasSetMathMode(nint handle, cublasMath_t mode);

    [LibraryImport(CudaLibraries.Cublas)]
    public static partial cublasStatus_t cublasGemmEx(nint handle, cublasOperation_t transa, cublasOperation_t transb,
                                                      int m, int n, int k, float* alpha,
                                                      ulong a, cudaDataType_t aType, int lda,
                                                      ulong b, cudaDataType_t bType, int ldb, float* beta,
                                                      ulong c, cudaDataType_t cType, int ldc,
                                                      cublasComputeType_t computeType, cublasGemmAlgo_t algo);

    [LibraryImport(CudaLibraries.Cublas)]
    public static partial cublasStatus_t cublasGemmStridedBatchedEx(nint handle, cublasOperation_t transa, cublasOperation_t transb,
                                                                    int m, int n, int k, float* alpha,
                                                                    ulong a, cudaDataType_t aType, int lda, long strideA,
                                                                    ulong b, cudaDataType_t bType, int ldb, long strideB, float* beta,
                                                                    ulong c, cudaDataType_t cType, int ldc, long strideC,
                                                                    int batchCount, cublasComputeType_t computeType, cublasGemmAlgo_t algo);
}
