// The bookkeeping of the device allocator, kept apart from the driver so it can be tested without a GPU:
// bytes handed out and not yet returned (Allocated), the most that were ever out at once (Peak, resettable
// per phase, e.g. per training step), and the counts of allocations and frees. Reserved, the memory the
// driver's pool holds including cached free blocks, comes from the pool itself and is joined in
// MemoryStats. Thread-safe: tensors are freed from any thread, finalizers included.
namespace Engine.Cuda.Memory;

/// <summary>One reading of the allocator: Allocated ≤ Reserved (the pool rounds and caches), Peak ≥ Allocated.</summary>
public readonly record struct MemoryStats(long Allocated, long Reserved, long Peak, long ReservedPeak, long Allocations, long Frees)
{
    public override string ToString() =>
        $"allocated {Format(Allocated)}, reserved {Format(Reserved)}, peak {Format(Peak)} ({Allocations} allocations, {Frees} frees)";

    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };
}

public sealed class AllocatorStats
{
    private long _allocated;
    private long _peak;
    private long _allocations;
    private long _frees;

    public long Allocated => Interlocked.Read(ref _allocated);
    public long Peak => Interlocked.Read(ref _peak);
    public long Allocations => Interlocked.Read(ref _allocations);
    public long Frees => Interlocked.Read(ref _frees);

    public void OnAllocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Interlocked.Increment(ref _allocations);
        var now = Interlocked.Add(ref _allocated, bytes);
        // Raise the peak to at least `now`; another thread may raise it further in between.
        var peak = Interlocked.Read(ref _peak);
        while (now > peak)
        {
            var seen = Interlocked.CompareExchange(ref _peak, now, peak);
            if (seen == peak) break;
            peak = seen;
        }
    }

    public void OnFree(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Interlocked.Increment(ref _frees);
        if (Interlocked.Add(ref _allocated, -bytes) < 0)
            throw new InvalidOperationException(
                $"AllocatorStats: freeing {bytes} bytes leaves a negative allocated total; a block was freed twice or with the wrong size.");
    }

    /// <summary>Starts a new peak from what is allocated now (e.g. at the start of a training step).</summary>
    public void ResetPeak() => Interlocked.Exchange(ref _peak, Allocated);
}
