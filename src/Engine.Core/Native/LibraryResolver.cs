// The one place that finds native libraries (the oneDNN shim, libturbojpeg, CUDA driver, NVRTC,
// cuBLAS, cuDNN, ...). Search order, first hit wins:
//   1. ENGINE_LIB_<NAME> (a full path to the file, NAME upper-cased, e.g. ENGINE_LIB_NVRTC),
//   2. every folder of ENGINE_LIBRARY_PATH (colon-separated),
//   3. the folder of the running assemblies (AppContext.BaseDirectory),
//   4. the system loader path (LD_LIBRARY_PATH, ldconfig cache) by file name,
//   5. the CUDA install (/usr/local/cuda*/lib64, .../targets/x86_64-linux/lib),
//   6. Python environments' site-packages/nvidia/*/lib (pip wheels ship versioned names only,
//      e.g. libnvrtc.so.13), under VIRTUAL_ENV, CONDA_PREFIX, /usr/local/lib, /usr/lib, ~/.local.
// Libraries are loaded by full path where a folder is known, so dependents resolve predictably.
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Engine.Native;

public static partial class LibraryResolver
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, IntPtr> Loaded = new(StringComparer.Ordinal);

    /// <summary>Loads the library <paramref name="name"/> (e.g. "nvrtc" for libnvrtc.so*) or throws a
    /// <see cref="DllNotFoundException"/> listing every place searched and how to point the engine at it.</summary>
    /// <param name="extraFolders">folders searched right after the environment variables.</param>
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
            if (Loaded.TryGetValue(name, out handle)) return true;

            var explicitPath = Environment.GetEnvironmentVariable($"ENGINE_LIB_{EnvName(name)}");
            if (!string.IsNullOrEmpty(explicitPath))
            {
                tried.Add($"ENGINE_LIB_{EnvName(name)}={explicitPath}");
                if (NativeLibrary.TryLoad(explicitPath, out handle)) return Remember(name, handle);
            }

            var early = SplitPath(Environment.GetEnvironmentVariable("ENGINE_LIBRARY_PATH"))
                .Concat(extraFolders ?? [])
                .Append(AppContext.BaseDirectory);
            if (TryFolders(name, early, tried, out handle)) return Remember(name, handle);

            foreach (var file in new[] { $"lib{name}.so", $"lib{name}.so.1" })
            {
                tried.Add($"loader path ({file})");
                if (NativeLibrary.TryLoad(file, out handle)) return Remember(name, handle);
            }

            if (TryFolders(name, CudaFolders().Concat(PythonNvidiaFolders()).Append("/usr/lib/x86_64-linux-gnu"), tried, out handle))
                return Remember(name, handle);
            handle = IntPtr.Zero;
            return false;
        }
    }

    /// <summary>Files named lib{name}.so or lib{name}.so.X[.Y...] in a folder, best first: the unversioned
    /// name, then the highest version.</summary>
    public static IEnumerable<string> Candidates(string folder, string name)
    {
        if (!Directory.Exists(folder)) return [];
        var plain = Path.Combine(folder, $"lib{name}.so");
        var versioned = Directory.EnumerateFiles(folder, $"lib{name}.so.*")
            .Select(p => (path: p, version: ParseVersion(Path.GetFileName(p), name)))
            .Where(t => t.version is not null)
            .OrderByDescending(t => t.version!, VersionComparer.Instance)
            .Select(t => t.path);
        return File.Exists(plain) ? versioned.Prepend(plain) : versioned;
    }

    private static bool TryFolders(string name, IEnumerable<string> folders, List<string> tried, out IntPtr handle)
    {
        foreach (var folder in folders.Distinct())
        {
            tried.Add(folder);
            foreach (var path in Candidates(folder, name))
                if (NativeLibrary.TryLoad(path, out handle)) return true;
        }
        handle = IntPtr.Zero;
        return false;
    }

    private static bool Remember(string name, IntPtr handle)
    {
        Loaded[name] = handle;
        return true;
    }

    private static IEnumerable<string> CudaFolders()
    {
        var roots = new List<string>();
        var cudaHome = Environment.GetEnvironmentVariable("CUDA_HOME") ?? Environment.GetEnvironmentVariable("CUDA_PATH");
        if (!string.IsNullOrEmpty(cudaHome)) roots.Add(cudaHome);
        roots.Add("/usr/local/cuda");
        if (Directory.Exists("/usr/local"))
            roots.AddRange(Directory.EnumerateDirectories("/usr/local", "cuda-*").OrderDescending());
        foreach (var root in roots)
        {
            yield return Path.Combine(root, "lib64");
            yield return Path.Combine(root, "targets/x86_64-linux/lib");
        }
    }

    /// <summary>site-packages/nvidia/*/lib (and nvidia/cu13/lib style) folders of Python environments.</summary>
    public static IEnumerable<string> PythonNvidiaFolders()
    {
        var prefixes = new List<string>();
        foreach (var env in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
            if (Environment.GetEnvironmentVariable(env) is { Length: > 0 } p) prefixes.Add(p);
        var home = Environment.GetEnvironmentVariable("HOME");
        if (!string.IsNullOrEmpty(home)) prefixes.Add(Path.Combine(home, ".local"));
        prefixes.AddRange(["/usr/local", "/usr", "/opt/conda"]);
        foreach (var prefix in prefixes)
        {
            var lib = Path.Combine(prefix, "lib");
            if (!Directory.Exists(lib)) continue;
            IEnumerable<string> pythons;
            try { pythons = Directory.EnumerateDirectories(lib, "python3*").ToList(); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            foreach (var py in pythons)
                foreach (var site in new[] { "site-packages", "dist-packages" })
                {
                    var nvidia = Path.Combine(py, site, "nvidia");
                    if (!Directory.Exists(nvidia)) continue;
                    foreach (var pkg in Directory.EnumerateDirectories(nvidia))
                        if (Directory.Exists(Path.Combine(pkg, "lib"))) yield return Path.Combine(pkg, "lib");
                }
        }
    }

    private static string EnvName(string name) => NonAlnum().Replace(name, "_").ToUpperInvariant();

    private static int[]? ParseVersion(string file, string name)
    {
        var suffix = file[$"lib{name}.so.".Length..];
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
