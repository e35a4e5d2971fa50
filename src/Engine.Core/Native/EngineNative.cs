// P/Invoke declarations of the engine's native CPU library (native/engine_native.h), names spelled
// as in C, and the one DllImportResolver of the Engine.Core assembly: every library any binding of
// this assembly imports is found through LibraryResolver, and libengine_native additionally in the
// repository's build/native/ folder. Nothing outside this file sees a raw engine_status.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engine.Native;

/// <summary>A native call failed; the message names the call, the native error and the shapes involved.</summary>
public sealed class EngineNativeException(string call, string nativeMessage)
    : Exception(nativeMessage.StartsWith(call, StringComparison.Ordinal) ? nativeMessage : $"{call}: {nativeMessage}")
{
    public string Call { get; } = call;
    public string NativeMessage { get; } = nativeMessage;
}

/// <summary>engine_conv2d_desc: one 2-D convolution, element counts, dilation 1 = none.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct EngineConv2dDesc
{
    public long N, CIn, H, W;
    public long COut, KernelH, KernelW;
    public long StrideH, StrideW;
    public long PadH, PadW;
    public long DilationH, DilationW;
    public long Groups;
    public long OutH, OutW;
}

/// <summary>engine_matmul_desc: C[b] = op(A[b]) @ op(B[b]), row-major, batch stride 0 = broadcast.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct EngineMatmulDesc
{
    public long Batch, M, N, K;
    public int TransA, TransB;
    public long Lda, Ldb, Ldc;
    public long BatchStrideA, BatchStrideB, BatchStrideC;
}

/// <summary>engine_onednn_stats.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct EngineOneDnnStats
{
    public ulong PrimitivesCreated;
    public ulong WeightReorders;
    public ulong CachedPlans;
    public ulong CachedWeights;
}

public static unsafe partial class EngineNative
{
    public const string LibraryName = "engine_native";

    /// <summary>The ABI this binding was written against (engine_native_abi_version).</summary>
    public const int ExpectedAbiVersion = 3;

#pragma warning disable CA2255 // The resolver must be in place before any binding of this assembly is first called.
    [ModuleInitializer]
    internal static void RegisterResolver() =>
        NativeLibrary.SetDllImportResolver(typeof(EngineNative).Assembly, Resolve);
#pragma warning restore CA2255

    private static IntPtr Resolve(string libraryName, System.Reflection.Assembly assembly, DllImportSearchPath? searchPath) =>
        // A file name ("libfoo.so.1") is left to the runtime's own probing.
        libraryName.Contains('/') || libraryName.Contains(".so", StringComparison.Ordinal) ? IntPtr.Zero : Load(libraryName);

    /// <summary>What the resolver does for a short library name ("turbojpeg" for libturbojpeg.so*): finds it
    /// through <see cref="LibraryResolver"/>, and libengine_native also in the checkout's build folders;
    /// throws <see cref="DllNotFoundException"/> naming the library, the places searched and the fix.</summary>
    public static IntPtr Load(string libraryName)
    {
        if (libraryName != LibraryName) return LibraryResolver.Load(libraryName);
        try
        {
            return LibraryResolver.Load(libraryName, BuildFolders());
        }
        catch (DllNotFoundException e)
        {
            throw new DllNotFoundException(
                $"The engine's native library libengine_native.so could not be loaded. {e.Message} " +
                "It is built by `dotnet build` (CMake, from native/) and needs oneDNN (libdnnl.so.2); " +
                "run scripts/setup.sh to install oneDNN, then dotnet build.", e);
        }
    }

    /// <summary>build/native/ (and build/slots/$ENGINE_BUILD_SLOT/native/) of the checkout the assembly was built in,
    /// found by walking up from the assembly's folder.</summary>
    private static IEnumerable<string> BuildFolders()
    {
        var folders = new List<string> { AppContext.BaseDirectory };
        var slot = Environment.GetEnvironmentVariable("ENGINE_BUILD_SLOT");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!string.IsNullOrEmpty(slot)) folders.Add(Path.Combine(dir.FullName, "build", "slots", slot, "native"));
            folders.Add(Path.Combine(dir.FullName, "build", "native"));
        }
        return folders.Where(Directory.Exists);
    }

    /// <summary>Throws <see cref="EngineNativeException"/> naming <paramref name="call"/> unless status is ENGINE_OK.</summary>
    public static void Check(int status, string call)
    {
        if (status == 0) return;
        var message = Marshal.PtrToStringUTF8(engine_last_error()) ?? "(no message)";
        throw new EngineNativeException(call, message);
    }

    [LibraryImport(LibraryName)]
    public static partial IntPtr engine_last_error();

    [LibraryImport(LibraryName)]
    public static partial int engine_native_abi_version();

    [LibraryImport(LibraryName)]
    public static partial int engine_native_max_threads();

    [LibraryImport(LibraryName)]
    public static partial int engine_conv2d_forward(EngineConv2dDesc* desc, float* src, float* weights, float* bias,
                                                    float* dst, ulong weightKey, ulong weightVersion);

    [LibraryImport(LibraryName)]
    public static partial int engine_conv2d_backward_data(EngineConv2dDesc* desc, float* diffDst, float* weights,
                                                          float* diffSrc, ulong weightKey, ulong weightVersion);

    [LibraryImport(LibraryName)]
    public static partial int engine_conv2d_backward_weights(EngineConv2dDesc* desc, float* src, float* diffDst,
                                                             float* diffWeights, float* diffBias);

    [LibraryImport(LibraryName)]
    public static partial int engine_matmul(EngineMatmulDesc* desc, float* a, float* b, float* c);

    [LibraryImport(LibraryName)]
    public static partial int engine_onednn_set_layout_policy(int policy);

    [LibraryImport(LibraryName)]
    public static partial int engine_onednn_get_layout_policy();

    [LibraryImport(LibraryName)]
    public static partial int engine_onednn_get_stats(EngineOneDnnStats* stats);

    [LibraryImport(LibraryName)]
    public static partial ulong engine_onednn_weight_reorders_for_key(ulong weightKey);

    [LibraryImport(LibraryName)]
    public static partial int engine_onednn_clear_caches();

    [LibraryImport(LibraryName)]
    public static partial int engine_onednn_forget_weights(ulong weightKey);
}
