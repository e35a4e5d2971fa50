// A check of the CUDA detection and long-tail backends that needs no GPU: the op and error codes box_ops.cu and
// long_tail_losses.cu write are the ones DeviceErrorLog decodes. (Their kernel lists and argument struct sizes are
// checked with the other families in KernelFamilyLayoutTests; their clean CUBIN compilation for sm_80 and sm_90 is
// KernelCompilerTests' theory over every kernels/*.cu file.)
using System.Text.RegularExpressions;
using Engine.Cuda.Compilation;
using Engine.Cuda.Ops;

namespace Engine.Cuda.Tests.Ops;

public sealed class OpsKernelLayoutTests : IDisposable
{
    private readonly TempFolder _cache = new();

    public void Dispose() => _cache.Dispose();

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
