// NVRTC compilation of the kernels without a GPU: every file of kernels/ for sm_80 and sm_90 with no
// error and no warning, the on-disk cache (hits, keys, damaged entries), and the diagnostics a broken
// kernel produces.
using System.Text.RegularExpressions;
using Engine.Cuda.Compilation;
using Engine.Cuda.Interop;
using Engine.Cuda.Kernels;

namespace Engine.Cuda.Tests.Compilation;

public sealed class KernelCompilerTests : IDisposable
{
    private readonly TempFolder _cache = new();

    public void Dispose() => _cache.Dispose();

    [Theory]
    [InlineData("compute_80")]
    [InlineData("compute_90")]
    public void EveryKernelCompilesToCubinWithoutWarnings(string architectureName)
    {
        var architecture = GpuArchitecture.Parse(architectureName);
        var compiler = new KernelCompiler(cacheDirectory: _cache.Path);
        var diagnostics = compiler.CompileAll(architecture);

        var files = Directory.GetFiles(compiler.KernelsDirectory, "*.cu").Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(files, diagnostics.Select(d => d.FileName));
        var failures = diagnostics.Where(d => !d.Succeeded || d.HasWarnings).ToList();
        Assert.True(failures.Count == 0,
            string.Join("\n\n", failures.Select(d => $"{d.FileName} ({d.Architecture}): {d.Error ?? d.Log}")));

        foreach (var file in files)
        {
            var kernel = compiler.Compile(file!, architecture);
            var image = kernel.Image;
            // ELF header (System V gABI): magic 7F 'E' 'L' 'F', class 2 = 64-bit, e_machine (bytes 18-19,
            // little-endian) 190 = EM_CUDA.
            Assert.Equal(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F' }, image[..4]);
            Assert.Equal(2, image[4]);
            Assert.Equal(190, BitConverter.ToUInt16(image, 18));
        }
    }

    [Fact]
    public void NvrtcSupportsSm80AndSm90()
    {
        Assert.Matches(@"^\d+\.\d+$", KernelCompiler.NvrtcVersion);
        Assert.Contains(GpuArchitecture.Sm80, KernelCompiler.SupportedArchitectures);
        Assert.Contains(GpuArchitecture.Sm90, KernelCompiler.SupportedArchitectures);
    }

    [Fact]
    public void UnsupportedArchitectureListsTheSupportedOnes()
    {
        using var kernels = new TempFolder();
        var file = kernels.Write("tiny.cu", TinyKernel);
        var e = Assert.Throws<NvrtcException>(() => new KernelCompiler(kernels.Path, _cache.Path).Compile(file, new GpuArchitecture(1, 0)));
        Assert.Contains("sm_10", e.Message);
        Assert.Contains("tiny.cu", e.Message);
        Assert.Contains("sm_80", e.Message);
    }

    [Fact]
    public void KernelsFolderOfTheBuildOutputMatchesTheRepository()
    {
        // The test assembly's folder, not AppContext.BaseDirectory: a console runner (xunit.console) has its own.
        var output = Path.GetDirectoryName(typeof(KernelCompilerTests).Assembly.Location)!;
        var compiler = new KernelCompiler(KernelCompiler.FindKernelsDirectory(null, output), _cache.Path);
        Assert.StartsWith(output, compiler.KernelsDirectory + Path.DirectorySeparatorChar);
        var repository = Path.Combine(Repository.Root, "kernels");
        string[] Sources(string folder) =>
            Directory.GetFiles(folder).Where(f => f.EndsWith(".cu") || f.EndsWith(".cuh")).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        Assert.Equal(Sources(repository), Sources(compiler.KernelsDirectory));
        foreach (var name in Sources(repository))
            Assert.True(File.ReadAllText(Path.Combine(repository, name)) == File.ReadAllText(Path.Combine(compiler.KernelsDirectory, name)),
                $"{name} in the build output differs from kernels/{name}; rebuild Engine.Cuda.");
    }

    [Fact]
    public void ElementwiseDefinesExactlyTheKernelsTheLauncherLoads()
    {
        // The launcher looks kernels up by name; PTX lists each extern "C" __global__ function as ".entry name(".
        var ptx = new KernelCompiler(cacheDirectory: _cache.Path).GeneratePtx(ElementwiseKernels.SourceFile, GpuArchitecture.Sm80);
        var entries = Regex.Matches(ptx, @"\.entry\s+(\w+)\(").Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal);
        Assert.Equal(ElementwiseKernels.KernelNames.Order(StringComparer.Ordinal), entries);
    }

