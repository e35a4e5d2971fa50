// Device, memory, stream and module basics on a real GPU: what the device reports, host/device copies,
// NaN fills, empty buffers, range checks, architecture checks on module load, and launches on a stream.
using Engine.Cuda.Compilation;
using Engine.Cuda.Kernels;
using Engine.Tests;

namespace Engine.Cuda.Tests;

public sealed class CudaDeviceTests
{
    [CudaFact]
    public void OpenReportsTheDevice()
    {
        var device = GpuContext.Device;
        Assert.NotEmpty(device.Name);
        Assert.True(device.Architecture.Major >= 5, device.ToString());
        Assert.True(device.MultiprocessorCount > 0, device.ToString());
        Assert.True(device.MaxThreadsPerBlock >= 256, device.ToString());
        Assert.Contains(device.Architecture, KernelCompiler.SupportedArchitectures);
    }

    [CudaFact]
    public void CopiesRoundTripWithOffsets()
    {
        var random = new SeededRandom();
        var values = random.Uniform(1001, -1e6, 1e6);
        using var buffer = GpuContext.Upload(values);
        Assert.Equal(values, buffer.ToArray());

        var middle = new float[17];
        buffer.CopyTo(middle, 500);
        Assert.Equal(values[500..517], middle);
        var patch = random.Uniform(33, -1, 1);
        buffer.CopyFrom(patch, 968);
        Assert.Equal(values[..968].Concat(patch), buffer.ToArray());
    }

    [CudaFact]
    public void DeviceToDeviceCopiesLandAtTheirOffsetInStreamOrder()
    {
        var random = new SeededRandom();
        var values = random.Uniform(1001, -1e6, 1e6);
        var patch = random.Uniform(333, -1, 1);
        using var destination = GpuContext.Upload(values);
        using var source = GpuContext.Upload(patch);
        using var stream = GpuContext.Device.CreateStream();
        destination.CopyFrom(source, 600, stream);
        stream.Synchronize();
        Assert.Equal(values[..600].Concat(patch).Concat(values[933..]), destination.ToArray());
        destination.CopyFrom(source);   // the default stream, offset 0
        Assert.Equal(patch.Concat(values[333..600]).Concat(patch).Concat(values[933..]), destination.ToArray());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => destination.CopyFrom(source, 700));
        Assert.Contains("[700, 1033)", e.Message);
    }

    [CudaFact]
    public void FillWritesEveryElement()
    {
        using var buffer = GpuContext.Device.Allocate<float>(4099);
        buffer.Fill(float.NaN);
        Assert.All(buffer.ToArray(), v => Assert.True(float.IsNaN(v)));
        buffer.Fill(-2.5f);
        Assert.All(buffer.ToArray(), v => Assert.Equal(-2.5f, v));
    }

    [CudaFact]
    public void EmptyBufferAllocatesNothing()
    {
        using var buffer = GpuContext.Device.Allocate<float>(0);
        Assert.Equal(0UL, buffer.Pointer);
        buffer.CopyFrom([]);
        buffer.Fill(1f);
        Assert.Empty(buffer.ToArray());
    }

    [CudaFact]
    public void OutOfRangeCopiesAndDisposedBuffersAreRejected()
    {
        var buffer = GpuContext.Device.Allocate<float>(10);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => buffer.CopyFrom(new float[4], 7));
        Assert.Contains("[7, 11)", e.Message);
        Assert.Contains("10 elements", e.Message);
        buffer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => buffer.Pointer);
    }

    [CudaFact]
    public void ModuleForAnotherArchitectureIsRejected()
    {
        var device = GpuContext.Device;
        var other = device.Architecture.Major == 8 ? GpuArchitecture.Sm90 : GpuArchitecture.Sm80;
        var kernel = GpuContext.Compiler.Compile(ElementwiseKernels.SourceFile, other);
        var e = Assert.Throws<ArgumentException>(() => device.LoadModule(kernel));
        Assert.Contains(other.RealName, e.Message);
        Assert.Contains(device.Architecture.RealName, e.Message);
    }

    [CudaFact]
    public void LaunchOnAStreamFromAnotherThread()
    {
        // The context is current per thread: a thread that never touched the device must still launch.
        var random = new SeededRandom();
        var values = random.Uniform(4097, -3, 3);
        float[] result = [];
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var stream = GpuContext.Device.CreateStream();
                using var x = GpuContext.Upload(values);
                using var y = GpuContext.Poisoned(values.Length);
                GpuContext.Elementwise.Unary(UnaryOp.Neg, DeviceView.Dense(x, values.Length), y, stream);
                stream.Synchronize();
                result = y.ToArray();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        Assert.Null(failure);
        Assert.Equal(values.Select(v => -v), result[..values.Length]);
        Assert.True(float.IsNaN(result[^1]), "the guard element after the output was written");
    }
}
