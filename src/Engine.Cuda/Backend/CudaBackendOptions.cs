// Settings of the CUDA backend, fixed when it is created.
namespace Engine.Cuda.Backend;

/// <param name="AllowTf32">let cuBLAS (CUBLAS_COMPUTE_32F_FAST_TF32) and cuDNN (default math) round float inputs
/// to TF32 on tensor cores; off by default so GPU results track the CPU and the references in float.</param>
/// <param name="PoolReleaseThreshold">bytes of freed device memory the allocator keeps cached across
/// synchronizations; the default keeps everything.</param>
/// <param name="CublasWorkspaceBytes">cuBLAS workspace per stream; 32 MiB is NVIDIA's recommendation for Hopper.</param>
/// <param name="KernelCacheDirectory">where compiled kernels are cached; null uses the compiler's default.</param>
/// <param name="ConvolutionApi">which cuDNN API runs the convolutions: the graph API (CudnnGraphConvolution) by default, faster
/// than the legacy API (CudnnConvolution) in R50-FPN training and inference on an H100.</param>
/// <param name="ConvolutionSearchLimit">with the graph API, how many execution plans of one convolution pass are
/// timed at most, in the heuristics' order (PyTorch's torch.backends.cudnn.benchmark_limit, also 10 by default).</param>
public sealed record CudaBackendOptions(
    bool AllowTf32 = false,
    ulong PoolReleaseThreshold = ulong.MaxValue,
    long CublasWorkspaceBytes = 32L << 20,
    string? KernelCacheDirectory = null,
    CudnnApi ConvolutionApi = CudnnApi.Graph,
    int ConvolutionSearchLimit = CudaBackendOptions.DefaultConvolutionSearchLimit)
{
    public const int DefaultConvolutionSearchLimit = 10;

    public static CudaBackendOptions Default { get; } = new();

    /// <summary>Throws ArgumentException naming the first setting out of its range; the backend checks its options
    /// before it touches the device.</summary>
    public void Validate()
    {
        if (CublasWorkspaceBytes < 0)
            throw new ArgumentException($"CudaBackendOptions.CublasWorkspaceBytes must be ≥ 0, got {CublasWorkspaceBytes}.");
        if (!Enum.IsDefined(ConvolutionApi))
            throw new ArgumentException($"CudaBackendOptions.ConvolutionApi {(int)ConvolutionApi} is not a cuDNN API; use Legacy or Graph.");
        if (ConvolutionSearchLimit < 1)
            throw new ArgumentException($"CudaBackendOptions.ConvolutionSearchLimit must be ≥ 1 (plans timed per pass), got {ConvolutionSearchLimit}.");
    }
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
