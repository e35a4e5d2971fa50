// The CUDA backend's caching device allocator: stream-ordered allocation (cuMemAllocFromPoolAsync /
// cuMemFreeAsync) from the device's default memory pool, whose release threshold is raised so that freed
// blocks stay cached in the pool instead of going back to the driver at every synchronization — the same
// effect as PyTorch's caching allocator, kept by the driver. Allocations and frees are queued on the
// backend's stream, so a block freed by one op is reused by the next without any host synchronization;
// a free from another thread (a finalizer) is still ordered on that stream. Where the device has no
// memory pools (CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 0), plain cuMemAlloc / cuMemFree are used.
// On out-of-memory the pool first waits for queued frees and for unreachable tensors to be finalized,
// then retries once; the error that follows names the request and the allocator's state.
using Engine.Cuda.Interop;

namespace Engine.Cuda.Memory;

public sealed unsafe class CudaMemoryPool
{
    private readonly nint _pool;
    private readonly AllocatorStats _stats = new();

    /// <param name="releaseThreshold">bytes the pool keeps cached across synchronizations; ulong.MaxValue keeps
    /// everything (the default: one process owns the GPU).</param>
    public CudaMemoryPool(CudaDevice device, CudaStream stream, ulong releaseThreshold = ulong.MaxValue)
    {
        Device = device;
        Stream = stream;
        ReleaseThreshold = releaseThreshold;
        device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuDeviceGet(out var handle, device.Ordinal), nameof(CudaDriver.cuDeviceGet));
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out var pools, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, handle),
                         nameof(CudaDriver.cuDeviceGetAttribute), "CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED");
        if (pools == 0) return;
        CudaDriver.Check(CudaDriver.cuDeviceGetDefaultMemPool(out _pool, handle), nameof(CudaDriver.cuDeviceGetDefaultMemPool), device.Name);
        var threshold = releaseThreshold;
        CudaDriver.Check(CudaDriver.cuMemPoolSetAttribute(_pool, CUmemPool_attribute.CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &threshold),
                         nameof(CudaDriver.cuMemPoolSetAttribute), $"CU_MEMPOOL_ATTR_RELEASE_THRESHOLD = {threshold}");
    }

    public CudaDevice Device { get; }
    public CudaStream Stream { get; }
    public ulong ReleaseThreshold { get; }

    /// <summary>Whether the stream-ordered pool is in use (false: synchronous cuMemAlloc fallback).</summary>
    public bool StreamOrdered => _pool != 0;

    /// <summary>A block of <paramref name="bytes"/> bytes, usable by work queued on <see cref="Stream"/> after this call;
    /// 0 for an empty request.</summary>
    public ulong Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (bytes == 0) return 0;
        Device.MakeCurrent();
        var status = TryAllocate(bytes, out var pointer);
        if (status == CUresult.CUDA_ERROR_OUT_OF_MEMORY)
        {
            // Tensors that were dropped without Dispose hold memory until their finalizers run; queued frees
            // return memory to the pool once the stream reaches them.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Stream.Synchronize();
            status = TryAllocate(bytes, out pointer);
        }
        CudaDriver.Check(status, StreamOrdered ? nameof(CudaDriver.cuMemAllocFromPoolAsync) : nameof(CudaDriver.cuMemAlloc),
                         $"{MemoryStats.Format(bytes)} on {Device.Name}; {Stats}");
        _stats.OnAllocate(bytes);
        return pointer;
    }

    /// <summary>Returns a block from <see cref="Allocate"/>; work queued on the stream before this call may still
    /// use it, later work may reuse it.</summary>
    public void Free(ulong pointer, long bytes)
    {
        if (pointer == 0) return;
        Device.MakeCurrent();
        if (StreamOrdered) CudaDriver.Check(CudaDriver.cuMemFreeAsync(pointer, Stream.Handle), nameof(CudaDriver.cuMemFreeAsync), Device.Name);
        else CudaDriver.Check(CudaDriver.cuMemFree(pointer), nameof(CudaDriver.cuMemFree), Device.Name);
        _stats.OnFree(bytes);
    }

    /// <summary>Allocated and peak from the engine's accounting, reserved from the pool (the cached blocks included).</summary>
    public MemoryStats Stats
    {
        get
        {
            long reserved = _stats.Allocated, reservedPeak = _stats.Peak;
            if (StreamOrdered)
            {
                Device.MakeCurrent();
                reserved = (long)PoolCounter(CUmemPool_attribute.CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT);
                reservedPeak = (long)PoolCounter(CUmemPool_attribute.CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH);
            }
            return new MemoryStats(_stats.Allocated, reserved, _stats.Peak, reservedPeak, _stats.Allocations, _stats.Frees);
        }
    }

    public void ResetPeak() => _stats.ResetPeak();

    /// <summary>Gives cached blocks back to the driver after the stream's queued work (and frees) completed.
    /// A host synchronization: call between phases, never inside a training step.</summary>
    public void ReleaseCached()
    {
        Stream.Synchronize();
        if (StreamOrdered) CudaDriver.Check(CudaDriver.cuMemPoolTrimTo(_pool, 0), nameof(CudaDriver.cuMemPoolTrimTo), Device.Name);
    }

    private CUresult TryAllocate(long bytes, out ulong pointer) =>
        StreamOrdered
            ? CudaDriver.cuMemAllocFromPoolAsync(out pointer, (nuint)bytes, _pool, Stream.Handle)
            : CudaDriver.cuMemAlloc(out pointer, (nuint)bytes);

    private ulong PoolCounter(CUmemPool_attribute attribute)
    {
        ulong value;
        CudaDriver.Check(CudaDriver.cuMemPoolGetAttribute(_pool, attribute, &value), nameof(CudaDriver.cuMemPoolGetAttribute), attribute.ToString());
        return value;
    }
}
