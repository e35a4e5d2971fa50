// A CUDA event (cuEventCreate): a marker queued on a stream that the host can wait for or poll, that
// another stream can wait for without the host (CudaStream.WaitFor), and that times the work between
// two markers (ElapsedMilliseconds). Events made without timing are cheaper to record and wait on.
using Engine.Cuda.Interop;

namespace Engine.Cuda;

public sealed class CudaEvent : IDisposable
{
    private const uint CuEventDisableTiming = 0x2;

    private readonly EventHandle _event;

    public CudaEvent(CudaDevice device, bool timing = false)
    {
        Device = device;
        Timing = timing;
        device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventCreate(out var e, timing ? 0 : CuEventDisableTiming), nameof(CudaDriver.cuEventCreate), device.Name);
        _event = new EventHandle(device.Context, e);
    }

    public CudaDevice Device { get; }
    public bool Timing { get; }

    internal nint Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_event.IsClosed, this);
            return _event.DangerousGetHandle();
        }
    }

    /// <summary>Queues the marker on <paramref name="stream"/> (the legacy default stream when null).</summary>
    public void Record(CudaStream? stream)
    {
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventRecord(Handle, stream?.Handle ?? 0), nameof(CudaDriver.cuEventRecord), Device.Name);
    }

    /// <summary>Blocks the calling thread until the work before the last Record has finished.</summary>
    public void Synchronize()
    {
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventSynchronize(Handle), nameof(CudaDriver.cuEventSynchronize), Device.Name);
    }

    /// <summary>True when the work before the last Record has finished (or nothing was recorded); never blocks.</summary>
    public bool IsComplete
    {
        get
        {
            Device.MakeCurrent();
            var status = CudaDriver.cuEventQuery(Handle);
            if (status == CUresult.CUDA_ERROR_NOT_READY) return false;
            CudaDriver.Check(status, nameof(CudaDriver.cuEventQuery), Device.Name);
            return true;
        }
    }

    /// <summary>Milliseconds between two recorded timing events (both must have completed).</summary>
    public static float ElapsedMilliseconds(CudaEvent start, CudaEvent end)
    {
        if (!start.Timing || !end.Timing)
            throw new InvalidOperationException("CudaEvent.ElapsedMilliseconds: both events must be created with timing: true.");
        start.Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventElapsedTime(out var ms, start.Handle, end.Handle), nameof(CudaDriver.cuEventElapsedTime), start.Device.Name);
        return ms;
    }

    public void Dispose() => _event.Dispose();
}
