// The range an external profiler records when it is started with collection off (Nsight Compute's
// `--profile-from-start off`, Nsight Systems' `--capture-range=cudaProfilerApi`): cuProfilerStart when the
// range opens, cuProfilerStop when it is disposed, each after the device's queued work has completed so the
// range holds exactly the work launched inside it. Without a profiler attached both calls do nothing.
using Engine.Cuda.Interop;

namespace Engine.Cuda;

public sealed class CudaProfilerRange : IDisposable
{
    private readonly CudaDevice _device;
    private bool _open;

    private CudaProfilerRange(CudaDevice device)
    {
        _device = device;
        device.Synchronize();
        CudaDriver.Check(CudaDriver.cuProfilerStart(), nameof(CudaDriver.cuProfilerStart), device.Name);
        _open = true;
    }

    /// <summary>Opens a profiler range on <paramref name="device"/> (synchronizes it first).</summary>
    public static CudaProfilerRange Start(CudaDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return new CudaProfilerRange(device);
    }

    public void Dispose()
    {
        if (!_open) return;
        _open = false;
        _device.Synchronize();
        CudaDriver.Check(CudaDriver.cuProfilerStop(), nameof(CudaDriver.cuProfilerStop), _device.Name);
    }
}
