// Routes the [LibraryImport] names of this assembly ("cuda", "nvrtc", "cublas", "cublasLt", "cudnn") to
// the project's one library resolver (Engine.Native.LibraryResolver), so that libcuda.so.1, Debian's
// libnvrtc.so.11.2, the CUDA toolkit's libraries and the versioned names of pip wheels
// (nvidia/cu13/lib/libcublas.so.13, nvidia/cudnn/lib/libcudnn.so.9) are all found the same way.
// Libraries are loaded in dependency order, cublasLt → cublas → nvrtc → cudnn, each dependency from the
// folder of the library that needs it where it is there, so a process never mixes two CUDA releases.
// cuDNN 9's libcudnn.so.9 opens its sub-libraries (libcudnn_graph, libcudnn_ops, libcudnn_cnn, ...) by
// soname at run time; they are preloaded by full path from the same folder, which the dynamic loader
// then reuses, so no LD_LIBRARY_PATH is needed. A library that cannot be found becomes a
// DllNotFoundException that says which library, every place searched, and how to fix it.
using System.Reflection;
using System.Runtime.InteropServices;
using Engine.Native;

namespace Engine.Cuda.Interop;

internal static class CudaLibraries
{
    public const string Driver = "cuda";
    public const string Nvrtc = "nvrtc";
    public const string CublasLt = "cublasLt";
    public const string Cublas = "cublas";
    public const string Cudnn = "cudnn";

    /// <summary>The libraries the bindings use, in the order they must be loaded.</summary>
    public static IReadOnlyList<string> LoadOrder { get; } = [CublasLt, Cublas, Nvrtc, Cudnn];

    /// <summary>What each library needs loaded before it (cuDNN's engines call cuBLASLt and NVRTC).</summary>
    private static readonly Dictionary<string, string[]> DependsOn = new(StringComparer.Ordinal)
    {
        [Cublas] = [CublasLt],
        [Cudnn] = [CublasLt, Cublas, Nvrtc],
    };

    /// <summary>Libraries opened by soname at run time by the one named, preloaded from its folder when present
    /// there, in an order where each one's own dependencies come first.</summary>
    private static readonly Dictionary<string, string[]> Companions = new(StringComparer.Ordinal)
    {
        [Nvrtc] = ["nvrtc-builtins"],
        [Cudnn] =
        [
            "cudnn_graph", "cudnn_engines_runtime_compiled", "cudnn_engines_precompiled", "cudnn_heuristic",
            "cudnn_ops", "cudnn_cnn", "cudnn_adv",
        ],
    };

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

    /// <summary>The libraries loaded to bring in <paramref name="name"/>, in order, ending with it:
    /// LoadSequence("cudnn") is cublasLt, cublas, nvrtc, cudnn.</summary>
    public static IReadOnlyList<string> LoadSequence(string name)
    {
        var sequence = new List<string>();
        void Visit(string library)
        {
            if (sequence.Contains(library)) return;
            foreach (var dependency in DependsOn.GetValueOrDefault(library, [])) Visit(dependency);
            sequence.Add(library);
        }
        Visit(name);
        return sequence;
    }

    /// <summary>The soname-opened companions of <paramref name="name"/>, in preload order.</summary>
    public static IReadOnlyList<string> CompanionsOf(string name) => Companions.GetValueOrDefault(name, []);

    /// <summary>Loads a library and what it depends on without throwing; <paramref name="reason"/> explains a failure.</summary>
    public static bool TryLoad(string name, out string reason)
    {
        lock (Gate)
        {
            foreach (var library in LoadSequence(name))
                if (!TryLoadOne(library, Dependents(library), out reason)) return false;
        }
        reason = "";
        return true;
    }

    /// <summary>The libraries already loaded that depend on <paramref name="name"/>; their folders are searched
    /// first, so a dependency comes from the same release as what needs it.</summary>
    private static IEnumerable<string> Dependents(string name) =>
        DependsOn.Where(kv => kv.Value.Contains(name)).Select(kv => kv.Key);

    private static bool TryLoadOne(string name, IEnumerable<string> dependents, out string reason)
    {
        var preferred = new List<string>();
        // Where a dependent's folder is set by the environment, search it first (e.g. ENGINE_LIB_CUBLAS names
        // nvidia/cu13/lib/libcublas.so.13: cublasLt comes from that folder too).
        foreach (var dependent in dependents)
            if (Environment.GetEnvironmentVariable($"ENGINE_LIB_{LibraryResolver.EnvName(dependent)}") is { Length: > 0 } path
                && Path.GetDirectoryName(path) is { Length: > 0 } folder)
                preferred.Add(folder);
        foreach (var dependency in DependsOn.GetValueOrDefault(name, []))
            if (LibraryResolver.LoadedPath(dependency) is { } loaded && Path.GetDirectoryName(loaded) is { Length: > 0 } folder)
                preferred.Add(folder);
        if (!LibraryResolver.TryLoad(name, out _, out var searched, preferred))
        {
            reason = MissingMessage(name, searched);
            return false;
        }
        if (LibraryResolver.LoadedPath(name) is { } found && Path.GetDirectoryName(found) is { Length: > 0 } home)
            foreach (var companion in CompanionsOf(name))
                foreach (var file in LibraryResolver.Candidates(home, companion))
                    if (NativeLibrary.TryLoad(file, out _)) break;
        reason = "";
        return true;
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != Driver && !LoadOrder.Contains(name)) return IntPtr.Zero;
        if (!TryLoad(name, out var reason)) throw new DllNotFoundException(reason);
        LibraryResolver.TryLoad(name, out var handle, out _);
        return handle;
    }

    /// <summary>The message for a library that was not found: which file, every place searched, and the fix.</summary>
    public static string MissingMessage(string name, IReadOnlyList<string> searched)
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
                "scripts/setup.sh installs libnvrtc11.2; or the CUDA toolkit; or `pip install nvidia-cuda-nvrtc`), " +
                "or set ENGINE_LIB_NVRTC=/full/path/libnvrtc.so.N or ENGINE_LIBRARY_PATH=/its/folder.",
            Cublas or CublasLt =>
                $"The cuBLAS library lib{name}.so was not found (searched: {where}). cuBLAS and cuBLASLt come together " +
                "with the CUDA toolkit or the pip wheel `nvidia-cublas` (site-packages/nvidia/cu13/lib or nvidia/cublas/lib); " +
                $"set ENGINE_LIB_{LibraryResolver.EnvName(name)}=/full/path/lib{name}.so.N or ENGINE_LIBRARY_PATH=/its/folder.",
            Cudnn =>
                $"The cuDNN library libcudnn.so was not found (searched: {where}). Install cuDNN 9 (the pip wheel " +
                "`nvidia-cudnn-cu13` puts it in site-packages/nvidia/cudnn/lib, or the NVIDIA package libcudnn9), " +
                "or set ENGINE_LIB_CUDNN=/full/path/libcudnn.so.9 or ENGINE_LIBRARY_PATH=/its/folder.",
            _ => $"Native library lib{name}.so was not found (searched: {where}).",
        };
    }
}
