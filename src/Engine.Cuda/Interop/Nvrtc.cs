// Bindings to NVRTC, the CUDA run-time compiler (libnvrtc.so.N, nvrtc.h). Functions carry their C
// names; every one exists unversioned in NVRTC 11.2 and later (nvrtcGetCUBIN since 11.1,
// nvrtcGetSupportedArchs since 11.2). nvrtcProgram is an opaque pointer owned by NvrtcProgramHandle.
using System.Runtime.InteropServices;

namespace Engine.Cuda.Interop;

/// <summary>nvrtcResult; names come from nvrtcGetErrorString.</summary>
internal enum nvrtcResult
{
    NVRTC_SUCCESS = 0,
    NVRTC_ERROR_COMPILATION = 6,
}

internal static unsafe partial class Nvrtc
{
    static Nvrtc() => CudaLibraries.EnsureResolver();

    /// <summary>Throws an <see cref="NvrtcException"/> naming <paramref name="call"/> unless the status is success.</summary>
    public static void Check(nvrtcResult status, string call, string? context = null)
    {
        if (status == nvrtcResult.NVRTC_SUCCESS) return;
        var name = ErrorString(status);
        throw new NvrtcException(call, name, $"{call} failed with {name} ({(int)status})" + (context is null ? "" : $" [{context}]"));
    }

    public static string ErrorString(nvrtcResult status) =>
        Marshal.PtrToStringUTF8(nvrtcGetErrorString(status)) ?? $"nvrtcResult {(int)status}";

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nint nvrtcGetErrorString(nvrtcResult result);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcVersion(out int major, out int minor);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcGetNumSupportedArchs(out int numArchs);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcGetSupportedArchs(int* supportedArchs);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcCreateProgram(out nint prog, byte* src, byte* name, int numHeaders,
                                                         byte** headers, byte** includeNames);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcDestroyProgram(ref nint prog);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcCompileProgram(nint prog, int numOptions, byte** options);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcGetProgramLogSize(nint prog, out nuint logSizeRet);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcGetProgramLog(nint prog, byte* log);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcGetCUBINSize(nint prog, out nuint cubinSizeRet);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcGetCUBIN(nint prog, byte* cubin);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcGetPTXSize(nint prog, out nuint ptxSizeRet);

    [LibraryImport(CudaLibraries.Nvrtc)]
    public static partial nvrtcResult nvrtcGetPTX(nint prog, byte* ptx);
}
