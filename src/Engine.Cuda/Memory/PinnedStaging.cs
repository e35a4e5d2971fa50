// Page-locked host buffers through which the CUDA backend moves tensors between host and device. A copy
// from pageable memory (a managed array) cannot be asynchronous, and the caller's memory may be gone once
// the call returns; so uploads are copied into a pinned ring (StagingRing's bookkeeping, 64 MiB by default)
// and queued from there (cuMemcpyHtoDAsync). Each upload's bytes stay reserved until the event recorded
// after its copy completes, and the host waits only when the ring comes round onto a copy the stream has not
// reached: a training step's many small uploads (index lists, constants, the batch) queue without waiting.
// Downloads are queued into pinned chunks and waited for, since the caller reads the data on return: that
// wait is the one host synchronization a copy to the host needs. Their chunks alternate, so copying one chunk
// on the host overlaps the transfer of the next.
using System.Runtime.CompilerServices;
using Engine.Cuda.Interop;

namespace Engine.Cuda.Memory;

public sealed unsafe class PinnedStaging : IDisposable
{
    private const uint CuMemHostAllocPortable = 0x1;

    private readonly Chunk[] _chunks;
    private readonly Lock _gate = new();
    private int _next;

    private sealed class Chunk(PinnedHostHandle memory, CudaEvent done)
    {
        public PinnedHostHandle Memory { get; } = memory;
        public byte* Pointer => (byte*)Memory.DangerousGetHandle();
        public CudaEvent Done { get; } = done;
        public bool InFlight { get; set; }
    }

    private readonly PinnedHostHandle _ringMemory;
    private readonly StagingRing<CudaEvent> _uploads;
    private readonly Stack<CudaEvent> _idleEvents = new();
    private readonly List<CudaEvent> _retired = [];

    /// <param name="chunkBytes">size of one pinned chunk; a transfer larger than this goes through several.</param>
    /// <param name="chunkCount">number of download chunks used in turn (2: double buffering).</param>
    /// <param name="ringBytes">size of the upload ring (at least one chunk).</param>
    public PinnedStaging(CudaDevice device, CudaStream stream, int chunkBytes = 8 << 20, int chunkCount = 2, long ringBytes = 64L << 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 4096);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(ringBytes, chunkBytes);
        Device = device;
        Stream = stream;
        ChunkBytes = chunkBytes;
        device.MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemHostAlloc(out var ring, (nuint)ringBytes, CuMemHostAllocPortable), nameof(CudaDriver.cuMemHostAlloc),
                         $"{MemoryStats.Format(ringBytes)} of pinned upload staging memory");
        _ringMemory = new PinnedHostHandle(device.Context, (nint)ring);
        _uploads = new StagingRing<CudaEvent>(ringBytes);
        _chunks = new Chunk[chunkCount];
        for (var i = 0; i < chunkCount; i++)
        {
            CudaDriver.Check(CudaDriver.cuMemHostAlloc(out var p, (nuint)chunkBytes, CuMemHostAllocPortable), nameof(CudaDriver.cuMemHostAlloc),
                             $"{MemoryStats.Format(chunkBytes)} of pinned staging memory");
            _chunks[i] = new Chunk(new PinnedHostHandle(device.Context, (nint)p), new CudaEvent(device));
        }
    }

    public CudaDevice Device { get; }
    public CudaStream Stream { get; }
    public int ChunkBytes { get; }

    /// <summary>Queues a copy of <paramref name="bytes"/> bytes from host memory to device address <paramref name="destination"/>
    /// on the stream. The host memory may be reused as soon as the call returns.</summary>
    public void Upload(void* host, ulong destination, long bytes)
    {
        if (bytes <= 0) return;
        lock (_gate)
        {
            Device.MakeCurrent();
            var ring = (byte*)_ringMemory.DangerousGetHandle();
            _uploads.RetireCompleted(e => e.IsComplete, _retired);
            Recycle();
            for (long done = 0; done < bytes; done += ChunkBytes)
            {
                var n = (int)Math.Min(ChunkBytes, bytes - done);
                var marker = _idleEvents.Count > 0 ? _idleEvents.Pop() : new CudaEvent(Device);
                var offset = _uploads.Reserve(n, out var waitFor, _retired);
                try
                {
                    waitFor?.Synchronize();
                    Unsafe.CopyBlockUnaligned(ring + offset, (byte*)host + done, (uint)n);
                    CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync(destination + (ulong)done, ring + offset, (nuint)n, Stream.Handle),
                                     nameof(CudaDriver.cuMemcpyHtoDAsync), $"{n} bytes");
                    marker.Record(Stream);
                }
                catch
                {
                    _uploads.Cancel();
                    _idleEvents.Push(marker);
                    throw;
                }
                _uploads.Commit(marker);
                Recycle();
            }
        }
    }

    /// <summary>Upload markers the ring gave back, ready to be recorded again.</summary>
    private void Recycle()
    {
        foreach (var e in _retired) _idleEvents.Push(e);
        _retired.Clear();
    }

    /// <summary>Copies <paramref name="bytes"/> bytes from device address <paramref name="source"/> to host memory, after all
    /// work queued on the stream before the call; returns when the data is on the host.</summary>
    public void Download(ulong source, void* host, long bytes)
    {
        if (bytes <= 0) return;
        lock (_gate)
        {
            Device.MakeCurrent();
            // Queue up to one transfer per chunk ahead, then drain them in order while queueing the next.
            var pending = new Queue<(Chunk Chunk, long Offset, int Length)>();
            long queued = 0;
            while (queued < bytes || pending.Count > 0)
            {
                while (queued < bytes && pending.Count < _chunks.Length)
                {
                    var n = (int)Math.Min(ChunkBytes, bytes - queued);
                    var chunk = Take();
                    CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync(chunk.Pointer, source + (ulong)queued, (nuint)n, Stream.Handle),
                                     nameof(CudaDriver.cuMemcpyDtoHAsync), $"{n} bytes");
                    chunk.Done.Record(Stream);
                    chunk.InFlight = true;
                    pending.Enqueue((chunk, queued, n));
                    queued += n;
                }
                var (c, offset, length) = pending.Dequeue();
                c.Done.Synchronize();
                c.InFlight = false;
                Unsafe.CopyBlockUnaligned((byte*)host + offset, c.Pointer, (uint)length);
            }
        }
    }

    /// <summary>The next chunk in turn, once its previous copy has finished.</summary>
    private Chunk Take()
    {
        var chunk = _chunks[_next];
        _next = (_next + 1) % _chunks.Length;
        if (chunk.InFlight)
        {
            chunk.Done.Synchronize();
            chunk.InFlight = false;
        }
        return chunk;
    }

    public void Dispose()
    {
        foreach (var chunk in _chunks)
        {
            if (chunk.InFlight) chunk.Done.Synchronize();
            chunk.Done.Dispose();
            chunk.Memory.Dispose();
        }
        // copies out of the ring may still be queued: wait for each before the pinned memory goes
        _uploads.RetireAll(_retired);
        foreach (var e in _retired) e.Synchronize();
        Recycle();
        foreach (var e in _idleEvents) e.Dispose();
        _idleEvents.Clear();
        _ringMemory.Dispose();
    }
}
