// Helpers of the detection and long-tail kernel tests: the kernel families compiled once per test run, typed
// uploads, outputs poisoned with NaN (or an impossible index) plus a guard element past the end, and the
// abs + rel·|ref| comparison whose failure message names the element, the tolerance and the seed.
using Engine.Cuda.Kernels;

namespace Engine.Cuda.Tests.Kernels;

internal static class KernelTestSupport
{
    private static readonly Lazy<RoiAlignKernels> RoiAlignFamily = new(() => new RoiAlignKernels(GpuContext.Device, GpuContext.Compiler));
    private static readonly Lazy<NmsKernels> NmsFamily = new(() => new NmsKernels(GpuContext.Device, GpuContext.Compiler));
    private static readonly Lazy<LogitNormKernels> LogitNormFamily = new(() => new LogitNormKernels(GpuContext.Device, GpuContext.Compiler));
    private static readonly Lazy<GroupSoftmaxKernels> GroupSoftmaxFamily = new(() => new GroupSoftmaxKernels(GpuContext.Device, GpuContext.Compiler));
    private static readonly Lazy<FisherMixingKernels> FisherMixingFamily = new(() => new FisherMixingKernels(GpuContext.Device, GpuContext.Compiler));

    public static RoiAlignKernels RoiAlign => RoiAlignFamily.Value;
    public static NmsKernels Nms => NmsFamily.Value;
    public static LogitNormKernels LogitNorm => LogitNormFamily.Value;
    public static GroupSoftmaxKernels GroupSoftmax => GroupSoftmaxFamily.Value;
    public static FisherMixingKernels FisherMixing => FisherMixingFamily.Value;

    public static DeviceBuffer<T> Upload<T>(T[] values) where T : unmanaged
    {
        var buffer = GpuContext.Device.Allocate<T>(values.Length);
        buffer.CopyFrom(values);
        return buffer;
    }

    /// <summary>count elements plus one guard, every one <paramref name="poison"/>.</summary>
    public static DeviceBuffer<T> Poisoned<T>(long count, T poison) where T : unmanaged
    {
        var values = new T[count + 1];
        Array.Fill(values, poison);
        return Upload(values);
    }

    public static float[] Floats(double[] values) => values.Select(v => (float)v).ToArray();

    public static double[] Doubles(float[] values) => values.Select(v => (double)v).ToArray();

    /// <summary>actual[i] against expected[i] for i &lt; expected.Length within abs + rel·|expected|; NaN only where the
    /// reference is NaN; the guard element past the end (when <paramref name="guard"/>) still NaN.</summary>
    public static void AssertClose(double[] expected, float[] actual, double abs, double rel, string context, int seed, bool guard = true)
    {
        Assert.True(actual.Length >= expected.Length + (guard ? 1 : 0), $"{context}: {actual.Length} values for {expected.Length} expected (seed {seed})");
        for (var i = 0; i < expected.Length; i++)
        {
            var (e, a) = (expected[i], (double)actual[i]);
            var ok = double.IsNaN(e) ? double.IsNaN(a) : Math.Abs(a - e) <= abs + rel * Math.Abs(e);
            Assert.True(ok, $"{context}: element {i} of {expected.Length} is {a:R}, reference {e:R} (tolerance {abs} + {rel}·|ref|; seed {seed})");
        }
        if (guard)
            Assert.True(float.IsNaN(actual[expected.Length]), $"{context}: the guard element past the {expected.Length} outputs was overwritten (seed {seed})");
    }

    public static void AssertBitEqual(float[] expected, float[] actual, string context, int seed)
    {
        for (var i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]) ||
                        (float.IsNaN(expected[i]) && float.IsNaN(actual[i])),
                $"{context}: element {i} of {expected.Length} is {actual[i]:R}, expected bit-identical {expected[i]:R} (seed {seed})");
    }
}
