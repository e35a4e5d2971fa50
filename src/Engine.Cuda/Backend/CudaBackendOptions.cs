// Settings of the CUDA backend, fixed when it is created.
namespace Engine.Cuda.Backend;

/// <param name="AllowTf32">let cuBLAS (CUBLAS_COMPUTE_32F_FAST_TF32) and cuDNN (default math) round float inputs
/// to TF32 on tensor cores; off by default so GPU results track the CPU and the references in float.</param>
/// <param name="PoolReleaseThreshold">bytes of freed device memory the allocator keeps cached across
/// synchronizations; the default keeps everything.</param>
/// <param name="CublasWorkspaceBytes">cuBLAS workspace per stream; 32 MiB is NVIDIA's recommendation for Hopper.</param>
/// <param name="KernelCacheDirectory">where compiled kernels are cached; null uses the compiler's default.</param>
/// <param name="ConvolutionApi">which cuDNN API runs the convolutions (CudnnConvolution or CudnnGraphConvolution).</param>
public sealed record CudaBackendOptions(
    bool AllowTf32 = false,
    ulong PoolReleaseThreshold = ulong.MaxValue,
    long CublasWorkspaceBytes = 32L << 20,
    string? KernelCacheDirectory = null,
    CudnnApi ConvolutionApi = CudnnApi.Legacy)
{
    public static CudaBackendOptions Default { get; } = new();
}

/// <summary>Legacy: cudnnFind* over the legacy algorithms. Graph: the graph API's engine configurations, timed on first
/// use of each shape (CudnnGraphConvolution).</summary>
public enum CudnnApi
{
    Legacy,
    Graph,
}

public static class CudnnApis
{
    /// <summary>"legacy" or "graph" (any case).</summary>
    public static CudnnApi Parse(string text) => text.ToLowerInvariant() switch
    {
        "legacy" => CudnnApi.Legacy,
        "graph" => CudnnApi.Graph,
        _ => throw new FormatException($"unknown cuDNN API '{text}'; use legacy or graph."),
    };
}
