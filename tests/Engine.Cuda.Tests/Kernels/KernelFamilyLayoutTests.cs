// Checks that need no GPU for the custom kernel families and those of the CUDA detection and long-tail backends
// (Engine.Cuda.Ops): each .cu file defines exactly the kernels
// its launcher loads (PTX lists every extern "C" __global__ function as ".entry name("), and every by-value
// argument struct the launchers build has the size the kernel's static_assert pins, so host and device agree on the
// layout. (Every file's clean CUBIN compilation for sm_80 and sm_90 is KernelCompilerTests' theory over kernels/.)
using System.Text.RegularExpressions;
using Engine.Cuda.Compilation;
using Engine.Cuda.Kernels;
using Engine.Cuda.Ops;

namespace Engine.Cuda.Tests.Kernels;

public sealed class KernelFamilyLayoutTests : IDisposable
{
    private readonly TempFolder _cache = new();

    public void Dispose() => _cache.Dispose();

    public static TheoryData<string, string[]> Families => new()
    {
        { RoiAlignKernels.SourceFile, RoiAlignKernels.KernelNames.ToArray() },
        { NmsKernels.SourceFile, NmsKernels.KernelNames.ToArray() },
        { LogitNormKernels.SourceFile, LogitNormKernels.KernelNames.ToArray() },
        { GroupSoftmaxKernels.SourceFile, GroupSoftmaxKernels.KernelNames.ToArray() },
        { FisherMixingKernels.SourceFile, FisherMixingKernels.KernelNames.ToArray() },
        { CudaBoxOpsKernels.SourceFile, CudaBoxOpsKernels.KernelNames.ToArray() },
        { CudaLongTailKernels.SourceFile, CudaLongTailKernels.KernelNames.ToArray() },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void SourceDefinesExactlyTheKernelsTheLauncherLoads(string file, string[] names)
    {
        foreach (var architecture in new[] { GpuArchitecture.Sm80, GpuArchitecture.Sm90 })
        {
            var ptx = new KernelCompiler(cacheDirectory: _cache.Path).GeneratePtx(file, architecture);
            var entries = Regex.Matches(ptx, @"\.entry\s+(\w+)\(").Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal);
            Assert.Equal(names.Order(StringComparer.Ordinal), entries);
        }
    }

    public static TheoryData<string, string, int> Structs => new()
    {
        { RoiAlignKernels.SourceFile, "roi_align_level", KernelFamily.SizeOf<RoiAlignLevelArgs>() },
        { RoiAlignKernels.SourceFile, "roi_align_args", KernelFamily.SizeOf<RoiAlignArgs>() },
        { NmsKernels.SourceFile, "nms_args", KernelFamily.SizeOf<NmsArgs>() },
        { LogitNormKernels.SourceFile, "logit_norm_args", KernelFamily.SizeOf<LogitNormArgs>() },
        { LogitNormKernels.SourceFile, "logit_standardize_args", KernelFamily.SizeOf<LogitStandardizeArgs>() },
        { GroupSoftmaxKernels.SourceFile, "group_softmax_args", KernelFamily.SizeOf<GroupSoftmaxArgs>() },
        { FisherMixingKernels.SourceFile, "crat_args", KernelFamily.SizeOf<CratArgs>() },
        { CudaBoxOpsKernels.SourceFile, "box_ops_args", KernelFamily.SizeOf<BoxOpsArgs>() },
        { CudaBoxOpsKernels.SourceFile, "fpn_level_args", KernelFamily.SizeOf<FpnLevelArgs>() },
        { CudaLongTailKernels.SourceFile, "long_tail_args", KernelFamily.SizeOf<LongTailArgs>() },
    };

    [Theory]
    [MemberData(nameof(Structs))]
    public void HostStructHasTheSizeTheKernelAsserts(string file, string structName, int hostSize)
    {
        var source = File.ReadAllText(Path.Combine(new KernelCompiler(cacheDirectory: _cache.Path).KernelsDirectory, file));
        var match = Regex.Match(source, $@"static_assert\(sizeof\({structName}\) == (\d+)");
        Assert.True(match.Success, $"{file} has no static_assert(sizeof({structName}) == N, ...)");
        Assert.Equal(int.Parse(match.Groups[1].Value), hostSize);
    }

    [Fact]
    public void LaunchersUseTheKernelsConstants()
    {
        var folder = new KernelCompiler(cacheDirectory: _cache.Path).KernelsDirectory;
        var roiAlign = File.ReadAllText(Path.Combine(folder, RoiAlignKernels.SourceFile));
        Assert.Contains($"#define ROI_ALIGN_MAX_LEVELS {RoiAlignKernels.MaxLevels}\n", roiAlign);
        Assert.Contains($"#define ROI_ALIGN_CHANNELS {RoiAlignKernels.ChannelsPerThread}\n", roiAlign);
        Assert.Contains($"#define ROI_ALIGN_BACKWARD_CHANNELS {RoiAlignKernels.BackwardChannelsPerBlock}\n", roiAlign);
    }
}
