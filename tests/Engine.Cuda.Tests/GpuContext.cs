// The device, compiler and element-wise kernels shared by the GPU tests, created on first use inside
// a test body. Where no device exists and ENGINE_TEST_DEVICE=cuda is set, creating it throws, so every
// GPU test fails with the reason instead of being skipped.
using Engine.Cuda.Compilation;
using Engine.Cuda.Kernels;

namespace Engine.Cuda.Tests;

internal static class GpuContext
{
    private static readonly Lazy<(CudaDevice Device, KernelCompiler Compiler, ElementwiseKernels Elementwise)> Shared = new(() =>
    {
        var device = CudaDevice.Open();
        var compiler = new KernelCompiler(cacheDirectory: Path.Combine(Path.GetTempPath(), "engine-cuda-tests-kernel-cache"));
        return (device, compiler, new ElementwiseKernels(device, compiler));
    });

    public static CudaDevice Device => Shared.Value.Device;
    public static KernelCompiler Compiler => Shared.Value.Compiler;
    public static ElementwiseKernels Elementwise => Shared.Value.Elementwise;

    /// <summary>A device buffer holding <paramref name="values"/>.</summary>
    public static DeviceBuffer<float> Upload(float[] values)
    {
        var buffer = Device.Allocate<float>(values.Length);
        buffer.CopyFrom(values);
        return buffer;
    }

    /// <summary>An output buffer of <paramref name="count"/> elements plus one guard element, all NaN, so an
    /// element the kernel fails to write, or a write past the end, shows.</summary>
    public static DeviceBuffer<float> Poisoned(long count)
    {
        var buffer = Device.Allocate<float>(count + 1);
        buffer.Fill(float.NaN);
        return buffer;
    }
}
