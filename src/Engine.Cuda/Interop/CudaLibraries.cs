// Routes the [LibraryImport] names of this assembly ("cuda", "nvrtc") to the project's one library
// resolver, so that libcuda.so.1 and the versioned libnvrtc.so.N of Debian packages, the CUDA
// toolkit and pip wheels are all found the same way. A library that cannot be found becomes a
// DllNotFoundException that says which library, every place searched, and how to fix it.
using System.Reflection;
using System.Runtime.InteropServices;
using Engine.Native;

namespace Engine.Cuda.Interop;

internal static class CudaLibraries
{
    public const string Driver = "cuda";
    public const string Nvrtc = "nvrtc";

    private static readonly Lock Gate = new();
    private static bool _registered;

    /// <summary>Installs the resolver for this assembly once; the binding classes call it from their
    /// static constructors, so it is in place before their first native call.</summary>
    public static void EnsureResolver()
    {
        lock (Gate)
        {
            if (_registered) return;
            NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);
            _registered = true;
        }
    }

    /// <summary>Loads a library without throwing; <paramref name="reason"/> explains a failure.</summary>
    public static bool TryLoad(string name, out string reason)
    {
        if (LibraryResolver.TryLoad(name, out _, out var searched))
        {
            reason = "";
            return true;
        }
        reason = MissingMessage(name, searched);
        return false;
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != Driver && name != Nvrtc) return IntPtr.Zero;
        if (LibraryResolver.TryLoad(name, out var handle, out var searched)) return handle;
        throw new DllNotFoundException(MissingMessage(name, searched));
    }

    private static string MissingMessage(string name, IReadOnlyList<string> searched)
    {
        var where = string.Join(", ", searched);
        return name switch
        {
            Driver =>
                $"The CUDA driver library libcuda.so.1 was not found (searched: {where}). It is installed with the " +
                "NVIDIA GPU driver, not with the CUDA toolkit: run on a machine with an NVIDIA GPU and its driver, " +
                "or set ENGINE_LIB_CUDA=/full/path/libcuda.so.1.",
            Nvrtc =>
                $"The NVRTC library libnvrtc.so was not found (searched: {where}). Install it (Debian: " +
                "scripts/setup.sh installs libnvrtc11.2; or the CUDA toolkit; or `pip install nvidia-cuda-nvrtc-cu12`), " +
                "or set ENGINE_LIB_NVRTC=/full/path/libnvrtc.so.N or ENGINE_LIBRARY_PATH=/its/folder.",
            _ => $"Native library lib{name}.so was not found (searched: {where}).",
        };
    }
}
