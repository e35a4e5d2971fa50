// Compiles the .cu files of kernels/ with NVRTC to CUBIN for one real architecture (sm_XX) and keeps
// the results in the on-disk cache, so a kernel is compiled once per source, options, NVRTC version
// and architecture. No GPU and no CUDA toolkit are needed: only libnvrtc. Errors, and warnings unless
// the options allow them, become an NvrtcException that quotes NVRTC's log under the file name.
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Engine.Cuda.Interop;

namespace Engine.Cuda.Compilation;

/// <param name="UseFastMath">--use_fast_math (approximate exp/log/division); off so results track the references.</param>
/// <param name="LineInfo">-lineinfo, so profilers and compute-sanitizer map instructions to source lines.</param>
/// <param name="WarningsAsErrors">a compilation whose log holds a warning fails like one with an error.</param>
/// <param name="ExtraOptions">further NVRTC options, e.g. "-DBLOCK=256"; part of the cache key like the rest.</param>
public sealed record KernelCompileOptions(
    bool UseFastMath = false,
    bool LineInfo = true,
    bool WarningsAsErrors = true,
    IReadOnlyList<string>? ExtraOptions = null)
{
    public static KernelCompileOptions Default { get; } = new();
}

public sealed class CompiledKernel
{
    public required string SourcePath { get; init; }
    public required GpuArchitecture Architecture { get; init; }
    /// <summary>The CUBIN, an ELF image for cuModuleLoadData.</summary>
    public required byte[] Image { get; init; }
    /// <summary>NVRTC's log; empty for a clean compilation and for a cache hit.</summary>
    public required string Log { get; init; }
    public required IReadOnlyList<string> Options { get; init; }
    public required string CacheKey { get; init; }
    public required string CachePath { get; init; }
    public required KernelCacheOutcome CacheOutcome { get; init; }
    /// <summary>Time spent in nvrtcCompileProgram; zero on a cache hit.</summary>
    public required TimeSpan CompileTime { get; init; }
    public bool FromCache => CacheOutcome == KernelCacheOutcome.Hit;
}

/// <summary>The outcome of compiling one file in <see cref="KernelCompiler.CompileAll"/>.</summary>
public sealed record KernelDiagnostic(string FileName, GpuArchitecture Architecture, bool Succeeded, string Log, string? Error)
{
    public bool HasWarnings => KernelCompiler.LogHasWarnings(Log);
}

public sealed partial class KernelCompiler
{
    private readonly Lazy<string> _kernelsDirectory;
    private readonly KernelCache _cache;

    private static readonly Lazy<(int Major, int Minor)> Version = new(() =>
    {
        Nvrtc.Check(Nvrtc.nvrtcVersion(out var major, out var minor), nameof(Nvrtc.nvrtcVersion));
        return (major, minor);
    });

    private static readonly Lazy<IReadOnlyList<GpuArchitecture>> Supported = new(ReadSupportedArchitectures);

    /// <param name="kernelsDirectory">folder of the .cu files; null finds it (<see cref="FindKernelsDirectory"/>).</param>
    /// <param name="cacheDirectory">null uses $ENGINE_KERNEL_CACHE or ~/.cache/engine/kernels.</param>
    public KernelCompiler(string? kernelsDirectory = null, string? cacheDirectory = null)
    {
        _kernelsDirectory = new Lazy<string>(() => kernelsDirectory is null ? FindKernelsDirectory() : Path.GetFullPath(kernelsDirectory));
        _cache = new KernelCache(cacheDirectory ?? KernelCache.DefaultDirectory());
    }

    public string KernelsDirectory => _kernelsDirectory.Value;
    public string CacheDirectory => _cache.Directory;

    /// <summary>NVRTC's version as "major.minor" (e.g. "11.8").</summary>
    public static string NvrtcVersion => $"{Version.Value.Major}.{Version.Value.Minor}";

    /// <summary>The real architectures the loaded NVRTC can generate code for (nvrtcGetSupportedArchs).</summary>
    public static IReadOnlyList<GpuArchitecture> SupportedArchitectures => Supported.Value;

    /// <summary>ENGINE_KERNELS_DIR when set; else the first kernels/ folder holding .cu files found in the
    /// application folder or a folder above it (the build copies kernels/ next to the assemblies).</summary>
    public static string FindKernelsDirectory() =>
        FindKernelsDirectory(Environment.GetEnvironmentVariable("ENGINE_KERNELS_DIR"), AppContext.BaseDirectory);

    internal static string FindKernelsDirectory(string? configured, string start)
    {
        if (!string.IsNullOrEmpty(configured))
        {
            if (Directory.Exists(configured)) return Path.GetFullPath(configured);
            throw new DirectoryNotFoundException(
                $"KernelCompiler: ENGINE_KERNELS_DIR={configured} is not a folder. Point it at the project's kernels/ folder or unset it.");
        }
        var looked = new List<string>();
        for (var folder = new DirectoryInfo(start); folder is not null; folder = folder.Parent)
        {
            var candidate = Path.Combine(folder.FullName, "kernels");
            looked.Add(candidate);
            if (Directory.Exists(candidate) && Directory.EnumerateFiles(candidate, "*.cu").Any()) return candidate;
        }
        throw new DirectoryNotFoundException(
            $"KernelCompiler: found no kernels/ folder with .cu files (looked in {string.Join(", ", looked)}). " +
            "Build through Engine.Cuda, which copies kernels/ next to the assemblies, or set ENGINE_KERNELS_DIR=/path/to/kernels.");
    }

