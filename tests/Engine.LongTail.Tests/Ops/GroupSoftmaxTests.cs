// The fused segmented softmax of BAGS (LongTailOps.GroupSoftmax) against its double reference, forward and
// backward, with groups of size one, a single group spanning the whole row, odd sizes, empty batches, poisoned
// outputs and LVIS width; plus the fused-op error messages.
using Engine.LongTail.Reference;

namespace Engine.LongTail.Tests.Ops;

public class GroupSoftmaxTests
{
    public static TheoryData<long[], bool> Layouts => new()
    {
        { new long[] { 0, 1, 2, 3 }, false },          // every group of size one
        { new long[] { 0, 1, 2, 3 }, true },
        { new long[] { 0, 17 }, false },               // one group spanning the row
        { new long[] { 0, 17 }, true },
        { new long[] { 0, 2, 3, 10, 11, 16 }, false }, // mixed, with a size-one group between others
        { new long[] { 0, 2, 3, 10, 11, 16 }, true },
        { new long[] { 0, 2, 203, 615, 950, 1209 }, true }, // LVIS v1 BAGS layout: C + 6 = 1209
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void ForwardAndBackwardMatchReference(long[] offsets, bool log)
    {
        var g = TestUtil.Fresh(out var seed);
        var k = (int)offsets[^1];
        foreach (var n in new[] { 0, 1, 7 })
        {
            var x = TestUtil.Logits(g, n, k, -30, 30);
            var u = TestUtil.Uniform(g, n * k, -1, 1);
            using var scope = DisposeScope.Begin();
            var xt = TestUtil.Float(x, n, k).RequireGrad();
            var off = Tensor.From(offsets, offsets.Length);
            var y = LongTailOps.GroupSoftmax(xt, off, log);
            // float32: exp/log of max-subtracted values; within a few ulps of 1 for probabilities, of |x| for log
            TestUtil.AssertClose(SoftmaxLossReference.GroupSoftmax(x, n, k, offsets, log), y.ToDoubleArray(), $"forward n={n}", seed, 1e-5, 1e-5);
            y.Backward(TestUtil.Float(u, n, k));
            TestUtil.AssertClose(SoftmaxLossReference.GroupSoftmaxBackward(x, n, k, offsets, log, u), xt.Grad!.ToDoubleArray(), $"backward n={n}", seed, 1e-5, 1e-4);
        }
    }

    [Fact]
    public void NonContiguousInputAndBadOffsets()
    {
        var g = TestUtil.Fresh(out var seed);
        long[] offsets = [0, 3, 5];
        var x = TestUtil.Logits(g, 5, 6);
        using var stored = TestUtil.Float(x, 5, 6);
        using var wide = stored.Narrow(1, 0, 5); // rows of 5 inside rows of 6: not contiguous
        Assert.False(wide.IsContiguous);
        using var off = Tensor.From(offsets, 3);
        using var y = LongTailOps.GroupSoftmax(wide, off);
        var expected = SoftmaxLossReference.GroupSoftmax(Enumerable.Range(0, 25).Select(e => x[e / 5 * 6 + e % 5]).ToArray(), 5, 5, offsets, false);
        TestUtil.AssertClose(expected, y.ToDoubleArray(), "strided input", seed, 1e-6, 1e-5);

        using var empty = Tensor.From(new long[] { 0, 3, 3, 5 }, 4);
        var e = Assert.Throws<ArgumentException>(() => LongTailOps.GroupSoftmax(wide, empty));
        Assert.Contains("rise strictly", e.Message);
        using var shortOffsets = Tensor.From(new long[] { 0, 4 }, 2);
        Assert.Throws<ArgumentException>(() => LongTailOps.GroupSoftmax(wide, shortOffsets));
    }
}
