// Reference-counted memory shared by a tensor and its views. Freed deterministically when the last
// tensor using it is disposed (or finalized). Version counts in-place writes, so autograd can detect a
// saved tensor modified before backward, and caches (e.g. reordered convolution weights) can tell when
// a parameter changed.
using System.Runtime.InteropServices;

namespace Engine;

public abstract class Storage
{
    private static long _nextId;
    private int _refCount = 1;
    private long _version;

    protected Storage(long byteLength, Device device)
    {
        ByteLength = byteLength;
        Device = device;
        Id = Interlocked.Increment(ref _nextId);
    }

    public long ByteLength { get; }
    public Device Device { get; }

    /// <summary>Unique for the process lifetime; used as a cache key for derived data.</summary>
    public long Id { get; }

    public long Version => Interlocked.Read(ref _version);
    public bool IsReleased => Volatile.Read(ref _refCount) <= 0;
    internal int RefCount => Volatile.Read(ref _refCount);

    /// <summary>Marks the contents as changed (every in-place write calls this).</summary>
    public void BumpVersion() => Interlocked.Increment(ref _version);

    internal void AddRef()
    {
        if (Interlocked.Increment(ref _refCount) <= 1)
            throw new ObjectDisposedException(nameof(Storage), "storage was already freed");
    }

    internal void Release()
    {
        var n = Interlocked.Decrement(ref _refCount);
        if (n == 0) Free();
    }

    /// <summary>Address of the first byte (host memory for the CPU, a device pointer for CUDA).</summary>
    public abstract IntPtr Pointer { get; }

    protected abstract void Free();
}

/// <summary>64-byte aligned host memory, reported to the GC as memory pressure so finalizers keep up.</summary>
public sealed unsafe class CpuStorage : Storage
{
    private IntPtr _data;

    public CpuStorage(long byteLength) : base(byteLength, Device.Cpu)
    {
        _data = (IntPtr)NativeMemory.AlignedAlloc((nuint)Math.Max(byteLength, 1), 64);
        if (byteLength > 0) GC.AddMemoryPressure(byteLength);
    }

    public override IntPtr Pointer => _data;

    /// <summary>Set when oneDNN keeps a reordered copy of this memory as convolution weights.</summary>
    internal bool HasCachedWeights { get; set; }

    protected override void Free()
    {
        var p = Interlocked.Exchange(ref _data, IntPtr.Zero);
        if (p == IntPtr.Zero) return;
        if (HasCachedWeights) Native.OneDnn.ForgetWeights((ulong)Id);
        NativeMemory.AlignedFree((void*)p);
        if (ByteLength > 0) GC.RemoveMemoryPressure(ByteLength);
    }
}
