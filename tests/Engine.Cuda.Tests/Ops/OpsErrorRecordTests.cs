// The errors the box and long-tail kernels record on the device (DeviceErrorLog) must read like the CPU backend's
// exceptions for the same input: checked without a GPU by decoding the record the kernel would write for a bad
// input and comparing with what the CPU backend throws.
using Engine.Cuda.Backend;
using Engine.Detection;

namespace Engine.Cuda.Tests.Ops;

public sealed class OpsErrorRecordTests
{
    private static long Pack(float high, float low) =>
        ((long)BitConverter.SingleToInt32Bits(high) << 32) | (uint)BitConverter.SingleToInt32Bits(low);

    [Fact]
    public void NonPositiveSourceBoxReadsAsTheCpuBackendsMessage()
    {
        float[] source = [0, 0, 4, 4, 3, 2, 3, 9];
        using var src = Tensor.From<float>(source, [2, 4]);
        using var target = Tensor.From<float>(new float[8], [2, 4]);
        using var deltas = Tensor.Empty([2, 4]);
        var cpu = Assert.Throws<ArgumentException>(() => DetectionBackends.Cpu.EncodeBoxes(src, target, new BoxCoderWeights(1, 1, 1, 1), deltas));
        // what box_encode_kernel records for box 1 = [3, 2, 3, 9]
        var record = new EngineError
        {
            Code = (int)DeviceErrorLog.ErrorCode.NonPositiveBox, Op = (int)DeviceErrorLog.Op.EncodeBoxes,
            Value = Pack(3, 2), Position = 1, Limit = Pack(3, 9),
        };
        var gpu = Assert.IsType<ArgumentException>(DeviceErrorLog.Describe(record));
        Assert.StartsWith(cpu.Message, gpu.Message);
    }

    [Fact]
    public void InvalidQualityReadsAsTheCpuBackendsMessage()
    {
        using var quality = Tensor.From<float>([0.5f, 0.2f, 0.1f, -0.25f, 0.3f, 0.9f], [2, 3]);
        using var matches = Tensor.Empty([3], DType.Int64);
        using var labels = Tensor.Empty([3], DType.Int64);
        var rule = new MatcherRule([0.5], [0, 1], false);
        var cpu = Assert.Throws<ArgumentException>(() => DetectionBackends.Cpu.MatchProposals(quality, rule, matches, labels));
        var record = new EngineError
        {
            Code = (int)DeviceErrorLog.ErrorCode.InvalidQuality, Op = (int)DeviceErrorLog.Op.MatchProposals,
            Value = (uint)BitConverter.SingleToInt32Bits(-0.25f), Position = 3, Limit = 3,
        };
        var gpu = Assert.IsType<ArgumentException>(DeviceErrorLog.Describe(record));
        Assert.StartsWith(cpu.Message, gpu.Message);
    }

    [Fact]
    public void LabelOutOfRangeNamesTheOpRowAndRange()
    {
        var record = new EngineError
        {
            Code = (int)DeviceErrorLog.ErrorCode.LabelOutOfRange, Op = (int)DeviceErrorLog.Op.Seesaw, Value = 12, Position = 5, Limit = 10,
        };
        var e = Assert.IsType<ArgumentException>(DeviceErrorLog.Describe(record));
        Assert.StartsWith("Seesaw: label 12 at row 5 is outside 0..10", e.Message);
    }
}
