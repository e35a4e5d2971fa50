// The allocator's bookkeeping without a GPU: allocated and peak across allocations and frees, peak reset
// per phase, concurrent updates from many threads (frees come from finalizers too), and a free that would
// make the total negative (a double free) is refused with a message.
using Engine.Cuda.Memory;

namespace Engine.Cuda.Tests.Memory;

public sealed class AllocatorStatsTests
{
    [Fact]
    public void AllocatedAndPeakFollowAllocationsAndFrees()
    {
        var stats = new AllocatorStats();
        stats.OnAllocate(100);
        stats.OnAllocate(50);
        Assert.Equal((150, 150), (stats.Allocated, stats.Peak));
        stats.OnFree(100);
        Assert.Equal((50, 150), (stats.Allocated, stats.Peak));
        stats.OnAllocate(30);
        Assert.Equal((80, 150), (stats.Allocated, stats.Peak));
        stats.ResetPeak();
        Assert.Equal(80, stats.Peak);
        stats.OnAllocate(0);
        Assert.Equal((4L, 1L), (stats.Allocations, stats.Frees));
    }

    [Fact]
    public void ConcurrentUpdatesKeepExactTotalsAndTheTruePeak()
    {
        var random = new SeededRandom();
        var sizes = Enumerable.Range(0, 4000).Select(_ => (long)random.Random.Next(1, 1 << 20)).ToArray();
        var stats = new AllocatorStats();
        Parallel.For(0, sizes.Length, i =>
        {
            stats.OnAllocate(sizes[i]);
            stats.OnFree(sizes[i]);
        });
        Assert.Equal(0, stats.Allocated);
        Assert.Equal(sizes.Length, stats.Allocations);
        Assert.Equal(sizes.Length, stats.Frees);
        // the peak is at least the largest single block and at most everything at once
        Assert.InRange(stats.Peak, sizes.Max(), sizes.Sum());
        Parallel.For(0, sizes.Length, i => stats.OnAllocate(sizes[i]));
        Assert.Equal(sizes.Sum(), stats.Allocated);
        Assert.Equal(sizes.Sum(), stats.Peak);
    }

    [Fact]
    public void DoubleFreeIsRefusedWithAMessage()
    {
        var stats = new AllocatorStats();
        stats.OnAllocate(10);
        stats.OnFree(10);
        var e = Assert.Throws<InvalidOperationException>(() => stats.OnFree(10));
        Assert.Contains("freed twice", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => stats.OnAllocate(-1));
    }

    [Fact]
    public void StatsPrintInReadableUnits()
    {
        Assert.Equal("512 B", MemoryStats.Format(512));
        Assert.Equal("1.5 KiB", MemoryStats.Format(1536));
        Assert.Equal("32.0 MiB", MemoryStats.Format(32L << 20));
        Assert.Equal("2.00 GiB", MemoryStats.Format(2L << 30));
        Assert.Contains("allocated 1.0 KiB, reserved 2.0 KiB, peak 1.5 KiB", new MemoryStats(1024, 2048, 1536, 2048, 3, 1).ToString());
    }
}
