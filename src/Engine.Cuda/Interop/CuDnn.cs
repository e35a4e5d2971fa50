// Bindings to cuDNN 9 (libcudnn.so.9, cudnn_ops.h / cudnn_cnn.h / cudnn_graph.h): handle and stream, and the
// legacy convolution API: 4-D tensor, filter and convolution descriptors, algorithm search, workspace sizes,
// forward, backward-data, backward-filter and backward-bias, and cudnnAddTensor for the bias (the graph API is
// in CuDnn.Graph.cs). Functions carry their C names. Handles and descriptors are opaque pointers owned by the
// callers (CudnnConvolution keeps them in disposable holders). Statuses become a CudnnException through Check,
// with cuDNN's own string (cudnnGetErrorString) and its detailed last-error message (cudnnGetLastErrorString).
using System.Runtime.InteropServices;
using System.Text;

namespace Engine.Cuda.Interop;

/// <summary>cudnnStatus_t in cuDNN 9's numbering (categories of 1000); only the codes the engine names.</summary>
internal enum cudnnStatus_t
{
    CUDNN_STATUS_SUCCESS = 0,
    CUDNN_STATUS_NOT_INITIALIZED = 1001,
    CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH = 1002,
    CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED = 1008,
    CUDNN_STATUS_BAD_PARAM = 2000,
    CUDNN_STATUS_NOT_SUPPORTED = 3000,
    CUDNN_STATUS_INTERNAL_ERROR = 4000,
    CUDNN_STATUS_EXECUTION_FAILED = 5000,
}

internal enum cudnnDataType_t
{
    CUDNN_DATA_FLOAT = 0,
}

internal enum cudnnTensorFormat_t
{
    CUDNN_TENSOR_NCHW = 0,
}

/// <summary>CROSS_CORRELATION is the convolution of deep learning (no kernel flip), as in the CPU backend.</summary>
internal enum cudnnConvolutionMode_t
{
    CUDNN_CONVOLUTION = 0,
    CUDNN_CROSS_CORRELATION = 1,
}

/// <summary>cudnnMathType_t: FMA keeps float convolutions off tensor cores (IEEE float), DEFAULT lets cuDNN use
/// TF32 tensor cores on Ampere and later.</summary>
internal enum cudnnMathType_t
{
    CUDNN_DEFAULT_MATH = 0,
    CUDNN_TENSOR_OP_MATH = 1,
    CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2,
    CUDNN_FMA_MATH = 3,
}

/// <summary>cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionBwdDataAlgoPerf_t and cudnnConvolutionBwdFilterAlgoPerf_t
/// share this layout (48 bytes: algo 0, status 4, time 8, memory 16, determinism 24, mathType 28, reserved 32).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct cudnnConvolutionAlgoPerf_t
{
    public int algo;
    public cudnnStatus_t status;
    public float time;
    public nuint memory;
    public int determinism;
    public cudnnMathType_t mathType;
    public int reserved0, reserved1, reserved2;
}

internal static unsafe partial class CuDnn
{
    static CuDnn() => CudaLibraries.EnsureResolver();

    public static void Check(cudnnStatus_t status, string call, string? context = null)
    {
        if (status == cudnnStatus_t.CUDNN_STATUS_SUCCESS) return;
        var (name, detail) = Describe(status);
        throw new CudnnException(call, (int)status, name, detail, context);
    }