    [Fact]
    public void SecondCompileIsACacheHit()
    {
        using var kernels = new TempFolder();
        kernels.Write("probe.cuh", ProbeHeader);
        var file = kernels.Write("probe.cu", ProbeKernel);
        var compiler = new KernelCompiler(kernels.Path, _cache.Path);

        var first = compiler.Compile(file, GpuArchitecture.Sm80);
        Assert.Equal(KernelCacheOutcome.Miss, first.CacheOutcome);
        Assert.True(File.Exists(first.CachePath));
        Assert.StartsWith(_cache.Path, first.CachePath);
        var written = File.GetLastWriteTimeUtc(first.CachePath);

        var second = new KernelCompiler(kernels.Path, _cache.Path).Compile(file, GpuArchitecture.Sm80);
        Assert.Equal(KernelCacheOutcome.Hit, second.CacheOutcome);
        Assert.True(second.FromCache);
        Assert.Equal(TimeSpan.Zero, second.CompileTime);
        Assert.Equal(first.CacheKey, second.CacheKey);
        Assert.Equal(first.Image, second.Image);
        Assert.Equal(written, File.GetLastWriteTimeUtc(second.CachePath));
        Assert.Single(Directory.GetFiles(_cache.Path));   // no temporary file left behind
    }

    [Fact]
    public void ChangedOptionsSourceHeaderOrArchitectureChangeTheKey()
    {
        using var kernels = new TempFolder();
        var header = kernels.Write("probe.cuh", ProbeHeader);
        var file = kernels.Write("probe.cu", ProbeKernel);
        var compiler = new KernelCompiler(kernels.Path, _cache.Path);
        var keys = new List<string> { compiler.Compile(file, GpuArchitecture.Sm80).CacheKey };

        var withOption = compiler.Compile(file, GpuArchitecture.Sm80, new KernelCompileOptions(ExtraOptions: ["-DPROBE_VARIANT=1"]));
        Assert.Equal(KernelCacheOutcome.Miss, withOption.CacheOutcome);
        keys.Add(withOption.CacheKey);
        keys.Add(compiler.Compile(file, GpuArchitecture.Sm80, new KernelCompileOptions(LineInfo: false)).CacheKey);
        keys.Add(compiler.Compile(file, GpuArchitecture.Sm90).CacheKey);

        File.AppendAllText(header, "// a header edit\n");
        var afterHeaderEdit = compiler.Compile(file, GpuArchitecture.Sm80);
        Assert.Equal(KernelCacheOutcome.Miss, afterHeaderEdit.CacheOutcome);
        keys.Add(afterHeaderEdit.CacheKey);

        File.AppendAllText(file, "// a source edit\n");
        keys.Add(compiler.Compile(file, GpuArchitecture.Sm80).CacheKey);

        Assert.Equal(keys.Count, keys.Distinct().Count());
        Assert.Equal(keys.Count, Directory.GetFiles(_cache.Path, "*.cubin").Length);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("garbage")]
    [InlineData("flipped byte")]
    public void DamagedCacheEntryIsRecompiled(string damage)
    {
        using var kernels = new TempFolder();
        var file = kernels.Write("tiny.cu", TinyKernel);
        var compiler = new KernelCompiler(kernels.Path, _cache.Path);
        var original = compiler.Compile(file, GpuArchitecture.Sm80);

        var bytes = File.ReadAllBytes(original.CachePath);
        switch (damage)
        {
            case "truncated": bytes = bytes[..(bytes.Length / 2)]; break;
            case "garbage": bytes = "not a cubin"u8.ToArray(); break;
            default: bytes[^7] ^= 0x5A; break;
        }
        File.WriteAllBytes(original.CachePath, bytes);

        var repaired = compiler.Compile(file, GpuArchitecture.Sm80);
        Assert.Equal(KernelCacheOutcome.Corrupt, repaired.CacheOutcome);
        Assert.Equal(original.Image, repaired.Image);
        Assert.Equal(KernelCacheOutcome.Hit, compiler.Compile(file, GpuArchitecture.Sm80).CacheOutcome);
    }

    [Fact]
    public void CompileErrorQuotesTheLogWithFileAndLine()
    {
        using var kernels = new TempFolder();
        var file = kernels.Write("broken_kernel.cu",
            "extern \"C\" __global__ void broken_forward_kernel(float* y)\n{\n    y[0] = undeclared_value;\n}\n");
        var e = Assert.Throws<NvrtcException>(() => new KernelCompiler(kernels.Path, _cache.Path).Compile(file, GpuArchitecture.Sm80));
        Assert.Contains("broken_kernel.cu(3): error", e.Message);
        Assert.Contains("undeclared_value", e.Message);
        Assert.Contains(file, e.Message);
        Assert.Contains("broken_kernel.cu(3): error", e.Log);
        Assert.Equal("broken_kernel.cu", e.FileName);
        Assert.Empty(Directory.GetFiles(_cache.Path));
    }

    [Fact]
    public void ErrorInAHeaderNamesTheHeader()
    {
        using var kernels = new TempFolder();
        kernels.Write("bad.cuh", "#pragma once\nstatic_assert(sizeof(int) == 3, \"int is not 3 bytes\");\n");
        var file = kernels.Write("uses_bad.cu", "#include \"bad.cuh\"\n" + TinyKernel);
        var e = Assert.Throws<NvrtcException>(() => new KernelCompiler(kernels.Path, _cache.Path).Compile(file, GpuArchitecture.Sm80));
        Assert.Contains("bad.cuh(2): error", e.Message);
    }