    /// <summary>The NVRTC options for an architecture, in the order they are passed (and hashed).</summary>
    public static IReadOnlyList<string> BuildOptions(GpuArchitecture architecture, KernelCompileOptions options)
    {
        var list = new List<string> { $"-arch={architecture.RealName}", "-std=c++17", "-default-device" };
        if (options.LineInfo) list.Add("-lineinfo");
        if (options.UseFastMath) list.Add("--use_fast_math");
        if (options.ExtraOptions is not null) list.AddRange(options.ExtraOptions);
        return list;
    }

    /// <summary>Compiles <paramref name="file"/> (a name inside <see cref="KernelsDirectory"/>, or a path) to
    /// CUBIN for <paramref name="architecture"/>, or reads it from the cache.</summary>
    public CompiledKernel Compile(string file, GpuArchitecture architecture, KernelCompileOptions? options = null)
    {
        options ??= KernelCompileOptions.Default;
        var source = KernelSource.Load(ResolvePath(file));
        RequireSupported(architecture, source.FileName);

        var optionList = BuildOptions(architecture, options);
        var key = KernelCache.Key(source, optionList, NvrtcVersion, architecture, options.WarningsAsErrors);
        var cachePath = _cache.PathFor(source, architecture, key);
        var outcome = _cache.TryRead(cachePath, out var cached);
        if (outcome == KernelCacheOutcome.Hit)
            return new CompiledKernel
            {
                SourcePath = source.Path, Architecture = architecture, Image = cached, Log = "", Options = optionList,
                CacheKey = key, CachePath = cachePath, CacheOutcome = outcome, CompileTime = TimeSpan.Zero,
            };

        var clock = Stopwatch.StartNew();
        var (image, log, _) = RunNvrtc(source, architecture, optionList);
        var elapsed = clock.Elapsed;
        if (options.WarningsAsErrors && LogHasWarnings(log))
            throw new NvrtcException(nameof(Nvrtc.nvrtcCompileProgram), "warning",
                $"NVRTC compiled {source.Path} for {architecture} with warnings, which count as errors " +
                $"(options: {string.Join(' ', optionList)}); fix them in the source:\n{log}", log, source.FileName);
        if (!ElfImage.HasElfMagic(image))
            throw new NvrtcException(nameof(Nvrtc.nvrtcGetCUBIN), "not ELF",
                $"NVRTC returned a {image.Length}-byte CUBIN for {source.Path} ({architecture}) that is not an ELF image; " +
                "the options must name a real architecture (-arch=sm_XX).", log, source.FileName);
        _cache.Write(cachePath, image);
        return new CompiledKernel
        {
            SourcePath = source.Path, Architecture = architecture, Image = image, Log = log, Options = optionList,
            CacheKey = key, CachePath = cachePath, CacheOutcome = outcome, CompileTime = elapsed,
        };
    }

