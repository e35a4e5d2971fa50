// Tests of Synthetic/LongTail.cs: the default plan (40 classes, 2000 images) fills the rare, common and
// frequent buckets 13 / 14 / 13; class assignment realizes the counts exactly with 1..6 distinct
// classes per image; small datasets degrade as documented.
using Engine.Data.Synthetic;

namespace Engine.Data.Tests.Synthetic;

public class LongTailTests
{
    [Fact]
    public void DefaultPlanPopulatesAllThreeBuckets()
    {
        var g = TestSupport.Fresh(out var seed);
        var counts = LongTail.ImageCounts(40, 2000, 6, g);
        var buckets = counts.GroupBy(LongTail.Frequency).ToDictionary(b => b.Key, b => b.Count());
        Assert.True(buckets.GetValueOrDefault('r') == 13 && buckets.GetValueOrDefault('c') == 14 && buckets.GetValueOrDefault('f') == 13,
            $"buckets r/c/f = {buckets.GetValueOrDefault('r')}/{buckets.GetValueOrDefault('c')}/{buckets.GetValueOrDefault('f')} (seed {seed})");
        Assert.Equal(1, counts.Min());
        Assert.Equal(800, counts.Max()); // 0.4 · N
        Assert.Contains(10, counts);
        Assert.Contains(11, counts);
        Assert.Contains(100, counts);
        Assert.Contains(101, counts);
    }

    [Theory]
    [InlineData(40, 2000, 6)]
    [InlineData(6, 40, 6)]
    [InlineData(7, 15, 3)]
    [InlineData(1, 5, 6)]
    [InlineData(3, 200, 1)]
    public void AssignmentRealizesTheCountsExactly(int classes, int images, int maxObjects)
    {
        var g = TestSupport.Fresh(out var seed);
        var counts = LongTail.ImageCounts(classes, images, maxObjects, g);
        Assert.All(counts, c => Assert.InRange(c, 1, images));
        var assigned = LongTail.AssignClasses(counts, images, maxObjects, g);
        Assert.Equal(images, assigned.Length);
        foreach (var present in assigned)
        {
            Assert.InRange(present.Length, 1, Math.Min(maxObjects, classes));
            Assert.Equal(present.Length, present.Distinct().Count());
        }
        for (var c = 0; c < classes; c++)
            Assert.True(counts[c] == assigned.Count(p => p.Contains(c)), $"class {c}: wanted {counts[c]} images (seed {seed})");
    }

    [Fact]
    public void FrequencyBucketBoundariesAreLvis()
    {
        Assert.Equal('r', LongTail.Frequency(1));
        Assert.Equal('r', LongTail.Frequency(10));
        Assert.Equal('c', LongTail.Frequency(11));
        Assert.Equal('c', LongTail.Frequency(100));
        Assert.Equal('f', LongTail.Frequency(101));
    }

    [Fact]
    public void UnrealizableCountsAreRejected()
    {
        var g = new Generator(1);
        Assert.Throws<ArgumentException>(() => LongTail.AssignClasses([1, 1], 5, 6, g));     // 2 objects for 5 images
        Assert.Throws<ArgumentException>(() => LongTail.AssignClasses([5, 5, 5], 5, 2, g));  // 15 > 5 · 2
    }
}
