// The one place that finds native libraries (the oneDNN shim, libturbojpeg, CUDA driver, NVRTC,
// cuBLAS, cuDNN, ...). Search order, first hit wins:
//   1. ENGINE_LIB_<NAME> (a full path to the file, NAME upper-cased, e.g. ENGINE_LIB_NVRTC),
//   2. every folder of ENGINE_LIBRARY_PATH (colon-separated), then the caller's extra folders,
//   3. the folder of the running assemblies (AppContext.BaseDirectory),
//   4. the loader path: every folder of LD_LIBRARY_PATH searched like the others (so versioned names
//      such as libcublas.so.13 are found too), then the ldconfig cache by file name: the sonames the library is
//      known to ship under (libcuda.so.1, libcudnn.so.9, libnvrtc.so.13, ...), then the bare name,
//   5. the CUDA install (CUDA_HOME or CUDA_PATH, /usr/local/cuda, /usr/local/cuda-*; lib64 and
//      targets/x86_64-linux/lib),
//   6. Python environments' site-packages/nvidia/*/lib (pip wheels ship versioned names only, e.g.
//      nvidia/cu13/lib/libnvrtc.so.13, nvidia/cudnn/lib/libcudnn.so.9), under VIRTUAL_ENV,
//      CONDA_PREFIX, ~/.local, /usr/local, /usr and /opt/conda,
//   7. /usr/lib/x86_64-linux-gnu (Debian's multiarch folder, e.g. libnvrtc.so.11.2).
// A folder named stubs (the CUDA toolkit's link-time stubs) is never searched, wherever it is named.
// Inside a folder the unversioned name wins, then the highest version. Libraries found in a folder are
// loaded by full path, so dependents (cuBLAS on cuBLASLt, cuDNN on its sub-libraries) resolve
// predictably. The plan is computed from a LibrarySearchEnvironment, so tests can run it on a fake tree.
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Engine.Native;

/// <summary>What one step of the search tries: a full path from an environment variable, every matching
/// file of a folder, or a bare file name handed to the system loader.</summary>
public enum LibraryProbeKind
{
    ExplicitPath,
    Folder,
    LoaderName,
}

/// <summary>One step of a library search; <see cref="Source"/> says where the step comes from.</summary>
public readonly record struct LibraryProbe(LibraryProbeKind Kind, string Value, string Source)
{
    public override string ToString() => Kind switch
    {
        LibraryProbeKind.ExplicitPath => $"{Source}={Value}",
        LibraryProbeKind.LoaderName => $"loader path ({Value})",
        _ => Value,
    };
}

/// <summary>The inputs of a search: environment variables, the application folder and the file-system root
/// under which the fixed folders (/usr/local/cuda, /usr/lib, ...) are looked up. <see cref="Current"/> is the
/// real process; tests pass a temporary folder as root and their own variables.</summary>
public sealed record LibrarySearchEnvironment(Func<string, string?> Variable, string BaseDirectory, string Root = "/")
{
    public static LibrarySearchEnvironment Current { get; } = new(Environment.GetEnvironmentVariable, AppContext.BaseDirectory);

    /// <summary>An absolute system path (e.g. "/usr/local/cuda") under <see cref="Root"/>.</summary>
    public string System(string absolute) => Root == "/" ? absolute : Path.Combine(Root, absolute.TrimStart('/'));
}