    /// <summary>Compiles every .cu file of <see cref="KernelsDirectory"/> and reports each one's outcome
    /// instead of stopping at the first failure.</summary>
    public IReadOnlyList<KernelDiagnostic> CompileAll(GpuArchitecture architecture, KernelCompileOptions? options = null)
    {
        var results = new List<KernelDiagnostic>();
        foreach (var path in Directory.EnumerateFiles(KernelsDirectory, "*.cu").Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(path);
            try
            {
                var kernel = Compile(path, architecture, options);
                results.Add(new KernelDiagnostic(name, architecture, true, kernel.Log, null));
            }
            catch (NvrtcException e)
            {
                results.Add(new KernelDiagnostic(name, architecture, false, e.Log, e.Message));
            }
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                results.Add(new KernelDiagnostic(name, architecture, false, "", e.Message));
            }
        }
        return results;
    }

    /// <summary>PTX for the virtual architecture (-arch=compute_XX), uncached: for reading the generated code
    /// and for checking which kernels a file defines (".entry name") where no GPU can load a CUBIN.</summary>
    public string GeneratePtx(string file, GpuArchitecture architecture, KernelCompileOptions? options = null)
    {
        var source = KernelSource.Load(ResolvePath(file));
        RequireSupported(architecture, source.FileName);
        var optionList = BuildOptions(architecture, options ?? KernelCompileOptions.Default).ToList();
        optionList[0] = $"-arch={architecture.VirtualName}";
        return RunNvrtc(source, architecture, optionList, ptx: true).Ptx;
    }

    internal static bool LogHasWarnings(string log) => WarningPattern().IsMatch(log);

    private static void RequireSupported(GpuArchitecture architecture, string fileName)
    {
        if (SupportedArchitectures.Contains(architecture)) return;
        throw new NvrtcException(nameof(Nvrtc.nvrtcGetSupportedArchs), "unsupported architecture",
            $"NVRTC {NvrtcVersion} cannot compile {fileName} for {architecture}; it supports " +
            $"{string.Join(", ", SupportedArchitectures)}. Use a newer NVRTC (ENGINE_LIB_NVRTC=/path/libnvrtc.so.N) " +
            "or an architecture from that list.", fileName: fileName);
    }

    private string ResolvePath(string file) => Path.IsPathRooted(file) ? file : Path.Combine(KernelsDirectory, file);

    private static unsafe (byte[] Image, string Log, string Ptx) RunNvrtc(KernelSource source, GpuArchitecture architecture,
                                                                           IReadOnlyList<string> options, bool ptx = false)
    {
        var strings = new List<nint>();
        nint Utf8(string s)
        {
            var p = Marshal.StringToCoTaskMemUTF8(s);
            strings.Add(p);
            return p;
        }
        try
        {
            var text = Utf8(source.Text);
            var name = Utf8(source.FileName);
            var headers = source.Headers.Select(h => Utf8(h.Text)).ToArray();
            var includeNames = source.Headers.Select(h => Utf8(h.Name)).ToArray();
            var optionPointers = options.Select(Utf8).ToArray();

            nint program;
            fixed (nint* headerArray = headers)
            fixed (nint* includeArray = includeNames)
                Nvrtc.Check(Nvrtc.nvrtcCreateProgram(out program, (byte*)text, (byte*)name, headers.Length,
                                                     (byte**)headerArray, (byte**)includeArray),
                            nameof(Nvrtc.nvrtcCreateProgram), source.FileName);
            using var handle = new NvrtcProgramHandle(program);

            nvrtcResult status;
            fixed (nint* optionArray = optionPointers)
                status = Nvrtc.nvrtcCompileProgram(program, optionPointers.Length, (byte**)optionArray);
            var log = ReadLog(program, source.FileName);
            if (status != nvrtcResult.NVRTC_SUCCESS)
            {
                var statusName = Nvrtc.ErrorString(status);
                throw new NvrtcException(nameof(Nvrtc.nvrtcCompileProgram), statusName,
                    $"NVRTC could not compile {source.Path} for {architecture} ({statusName}; options: " +
                    $"{string.Join(' ', options)}):\n{log}", log, source.FileName);
            }

            if (ptx)
            {
                Nvrtc.Check(Nvrtc.nvrtcGetPTXSize(program, out var ptxSize), nameof(Nvrtc.nvrtcGetPTXSize), source.FileName);
                var ptxBytes = new byte[checked((int)ptxSize)];
                fixed (byte* p = ptxBytes)
                    Nvrtc.Check(Nvrtc.nvrtcGetPTX(program, p), nameof(Nvrtc.nvrtcGetPTX), source.FileName);
                return ([], log, Encoding.UTF8.GetString(ptxBytes).TrimEnd('\0'));
            }
            Nvrtc.Check(Nvrtc.nvrtcGetCUBINSize(program, out var size), nameof(Nvrtc.nvrtcGetCUBINSize), source.FileName);
            var image = new byte[checked((int)size)];
            fixed (byte* p = image)
                Nvrtc.Check(Nvrtc.nvrtcGetCUBIN(program, p), nameof(Nvrtc.nvrtcGetCUBIN), source.FileName);
            return (image, log, "");
        }
        finally
        {
            foreach (var p in strings) Marshal.FreeCoTaskMem(p);
        }
    }

    private static unsafe string ReadLog(nint program, string fileName)
    {
        Nvrtc.Check(Nvrtc.nvrtcGetProgramLogSize(program, out var size), nameof(Nvrtc.nvrtcGetProgramLogSize), fileName);
        if (size <= 1) return "";
        var bytes = new byte[checked((int)size)];
        fixed (byte* p = bytes)
            Nvrtc.Check(Nvrtc.nvrtcGetProgramLog(program, p), nameof(Nvrtc.nvrtcGetProgramLog), fileName);
        return Encoding.UTF8.GetString(bytes, 0, bytes.Length - 1).Trim();
    }

    private static unsafe IReadOnlyList<GpuArchitecture> ReadSupportedArchitectures()
    {
        Nvrtc.Check(Nvrtc.nvrtcGetNumSupportedArchs(out var count), nameof(Nvrtc.nvrtcGetNumSupportedArchs));
        var numbers = new int[count];
        fixed (int* p = numbers)
            Nvrtc.Check(Nvrtc.nvrtcGetSupportedArchs(p), nameof(Nvrtc.nvrtcGetSupportedArchs));
        return numbers.Select(n => new GpuArchitecture(n / 10, n % 10)).ToArray();
    }

    [GeneratedRegex(@"\bwarning\b", RegexOptions.IgnoreCase)]
    private static partial Regex WarningPattern();
}
