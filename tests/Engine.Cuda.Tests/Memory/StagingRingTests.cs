// The upload ring's bookkeeping without a GPU, against a plain model of the staging bytes: each token is a simulated
// transfer that completes in stream order at a random later time. A reservation must never hand out bytes a
// transfer still in flight reads (after waiting for the token it returns), must make the caller wait only when it
// lands on such bytes, and the ring must give back every token exactly once.
using Engine.Cuda.Memory;

namespace Engine.Cuda.Tests.Memory;

public sealed class StagingRingTests
{
    private sealed class Transfer(int id, long start, long end)
    {
        public int Id { get; } = id;
        public long Start { get; } = start;
        public long End { get; } = end;
        public bool Done { get; set; }
        public override string ToString() => $"#{Id} [{Start}, {End})";
    }

    [Theory]
    [InlineData(64, 1, 16)]
    [InlineData(1000, 1, 1000)]
    [InlineData(4096, 100, 900)]
    public void ReservationsNeverOverlapTransfersInFlightAndWaitOnlyWhenTheyMust(long capacity, int minBytes, int maxBytes)
    {
        var random = new SeededRandom();
        var ring = new StagingRing<Transfer>(capacity);
        var all = new List<Transfer>();
        var returned = new HashSet<int>();
        var retired = new List<Transfer>();
        var completedUpTo = 0; // transfers complete in stream order: all[0 .. completedUpTo) are done
        var waits = 0;
        for (var i = 0; i < 3000; i++)
        {
            // the stream moves on by a random amount
            completedUpTo = Math.Min(all.Count, completedUpTo + random.Random.Next(0, 3));
            for (var k = 0; k < completedUpTo; k++) all[k].Done = true;
            if (random.Random.Next(4) == 0)
            {
                retired.Clear();
                ring.RetireCompleted(t => t.Done, retired);
                Assert.All(retired, t => Assert.True(t.Done, $"seed {random.Seed}: {t} retired before it completed"));
                foreach (var t in retired) Assert.True(returned.Add(t.Id), $"seed {random.Seed}: {t} returned twice");
            }

            var bytes = random.Random.Next(minBytes, maxBytes + 1);
            var head = all.Count == 0 ? 0 : all[^1].End;
            var wraps = head + bytes > capacity;
            retired.Clear();
            var start = ring.Reserve(bytes, out var waitFor, retired);
            Assert.True(start >= 0 && start + bytes <= capacity, $"seed {random.Seed}: [{start}, {start + bytes}) outside the ring of {capacity}");
            foreach (var t in retired) Assert.True(returned.Add(t.Id), $"seed {random.Seed}: {t} returned twice");
            if (waitFor is not null)
            {
                Assert.Same(retired[^1], waitFor);
                // waiting for a transfer completes it and every one queued before it
                for (var k = 0; k <= waitFor.Id; k++) all[k].Done = true;
                completedUpTo = Math.Max(completedUpTo, waitFor.Id + 1);
                waits++;
            }
            var live = all.Where(t => !t.Done).ToList();
            foreach (var t in live)
                Assert.False(t.Start < start + bytes && t.End > start, $"seed {random.Seed}: [{start}, {start + bytes}) overlaps {t}, still in flight");
            // only transfers on the claimed bytes are taken back: the new ones, or on a wrap also the skipped tail [head, capacity)
            foreach (var t in retired)
                Assert.True(t.Start < start + bytes && t.End > start || wraps && t.End > head,
                            $"seed {random.Seed}: {t} was taken back for [{start}, {start + bytes}) (head {head}, wrap {wraps})");
            var transfer = new Transfer(all.Count, start, start + bytes);
            all.Add(transfer);
            ring.Commit(transfer);
        }
        // everything still held comes back once
        retired.Clear();
        ring.RetireAll(retired);
        foreach (var t in retired) Assert.True(returned.Add(t.Id), $"seed {random.Seed}: {t} returned twice");
        Assert.Equal(all.Count, returned.Count);
        Assert.Equal(0, ring.InFlight);
        Assert.True(waits > 0 || completedUpTo == all.Count, $"seed {random.Seed}: the ring never came round");
    }

    [Fact]
    public void ARingLargerThanTheUploadsBetweenWaitsNeverMakesTheHostWait()
    {
        // 20 small uploads per step, the step ends with a read that completes everything: a 1 MiB ring never waits.
        var ring = new StagingRing<object>(1 << 20);
        var retired = new List<object>();
        var tokens = new List<object>();
        for (var step = 0; step < 200; step++)
        {
            for (var u = 0; u < 20; u++)
            {
                ring.Reserve(3000, out var waitFor, retired);
                Assert.Null(waitFor);
                var token = new object();
                tokens.Add(token);
                ring.Commit(token);
            }
            ring.RetireCompleted(_ => true, retired);
            Assert.Equal(0, ring.InFlight);
        }
        Assert.Equal(tokens, retired);
    }

    [Fact]
    public void MisuseIsRefusedWithTheRule()
    {
        var ring = new StagingRing<object>(100);
        var retired = new List<object>();
        Assert.Throws<ArgumentOutOfRangeException>(() => ring.Reserve(0, out _, retired));
        var big = Assert.Throws<ArgumentOutOfRangeException>(() => ring.Reserve(101, out _, retired));
        Assert.Contains("split larger copies", big.Message);
        Assert.Throws<InvalidOperationException>(() => ring.Commit(new object()));
        ring.Reserve(10, out _, retired);
        var twice = Assert.Throws<InvalidOperationException>(() => ring.Reserve(10, out _, retired));
        Assert.Contains("not committed", twice.Message);
        // a transfer that could not be queued gives its bytes back: the next reservation starts where it did
        ring.Cancel();
        Assert.Equal(0, ring.Reserve(10, out _, retired));
        ring.Commit(new object());
        Assert.Equal(10, ring.Reserve(5, out _, retired));
    }
}