public static partial class LibraryResolver
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, (IntPtr Handle, string? Path)> Loaded = new(StringComparer.Ordinal);

    /// <summary>Major versions each library is known to ship under, newest first, tried by soname on the loader
    /// path (pip wheels and CUDA packages install no unversioned symlink).</summary>
    private static readonly Dictionary<string, string[]> KnownSonameVersions = new(StringComparer.Ordinal)
    {
        ["cuda"] = ["1"],
        ["nvrtc"] = ["13", "12", "11.2"],
        ["cublas"] = ["13", "12", "11"],
        ["cublasLt"] = ["13", "12", "11"],
        ["cudnn"] = ["9"],
        ["nccl"] = ["2"],
    };

    /// <summary>Loads the library <paramref name="name"/> (e.g. "nvrtc" for libnvrtc.so*) or throws a
    /// <see cref="DllNotFoundException"/> listing every place searched and how to point the engine at it.</summary>
    /// <param name="extraFolders">folders searched right after ENGINE_LIBRARY_PATH.</param>
    public static IntPtr Load(string name, IEnumerable<string>? extraFolders = null)
    {
        if (TryLoad(name, out var handle, out var searched, extraFolders)) return handle;
        throw new DllNotFoundException(
            $"Native library 'lib{name}.so' was not found. Searched: {string.Join(", ", searched)}. " +
            $"Install it, or set ENGINE_LIB_{EnvName(name)}=/full/path/lib{name}.so.N or ENGINE_LIBRARY_PATH=/its/folder.");
    }

    public static bool TryLoad(string name, out IntPtr handle, out IReadOnlyList<string> searched,
                               IEnumerable<string>? extraFolders = null)
    {
        var tried = new List<string>();
        searched = tried;
        lock (Gate)
        {
            if (Loaded.TryGetValue(name, out var known))
            {
                handle = known.Handle;
                return true;
            }
            foreach (var probe in Plan(name, LibrarySearchEnvironment.Current, extraFolders))
            {
                tried.Add(probe.ToString());
                foreach (var file in Files(probe, name))
                {
                    if (!NativeLibrary.TryLoad(file, out handle)) continue;
                    Loaded[name] = (handle, probe.Kind == LibraryProbeKind.LoaderName ? null : file);
                    return true;
                }
            }
            handle = IntPtr.Zero;
            return false;
        }
    }

    /// <summary>The full path a loaded library came from, or null when it is not loaded or the system loader
    /// found it by file name.</summary>
    public static string? LoadedPath(string name)
    {
        lock (Gate) return Loaded.TryGetValue(name, out var known) ? known.Path : null;
    }

    /// <summary>The search steps for <paramref name="name"/>, in order (see the file header).</summary>
    public static IReadOnlyList<LibraryProbe> Plan(string name, LibrarySearchEnvironment env, IEnumerable<string>? extraFolders = null)
    {
        var plan = new List<LibraryProbe>();
        var folders = new HashSet<string>(StringComparer.Ordinal);
        void Folder(string folder, string source)
        {
            if (!IsStubFolder(folder) && folders.Add(folder)) plan.Add(new LibraryProbe(LibraryProbeKind.Folder, folder, source));
        }

        var variable = $"ENGINE_LIB_{EnvName(name)}";
        if (env.Variable(variable) is { Length: > 0 } explicitPath)
            plan.Add(new LibraryProbe(LibraryProbeKind.ExplicitPath, explicitPath, variable));
        foreach (var f in SplitPath(env.Variable("ENGINE_LIBRARY_PATH"))) Folder(f, "ENGINE_LIBRARY_PATH");
        foreach (var f in extraFolders ?? []) Folder(f, "caller");
        Folder(env.BaseDirectory, "application folder");
        foreach (var f in SplitPath(env.Variable("LD_LIBRARY_PATH"))) Folder(f, "LD_LIBRARY_PATH");
        foreach (var file in LoaderNames(name))
            plan.Add(new LibraryProbe(LibraryProbeKind.LoaderName, file, "ldconfig cache"));
        foreach (var f in CudaFolders(env)) Folder(f, "CUDA install");
        foreach (var f in PythonNvidiaFolders(env)) Folder(f, "Python environment");
        Folder(env.System("/usr/lib/x86_64-linux-gnu"), "multiarch");
        return plan;
    }

    /// <summary>The files a step offers, best first (for a folder: <see cref="Candidates"/>).</summary>
    public static IEnumerable<string> Files(LibraryProbe probe, string name) => probe.Kind switch
    {
        LibraryProbeKind.Folder => Candidates(probe.Value, name),
        _ => [probe.Value],
    };

    /// <summary>The first file the search would try to load: what <see cref="TryLoad"/> picks when every file
    /// found loads. Null when no step finds a file (bare loader names are not looked up here).</summary>
    public static string? Locate(string name, LibrarySearchEnvironment env, IEnumerable<string>? extraFolders = null)
    {
        foreach (var probe in Plan(name, env, extraFolders))
        {
            if (probe.Kind == LibraryProbeKind.LoaderName) continue;
            if (probe.Kind == LibraryProbeKind.ExplicitPath)
            {
                if (File.Exists(probe.Value)) return probe.Value;
                continue;
            }
            foreach (var file in Candidates(probe.Value, name)) return file;
        }
        return null;
    }

    /// <summary>lib{name}.so.{major} for the versions the library is known to ship under, then lib{name}.so. The
    /// sonames come first: the bare name is a development symlink that the CUDA toolkit also ships as a link-time
    /// stub (lib/stubs/libcuda.so), which the loader finds first when that folder is on LD_LIBRARY_PATH.</summary>
    public static IReadOnlyList<string> LoaderNames(string name)
    {
        var names = new List<string>(KnownSonameVersions.TryGetValue(name, out var versions)
            ? versions.Select(v => $"lib{name}.so.{v}")
            : [$"lib{name}.so.1"]);
        names.Add($"lib{name}.so");
        return names;
    }

    /// <summary>True for the CUDA toolkit's lib/stubs folders: their libcuda.so, libnvrtc.so, libcublas.so ... only
    /// satisfy the linker and fail at run time (cuInit returns CUDA_ERROR_STUB_LIBRARY), so no search looks there.</summary>
    public static bool IsStubFolder(string folder) =>
        string.Equals(Path.GetFileName(Path.TrimEndingDirectorySeparator(folder)), "stubs", StringComparison.Ordinal);

    /// <summary>Files named lib{name}.so or lib{name}.so.X[.Y...] in a folder, best first: the unversioned
    /// name, then the highest version. Names that merely start alike (libcublasLt for cublas,
    /// libnvrtc-builtins for nvrtc) do not match.</summary>
    public static IEnumerable<string> Candidates(string folder, string name)
    {
        if (!Directory.Exists(folder)) return [];
        var plain = Path.Combine(folder, $"lib{name}.so");
        List<string> versioned;
        try
        {
            versioned = Directory.EnumerateFiles(folder, $"lib{name}.so.*")
                .Select(p => (path: p, version: ParseVersion(Path.GetFileName(p), name)))
                .Where(t => t.version is not null)
                .OrderByDescending(t => t.version!, VersionComparer.Instance)
                .Select(t => t.path)
                .ToList();
        }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
        return File.Exists(plain) ? versioned.Prepend(plain) : versioned;
    }

    private static IEnumerable<string> CudaFolders(LibrarySearchEnvironment env)
    {
        var roots = new List<string>();
        var cudaHome = env.Variable("CUDA_HOME") ?? env.Variable("CUDA_PATH");
        if (!string.IsNullOrEmpty(cudaHome)) roots.Add(cudaHome);
        roots.Add(env.System("/usr/local/cuda"));
        var local = env.System("/usr/local");
        if (Directory.Exists(local))
            roots.AddRange(Directory.EnumerateDirectories(local, "cuda-*").OrderDescending(StringComparer.Ordinal));
        foreach (var root in roots)
        {
            yield return Path.Combine(root, "lib64");
            yield return Path.Combine(root, "targets/x86_64-linux/lib");
        }
    }

    /// <summary>site-packages/nvidia/*/lib folders of the process's Python environments (nvidia/cu13/lib,
    /// nvidia/cudnn/lib, nvidia/nccl/lib, ...).</summary>
    public static IEnumerable<string> PythonNvidiaFolders() => PythonNvidiaFolders(LibrarySearchEnvironment.Current);

    /// <summary>site-packages/nvidia/*/lib folders under the prefixes of <paramref name="env"/>, package folders in
    /// ordinal order within one site-packages, environments in the order VIRTUAL_ENV, CONDA_PREFIX, ~/.local,
    /// /usr/local, /usr, /opt/conda.</summary>
    public static IEnumerable<string> PythonNvidiaFolders(LibrarySearchEnvironment env)
    {
        var prefixes = new List<string>();
        foreach (var variable in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
            if (env.Variable(variable) is { Length: > 0 } p) prefixes.Add(p);
        if (env.Variable("HOME") is { Length: > 0 } home) prefixes.Add(Path.Combine(home, ".local"));
        prefixes.AddRange(new[] { "/usr/local", "/usr", "/opt/conda" }.Select(env.System));
        foreach (var prefix in prefixes.Distinct(StringComparer.Ordinal))
        {
            var lib = Path.Combine(prefix, "lib");
            if (!Directory.Exists(lib)) continue;
            List<string> pythons;
            try { pythons = Directory.EnumerateDirectories(lib, "python3*").OrderDescending(StringComparer.Ordinal).ToList(); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            foreach (var py in pythons)
                foreach (var site in new[] { "site-packages", "dist-packages" })
                {
                    var nvidia = Path.Combine(py, site, "nvidia");
                    if (!Directory.Exists(nvidia)) continue;
                    foreach (var pkg in Directory.EnumerateDirectories(nvidia).Order(StringComparer.Ordinal))
                        if (Directory.Exists(Path.Combine(pkg, "lib"))) yield return Path.Combine(pkg, "lib");
                }
        }
    }

    public static string EnvName(string name) => NonAlnum().Replace(name, "_").ToUpperInvariant();

    private static int[]? ParseVersion(string file, string name)
    {
        // The pattern lib{name}.so.* also matches lib{name}.so itself (DOS-style wildcard matching), which has no version.
        var prefix = $"lib{name}.so.";
        if (file.Length <= prefix.Length || !file.StartsWith(prefix, StringComparison.Ordinal)) return null;
        var suffix = file[prefix.Length..];
        var parts = suffix.Split('.');
        var version = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out version[i])) return null;
        return version;
    }

    private static IEnumerable<string> SplitPath(string? value) =>
        string.IsNullOrEmpty(value) ? [] : value.Split(':', StringSplitOptions.RemoveEmptyEntries);

    [GeneratedRegex("[^A-Za-z0-9]")]
    private static partial Regex NonAlnum();

    private sealed class VersionComparer : IComparer<int[]>
    {
        public static readonly VersionComparer Instance = new();
        public int Compare(int[]? x, int[]? y)
        {
            for (var i = 0; i < Math.Min(x!.Length, y!.Length); i++)
                if (x[i] != y[i]) return x[i].CompareTo(y[i]);
            return x.Length.CompareTo(y.Length);
        }
    }
}
