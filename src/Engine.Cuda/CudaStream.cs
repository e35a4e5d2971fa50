// A CUDA stream (cuStreamCreate with default flags: a blocking stream, ordered with the legacy
// default stream) owned by a SafeHandle. Passing no stream to a launch means the default stream.
// Streams order work among themselves through events (WaitFor), never through the host.
using Engine.Cuda.Interop;

namespace Engine.Cuda;

public sealed class CudaStream : IDisposable
{
    private readonly StreamHandle _stream;

    internal CudaStream(CudaDevice device)
    {
        Device = device;
        device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamCreate(out var stream, 0), nameof(CudaDriver.cuStreamCreate), device.Name);
        _stream = new StreamHandle(device.Context, stream);
    }

    public CudaDevice Device { get; }

    internal nint Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_stream.IsClosed, this);
            return _stream.DangerousGetHandle();
        }
    }

    /// <summary>Blocks until all work queued on this stream has finished, and reports any fault it raised.</summary>
    public void Synchronize()
    {
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(Handle), nameof(CudaDriver.cuStreamSynchronize), Device.Name);
    }

    /// <summary>Makes work queued on this stream after the call wait for <paramref name="marker"/>'s recorded work,
    /// without blocking the host (cuStreamWaitEvent).</summary>
    public void WaitFor(CudaEvent marker)
    {
        Device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamWaitEvent(Handle, marker.Handle, 0), nameof(CudaDriver.cuStreamWaitEvent), Device.Name);
    }

    public void Dispose() => _stream.Dispose();
}
