// Encode, decode, area and box of run-length encodings against the dense references, on fresh random
// masks of every size in MaskReference.Sizes, plus the Rle record's checks and COCO's box rule on
// counts with empty runs.
using Engine.Lvis.Masks;

namespace Engine.Lvis.Tests.Masks;

public class RleTests
{
    [Fact]
    public void EncodeDecodeAreaBox_MatchDenseReference()
    {
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        foreach (var (h, w) in MaskReference.Sizes)
            for (var trial = 0; trial < 40; trial++)
            {
                var mask = MaskReference.RandomMask(rng, h, w);
                var context = $"seed {seed}, {h}x{w}, trial {trial}";
                var rle = MaskApi.Encode(mask, h, w);
                Assert.True(MaskReference.EncodeDense(mask).AsSpan().SequenceEqual(rle.Counts), $"{context}: Encode gave {rle}");
                Assert.True(MaskApi.Decode(rle).AsSpan().SequenceEqual(mask), $"{context}: Decode(Encode(mask)) != mask");
                Assert.True(MaskReference.AreaDense(mask) == MaskApi.Area(rle), $"{context}: Area {MaskApi.Area(rle)}");
                var box = MaskApi.ToBox(rle);
                Assert.True(MaskReference.BoxDense(mask, h, w) == box, $"{context}: ToBox {box}, expected {MaskReference.BoxDense(mask, h, w)}");
            }
    }

    [Fact]
    public void Decode_CountsWithEmptyRuns_MatchesDenseReference()
    {
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        for (var trial = 0; trial < 200; trial++)
        {
            var (h, w) = (rng.Next(1, 12), rng.Next(1, 12));
            var mask = MaskReference.RandomMask(rng, h, w);
            var counts = MaskReference.WithEmptyRunPairs(rng, MaskReference.EncodeDense(mask));
            var rle = new Rle(h, w, counts);
            Assert.True(MaskApi.Decode(rle).AsSpan().SequenceEqual(MaskReference.DecodeDense(counts, h * w)), $"seed {seed}: {rle}");
            Assert.Equal(MaskReference.AreaDense(mask), MaskApi.Area(rle));
        }
    }

    [Fact]
    public void Encode_HandWorked()
    {
        // 2x3 image, column-major pixels (x*2 + y): column 0 = (0,1), column 1 = (1,1), column 2 = (0,0)
        // -> 0,1,1,1,0,0 -> runs: one 0, three 1s, two 0s.
        Assert.Equal(new Rle(2, 3, [1, 3, 2]), MaskApi.Encode([0, 1, 1, 1, 0, 0], 2, 3));
        // Pixel 0 set: the first run (of zeros) is empty.
        Assert.Equal(new Rle(1, 3, [0, 1, 2]), MaskApi.Encode([1, 0, 0], 1, 3));
        Assert.Equal(new Rle(1, 3, [0, 3]), MaskApi.Encode([1, 1, 1], 1, 3));
        Assert.Equal(new Rle(3, 1, [3]), MaskApi.Encode([0, 0, 0], 3, 1));
        // COCO encodes an empty image as the single run [0].
        Assert.Equal(new Rle(0, 4, [0]), MaskApi.Encode([], 0, 4));
    }

    [Fact]
    public void ToBox_HandWorked()
    {
        // 4x3 (H x W). Runs [5, 2, 5]: pixels 5 and 6 = (x=1, y=1) and (x=1, y=2) -> box x=1, y=1, w=1, h=2.
        Assert.Equal((1.0, 1.0, 1.0, 2.0), MaskApi.ToBox(new Rle(4, 3, [5, 2, 5])));
        // Runs [3, 2, 7]: pixels 3 = (0, 3) and 4 = (1, 0); the run spans two columns, so the box takes
        // the full height: x=0, y=0, w=2, h=4.
        Assert.Equal((0.0, 0.0, 2.0, 4.0), MaskApi.ToBox(new Rle(4, 3, [3, 2, 7])));
        // COCO's rule on an empty run of 1s: [3, 0, 9] reads the run as starting at pixel 3 = (0, 3) and
        // ending at pixel 3 - 1 = 2 = (0, 2), so the empty mask gets the box x=0, y=2, w=1, h=2.
        Assert.Equal((0.0, 2.0, 1.0, 2.0), MaskApi.ToBox(new Rle(4, 3, [3, 0, 9])));
        Assert.Equal(0, MaskApi.Area(new Rle(4, 3, [3, 0, 9])));
        // An empty run of 1s right after an empty first run ends at pixel 0 - 1, which wraps in COCO's unsigned
        // arithmetic to 2^32 - 1 = column 2^32 - 1 of a 1-row image; the width then wraps to
        // (2^32 - 1) - 0 + 1 = 0. So the (full) mask [0, 0, 0, 8] of a 1x8 image gets the box (0, 0, 0, 1).
        Assert.Equal((0.0, 0.0, 0.0, 1.0), MaskApi.ToBox(new Rle(1, 8, [0, 0, 0, 8])));
        Assert.Equal(0.0, MaskApi.Iou(new Rle(1, 8, [0, 0, 0, 8]), new Rle(1, 8, [0, 8])));
        Assert.Equal((0.0, 0.0, 0.0, 0.0), MaskApi.ToBox(new Rle(4, 3, [12])));
        Assert.Equal((0.0, 0.0, 3.0, 4.0), MaskApi.ToBox(new Rle(4, 3, [0, 12])));
    }

    [Fact]
    public void Rle_ChecksCountsAndSize()
    {
        var e = Assert.Throws<ArgumentException>(() => new Rle(2, 3, [1, 2]));
        Assert.Contains("sum to 3", e.Message);
        Assert.Contains("2x3 = 6", e.Message);
        Assert.Throws<ArgumentException>(() => new Rle(-1, 3, [0]));
        Assert.Throws<ArgumentException>(() => new Rle(3, -2, [0]));
        Assert.Throws<ArgumentException>(() => new Rle(65536, 65536, [0]));
        Assert.Throws<ArgumentNullException>(() => new Rle(1, 1, null!));
        Assert.Equal(new Rle(0, 0, []), new Rle(0, 0, []));
    }

    [Fact]
    public void Rle_HasValueEquality()
    {
        var a = new Rle(2, 2, [1, 2, 1]);
        var b = new Rle(2, 2, [1, 2, 1]);
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, new Rle(2, 2, [1, 1, 2]));
        Assert.NotEqual(a, new Rle(1, 4, [1, 2, 1]));
    }

    [Fact]
    public void Encode_RejectsBadInput()
    {
        var e = Assert.Throws<ArgumentException>(() => MaskApi.Encode([0, 2, 1, 0], 2, 2));
        Assert.Contains("mask byte 1", e.Message);
        e = Assert.Throws<ArgumentException>(() => MaskApi.Encode([0, 1, 1], 2, 2));
        Assert.Contains("3 bytes", e.Message);
        Assert.Throws<ArgumentException>(() => MaskApi.Encode([], -1, 2));
    }
}
