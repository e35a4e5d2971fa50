// Checks of the CUDA detection and long-tail backends that need no GPU: box_ops.cu and long_tail_losses.cu define
// exactly the kernels their launchers load (PTX lists every extern "C" __global__ function as ".entry name("), and
// the by-value argument structs have the sizes the kernels' static_asserts pin. (Their clean CUBIN compilation for
// sm_80 and sm_90 is KernelCompilerTests' theory over every kernels/*.cu file.)
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Engine.Cuda.Compilation;
using Engine.Cuda.Ops;

namespace Engine.Cuda.Tests.Ops;

public sealed class OpsKernelLayoutTests : IDisposable
{
    private readonly TempFolder _cache = new();

    public void Dispose() => _cache.Dispose();

    public static TheoryData<string, string[]> Families => new()
    {
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
        { CudaBoxOpsKernels.SourceFile, "box_ops_args", Unsafe.SizeOf<BoxOpsArgs>() },
        { CudaLongTailKernels.SourceFile, "long_tail_args", Unsafe.SizeOf<LongTailArgs>() },
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

    /// <summary>The op and error codes the kernels write must be the ones DeviceErrorLog decodes.</summary>
    [Theory]
    [InlineData("box_ops.cu", "BOX_OP_ENCODE", (int)Engine.Cuda.Backend.DeviceErrorLog.Op.EncodeBoxes)]
    [InlineData("box_ops.cu", "BOX_OP_MATCH", (int)Engine.Cuda.Backend.DeviceErrorLog.Op.MatchProposals)]
    [InlineData("box_ops.cu", "BOX_ERROR_NON_POSITIVE", (int)Engine.Cuda.Backend.DeviceErrorLog.ErrorCode.NonPositiveBox)]
    [InlineData("box_ops.cu", "BOX_ERROR_QUALITY", (int)Engine.Cuda.Backend.DeviceErrorLog.ErrorCode.InvalidQuality)]
    [InlineData("long_tail_losses.cu", "LT_OP_BCE", (int)Engine.Cuda.Backend.DeviceErrorLog.Op.WeightedSigmoidBce)]
    [InlineData("long_tail_losses.cu", "LT_OP_FCBL", (int)Engine.Cuda.Backend.DeviceErrorLog.Op.Fcbl)]
    [InlineData("long_tail_losses.cu", "LT_OP_CONFUSION", (int)Engine.Cuda.Backend.DeviceErrorLog.Op.AccumulateConfusion)]
    [InlineData("long_tail_losses.cu", "LT_OP_SOFTMAX_CE", (int)Engine.Cuda.Backend.DeviceErrorLog.Op.SoftmaxCrossEntropy)]
    [InlineData("long_tail_losses.cu", "LT_OP_SEESAW", (int)Engine.Cuda.Backend.DeviceErrorLog.Op.Seesaw)]
    [InlineData("long_tail_losses.cu", "LT_OP_CRAT", (int)Engine.Cuda.Backend.DeviceErrorLog.Op.CratTransfuse)]
    [InlineData("long_tail_losses.cu", "LT_ERROR_LABEL", (int)Engine.Cuda.Backend.DeviceErrorLog.ErrorCode.LabelOutOfRange)]
    public void ErrorCodesMatchTheHostRecord(string file, string macro, int hostValue)
    {
        var source = File.ReadAllText(Path.Combine(new KernelCompiler(cacheDirectory: _cache.Path).KernelsDirectory, file));
        var match = Regex.Match(source, $@"#define {macro} (\d+)");
        Assert.True(match.Success, $"{file} does not define {macro}");
        Assert.Equal(hostValue, int.Parse(match.Groups[1].Value));
    }
}
