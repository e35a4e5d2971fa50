// Row-major batched GEMM through cuBLAS, which is column-major. A row-major (R, C) matrix with pitch ld is
// the column-major (C, R) matrix with the same ld, i.e. its transpose; so C = op(A)·op(B) (row-major, M×N)
// is computed as the column-major product Cᵀ = op(B)ᵀ·op(A)ᵀ (N×M): cuBLAS gets B first with the
// transpose flag of B, then A with the flag of A, m = N, n = M, k = K and the same leading dimensions.
// One handle per backend stream, with a workspace from the backend's pool (cublasSetWorkspace, 32 MiB by
// default, NVIDIA's recommendation for Hopper) and FP32 compute unless TF32 is allowed.
using Engine.Cuda.Interop;
using Engine.Cuda.Memory;
using Engine.Native;

namespace Engine.Cuda.Backend;

internal sealed unsafe class CublasGemm : IDisposable
{
    /// <summary>Largest batch count per cuBLAS call: older releases launch the batch as a grid dimension of at most 65535.</summary>
    private const int MaxBatchPerCall = 65535;

    private readonly nint _handle;
    private readonly CudaMemoryPool _memory;
    private readonly ulong _workspace;
    private readonly long _workspaceBytes;
    private readonly cublasComputeType_t _compute;

    public CublasGemm(CudaDevice device, CudaStream stream, CudaMemoryPool memory, long workspaceBytes, bool allowTf32)
    {
        Device = device;
        _memory = memory;
        device.MakeCurrent();
        CuBlas.Check(CuBlas.cublasCreate(out _handle), nameof(CuBlas.cublasCreate), device.Name);
        try
        {
            CuBlas.Check(CuBlas.cublasSetStream(_handle, stream.Handle), nameof(CuBlas.cublasSetStream));
            _workspaceBytes = workspaceBytes;
            _workspace = memory.Allocate(workspaceBytes);
            CuBlas.Check(CuBlas.cublasSetWorkspace(_handle, _workspace, (nuint)workspaceBytes), nameof(CuBlas.cublasSetWorkspace),
                         MemoryStats.Format(workspaceBytes));
            CuBlas.Check(CuBlas.cublasSetMathMode(_handle, allowTf32 ? cublasMath_t.CUBLAS_TF32_TENSOR_OP_MATH : cublasMath_t.CUBLAS_DEFAULT_MATH),
                         nameof(CuBlas.cublasSetMathMode));
            _compute = allowTf32 ? cublasComputeType_t.CUBLAS_COMPUTE_32F_FAST_TF32 : cublasComputeType_t.CUBLAS_COMPUTE_32F;
        }
        catch
        {
            CuBlas.cublasDestroy(_handle);
            throw;
        }
    }

    public CudaDevice Device { get; }

    /// <summary>C[b] = op(A[b])·op(B[b]) for the row-major geometry g (see MatmulGeometry), overwriting C. K = 0 is the
    /// caller's (cuBLAS is not asked to write zeros).</summary>
    public void Run(MatmulGeometry g, ulong a, ulong b, ulong c)
    {
        if (g.Batch == 0 || g.M == 0 || g.N == 0 || g.K == 0) return;
        var (lda, ldb, ldc) = (Int("lda", g.Lda, g), Int("ldb", g.Ldb, g), Int("ldc", g.Ldc, g));
        var transB = g.TransB ? cublasOperation_t.CUBLAS_OP_T : cublasOperation_t.CUBLAS_OP_N;
        var transA = g.TransA ? cublasOperation_t.CUBLAS_OP_T : cublasOperation_t.CUBLAS_OP_N;
        float alpha = 1, beta = 0;
        Device.MakeCurrent();
        if (g.Batch == 1)
        {
            CuBlas.Check(CuBlas.cublasGemmEx(_handle, transB, transA, g.N, g.M, g.K, &alpha,
                                             b, cudaDataType_t.CUDA_R_32F, ldb, a, cudaDataType_t.CUDA_R_32F, lda, &beta,
                                             c, cudaDataType_t.CUDA_R_32F, ldc, _compute, cublasGemmAlgo_t.CUBLAS_GEMM_DEFAULT),
                         nameof(CuBlas.cublasGemmEx), g.ToString());
            return;
        }
        for (var first = 0; first < g.Batch; first += MaxBatchPerCall)
        {
            var count = Math.Min(MaxBatchPerCall, g.Batch - first);
            var offsetA = a + (ulong)(first * g.BatchStrideA * sizeof(float));
            var offsetB = b + (ulong)(first * g.BatchStrideB * sizeof(float));
            var offsetC = c + (ulong)(first * g.BatchStrideC * sizeof(float));
            CuBlas.Check(CuBlas.cublasGemmStridedBatchedEx(_handle, transB, transA, g.N, g.M, g.K, &alpha,
                                                           offsetB, cudaDataType_t.CUDA_R_32F, ldb, g.BatchStrideB,
                                                           offsetA, cudaDataType_t.CUDA_R_32F, lda, g.BatchStrideA, &beta,
                                                           offsetC, cudaDataType_t.CUDA_R_32F, ldc, g.BatchStrideC,
                                                           count, _compute, cublasGemmAlgo_t.CUBLAS_GEMM_DEFAULT),
                         nameof(CuBlas.cublasGemmStridedBatchedEx), $"batches {first}..{first + count - 1} of {g}");
        }
    }

    private static int Int(string name, long value, MatmulGeometry g) =>
        value <= int.MaxValue
            ? (int)value
            : throw new NotSupportedException($"CudaBackend.matmul: {name} = {value} exceeds the 32-bit leading dimensions of cublasGemmEx ({g}).");

    public void Dispose()
    {
        Device.MakeCurrent();
        CuBlas.cublasDestroy(_handle);
        _memory.Free(_workspace, _workspaceBytes);
    }
}