    /// <summary>cuDNN's error string and last-error message where cuDNN is loaded; else the header name.</summary>
    public static (string Name, string Detail) Describe(cudnnStatus_t status)
    {
        var fallback = Enum.IsDefined(status) ? status.ToString() : $"cudnnStatus_t {(int)status}";
        if (!CudaLibraries.TryLoad(CudaLibraries.Cudnn, out _))
            return (fallback, "no description (cuDNN is not loaded)");
        var name = Marshal.PtrToStringUTF8(cudnnGetErrorString(status));
        var detail = "";
        try
        {
            const int capacity = 1024;
            var buffer = stackalloc byte[capacity];
            buffer[0] = 0;
            cudnnGetLastErrorString(buffer, capacity);
            var span = new ReadOnlySpan<byte>(buffer, capacity);
            var end = span.IndexOf((byte)0);
            detail = Encoding.UTF8.GetString(end < 0 ? span : span[..end]).Trim();
        }
        catch (EntryPointNotFoundException)
        {
            // cuDNN 8 has no last-error string; the status name alone is all there is.
        }
        return (string.IsNullOrEmpty(name) ? fallback : name, detail);
    }

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial nuint cudnnGetVersion();

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial nint cudnnGetErrorString(cudnnStatus_t status);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial void cudnnGetLastErrorString(byte* message, nuint maxSize);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnCreate(out nint handle);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnDestroy(nint handle);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnSetStream(nint handle, nint streamId);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnCreateTensorDescriptor(out nint tensorDesc);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnSetTensor4dDescriptor(nint tensorDesc, cudnnTensorFormat_t format, cudnnDataType_t dataType,
                                                                   int n, int c, int h, int w);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnDestroyTensorDescriptor(nint tensorDesc);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnCreateFilterDescriptor(out nint filterDesc);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnSetFilter4dDescriptor(nint filterDesc, cudnnDataType_t dataType, cudnnTensorFormat_t format,
                                                                   int k, int c, int h, int w);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnDestroyFilterDescriptor(nint filterDesc);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnCreateConvolutionDescriptor(out nint convDesc);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnSetConvolution2dDescriptor(nint convDesc, int padH, int padW, int u, int v,
                                                                        int dilationH, int dilationW, cudnnConvolutionMode_t mode,
                                                                        cudnnDataType_t computeType);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnSetConvolutionGroupCount(nint convDesc, int groupCount);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnSetConvolutionMathType(nint convDesc, cudnnMathType_t mathType);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnDestroyConvolutionDescriptor(nint convDesc);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(nint handle, nint xDesc, nint wDesc, nint convDesc, nint yDesc,
                                                                             int requestedAlgoCount, out int returnedAlgoCount,
                                                                             cudnnConvolutionAlgoPerf_t* perfResults);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(nint handle, nint wDesc, nint dyDesc, nint convDesc, nint dxDesc,
                                                                                  int requestedAlgoCount, out int returnedAlgoCount,
                                                                                  cudnnConvolutionAlgoPerf_t* perfResults);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(nint handle, nint xDesc, nint dyDesc, nint convDesc, nint dwDesc,
                                                                                    int requestedAlgoCount, out int returnedAlgoCount,
                                                                                    cudnnConvolutionAlgoPerf_t* perfResults);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(nint handle, nint xDesc, nint wDesc, nint convDesc, nint yDesc,
                                                                                int algo, out nuint sizeInBytes);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(nint handle, nint wDesc, nint dyDesc, nint convDesc,
                                                                                     nint dxDesc, int algo, out nuint sizeInBytes);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(nint handle, nint xDesc, nint dyDesc, nint convDesc,
                                                                                       nint gradDesc, int algo, out nuint sizeInBytes);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnConvolutionForward(nint handle, float* alpha, nint xDesc, ulong x, nint wDesc, ulong w,
                                                                nint convDesc, int algo, ulong workSpace, nuint workSpaceSizeInBytes,
                                                                float* beta, nint yDesc, ulong y);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnConvolutionBackwardData(nint handle, float* alpha, nint wDesc, ulong w, nint dyDesc, ulong dy,
                                                                     nint convDesc, int algo, ulong workSpace, nuint workSpaceSizeInBytes,
                                                                     float* beta, nint dxDesc, ulong dx);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnConvolutionBackwardFilter(nint handle, float* alpha, nint xDesc, ulong x, nint dyDesc, ulong dy,
                                                                       nint convDesc, int algo, ulong workSpace, nuint workSpaceSizeInBytes,
                                                                       float* beta, nint dwDesc, ulong dw);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnConvolutionBackwardBias(nint handle, float* alpha, nint dyDesc, ulong dy,
                                                                     float* beta, nint dbDesc, ulong db);

    [LibraryImport(CudaLibraries.Cudnn)]
    public static partial cudnnStatus_t cudnnAddTensor(nint handle, float* alpha, nint aDesc, ulong a, float* beta, nint cDesc, ulong c);
}
