// Tensor storage in device memory: a block of the backend's caching allocator (CudaMemoryPool), returned
// to the pool, ordered on the backend's stream, when the last tensor using it is disposed or finalized.
// Engine.Core sees it only as a Storage whose Pointer is a device address.
using Engine.Cuda.Interop;
using Engine.Cuda.Memory;

namespace Engine.Cuda.Backend;

public sealed class CudaStorage : Storage
{
    private readonly CudaMemoryPool _pool;
    private ulong _pointer;

    internal CudaStorage(CudaMemoryPool pool, long byteLength, Device device) : base(byteLength, device)
    {
        _pool = pool;
        _pointer = pool.Allocate(byteLength);
    }

    public override IntPtr Pointer => (IntPtr)(long)_pointer;

    protected override void Free()
    {
        var p = Interlocked.Exchange(ref _pointer, 0);
        if (p == 0) return;
        try
        {
            _pool.Free(p, ByteLength);
        }
        catch (CudaException)
        {
            // Only a context that is already torn down (process exit) refuses a free; its memory is gone with it,
            // and a finalizer must not throw.
        }
    }
}
