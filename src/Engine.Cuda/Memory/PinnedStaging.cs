// Page-locked host buffers through which the CUDA backend moves tensors between host and device. A copy
// from pageable memory (a managed array) cannot be asynchronous, and the caller's memory may be gone once
// the call returns; so uploads are copied into a pinned chunk and queued from there (cuMemcpyHtoDAsync),
// and the host waits only when it needs a chunk whose previous copy is still in flight. Downloads are
// queued into pinned chunks and waited for, since the caller reads the data on return: that wait is the
// one host synchronization a copy to the host needs. Chunks alternate, so copying one chunk on the host
// overlaps the transfer of the next.
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

    /// <param name="chunkBytes">size of one pinned chunk; a transfer larger than this goes through several.</param>
    /// <param name="chunkCount">number of chunks used in turn (2: double buffering).</param>
    public PinnedStaging(CudaDevice device, CudaStream stream, int chunkBytes = 8 << 20, int chunkCount = 2)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 4096);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkCount, 1);
        Device = device;
        Stream = stream;
        ChunkBytes = chunkBytes;
        device.MakeCurrent();
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
            for (long done = 0; done < bytes; done += ChunkBytes)
            {
                var n = (int)Math.Min(ChunkBytes, bytes - done);
                var chunk = Take();
                Unsafe.CopyBlockUnaligned(chunk.Pointer, (byte*)host + done, (uint)n);
                CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync(destination + (ulong)done, chunk.Pointer, (nuint)n, Stream.Handle),
                                 nameof(CudaDriver.cuMemcpyHtoDAsync), $"{n} bytes");
                chunk.Done.Record(Stream);
                chunk.InFlight = true;
            }
        }
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
    }
}