    [Fact]
    public void WarningFailsUnlessAllowed()
    {
        using var kernels = new TempFolder();
        var file = kernels.Write("warns.cu",
            "extern \"C\" __global__ void warns_forward_kernel(float* y)\n{\n    int unused = 3;\n    y[0] = 1.0f;\n}\n");
        var compiler = new KernelCompiler(kernels.Path, _cache.Path);
        var e = Assert.Throws<NvrtcException>(() => compiler.Compile(file, GpuArchitecture.Sm80));
        Assert.Contains("warns.cu(3): warning", e.Message);
        Assert.Contains("unused", e.Message);

        var allowed = compiler.Compile(file, GpuArchitecture.Sm80, new KernelCompileOptions(WarningsAsErrors: false));
        Assert.Contains("warns.cu(3): warning", allowed.Log);
        // The entry cached while warnings were allowed must not let the strict compilation pass.
        Assert.Throws<NvrtcException>(() => compiler.Compile(file, GpuArchitecture.Sm80));

        var diagnostics = new KernelCompiler(kernels.Path, _cache.Path).CompileAll(GpuArchitecture.Sm90);
        var diagnostic = Assert.Single(diagnostics);
        Assert.False(diagnostic.Succeeded);
        Assert.True(diagnostic.HasWarnings);
    }

    [Fact]
    public void MissingIncludeNamesTheIncludeAndTheFile()
    {
        using var kernels = new TempFolder();
        var file = kernels.Write("orphan.cu", "#include \"nowhere.cuh\"\n" + TinyKernel);
        var e = Assert.Throws<FileNotFoundException>(() => new KernelCompiler(kernels.Path, _cache.Path).Compile(file, GpuArchitecture.Sm80));
        Assert.Contains("nowhere.cuh", e.Message);
        Assert.Contains("orphan.cu", e.Message);
    }

    [Fact]
    public void KernelsDirectoryIsFoundFromTheEnvironmentOrAbove()
    {
        var e = Assert.Throws<DirectoryNotFoundException>(
            () => KernelCompiler.FindKernelsDirectory(Path.Combine(_cache.Path, "missing"), AppContext.BaseDirectory));
        Assert.Contains("ENGINE_KERNELS_DIR", e.Message);
        Assert.Equal(_cache.Path, KernelCompiler.FindKernelsDirectory(_cache.Path, AppContext.BaseDirectory));

        // Walking up: a kernels/ folder with a .cu file two levels above the start is found.
        using var tree = new TempFolder();
        Directory.CreateDirectory(Path.Combine(tree.Path, "kernels"));
        tree.Write(Path.Combine("kernels", "tiny.cu"), TinyKernel);
        var start = Directory.CreateDirectory(Path.Combine(tree.Path, "bin", "release")).FullName;
        Assert.Equal(Path.Combine(tree.Path, "kernels"), KernelCompiler.FindKernelsDirectory(null, start));

        using var bare = new TempFolder();
        var none = Assert.Throws<DirectoryNotFoundException>(() => KernelCompiler.FindKernelsDirectory(null, bare.Path));
        Assert.Contains(Path.Combine(bare.Path, "kernels"), none.Message);
    }

    [Theory]
    [InlineData("sm_80", 8, 0)]
    [InlineData("compute_90", 9, 0)]
    [InlineData("86", 8, 6)]
    [InlineData("8.9", 8, 9)]
    [InlineData("sm_120", 12, 0)]
    public void ArchitectureNamesParse(string text, int major, int minor)
    {
        var architecture = GpuArchitecture.Parse(text);
        Assert.Equal(new GpuArchitecture(major, minor), architecture);
        Assert.Equal($"sm_{major}{minor}", architecture.RealName);
        Assert.Equal($"compute_{major}{minor}", architecture.VirtualName);
    }

    [Fact]
    public void BadArchitectureNameSaysWhatIsExpected()
    {
        var e = Assert.Throws<FormatException>(() => GpuArchitecture.Parse("ampere"));
        Assert.Contains("sm_80", e.Message);
    }

    private const string TinyKernel = "extern \"C\" __global__ void tiny_forward_kernel(float* y) { y[threadIdx.x] = 2.0f; }\n";

    private const string ProbeHeader = "#pragma once\n__device__ __forceinline__ float probe_scale() { return 3.0f; }\n";

    private const string ProbeKernel =
        "#include \"probe.cuh\"\n" +
        "#ifndef PROBE_VARIANT\n#define PROBE_VARIANT 0\n#endif\n" +
        "extern \"C\" __global__ void probe_forward_kernel(float* y, const float* x, int n)\n" +
        "{\n    int i = blockIdx.x * blockDim.x + threadIdx.x;\n    if (i < n) y[i] = probe_scale() * x[i] + PROBE_VARIANT;\n}\n";
}
