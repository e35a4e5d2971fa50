// Merge and the IoU matrix against pixel counts on dense grids, with fresh random masks; COCO's rules
// worked by hand: crowd union, -1 for masks of different sizes only when their boxes overlap, and the
// early stop of the run walk on counts with empty runs.
using Engine.Lvis.Masks;

namespace Engine.Lvis.Tests.Masks;

public class MergeIouTests
{
    [Fact]
    public void Merge_MatchesDenseUnionAndIntersection()
    {
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        foreach (var (h, w) in MaskReference.Sizes)
            for (var trial = 0; trial < 30; trial++)
            {
                var n = rng.Next(1, 5);
                var masks = Enumerable.Range(0, n).Select(_ => MaskReference.RandomMask(rng, h, w)).ToArray();
                var rles = masks.Select(m => MaskApi.Encode(m, h, w)).ToArray();
                foreach (var intersect in new[] { false, true })
                {
                    var expected = new byte[h * w];
                    for (var i = 0; i < expected.Length; i++)
                        expected[i] = (byte)(intersect ? masks.All(m => m[i] == 1) ? 1 : 0 : masks.Any(m => m[i] == 1) ? 1 : 0);
                    // Merging encodings without empty runs gives the encoding of the result.
                    var merged = MaskApi.Merge(rles, intersect);
                    Assert.True(MaskApi.Encode(expected, h, w).Equals(merged),
                        $"seed {seed}, {h}x{w}, {n} masks, intersect={intersect}: got {merged}");
                }
            }
    }

    [Fact]
    public void Merge_WithEmptyRunsOnOneSide_DecodesToTheUnion()
    {
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        for (var trial = 0; trial < 200; trial++)
        {
            var (h, w) = (rng.Next(1, 10), rng.Next(1, 10));
            var a = MaskReference.RandomMask(rng, h, w);
            var b = MaskReference.RandomMask(rng, h, w);
            var withEmpty = new Rle(h, w, MaskReference.WithEmptyRunPairs(rng, MaskReference.EncodeDense(a)));
            var union = MaskApi.Merge([withEmpty, MaskApi.Encode(b, h, w)]);
            var expected = a.Zip(b, (p, q) => (byte)(p | q)).ToArray();
            MaskReference.EqualMasks(expected, union, $"seed {seed}, trial {trial}");
        }
    }

    [Fact]
    public void Merge_HandWorked()
    {
        // 3x2: A = (0,1),(0,2) -> runs [1, 2, 3]; B = (0,2),(1,0) -> runs [2, 2, 2].
        var a = new Rle(3, 2, [1, 2, 3]);
        var b = new Rle(3, 2, [2, 2, 2]);
        Assert.Equal(new Rle(3, 2, [1, 3, 2]), MaskApi.Merge([a, b]));
        Assert.Equal(new Rle(3, 2, [2, 1, 3]), MaskApi.Merge([a, b], intersect: true));
        Assert.Same(a, MaskApi.Merge([a]));
    }

    [Fact]
    public void Merge_RejectsBadInput()
    {
        Assert.Contains("no masks", Assert.Throws<ArgumentException>(() => MaskApi.Merge([])).Message);
        var e = Assert.Throws<ArgumentException>(() => MaskApi.Merge([new Rle(2, 3, [6]), new Rle(3, 2, [6])]));
        Assert.Contains("mask 1 is 3x2 but mask 0 is 2x3", e.Message);
        // Both lists hold empty runs at pixel 1: COCO's walk stops there (see Iou_EmptyRunsOnBothSides_StopTheWalk).
        e = Assert.Throws<ArgumentException>(() => MaskApi.Merge([new Rle(2, 2, [1, 0, 0, 1, 2]), new Rle(2, 2, [1, 0, 0, 3])]));
        Assert.Contains("empty runs at pixel 1", e.Message);
    }

    [Fact]
    public void Iou_MatchesDenseReference()
    {
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        foreach (var (h, w) in MaskReference.Sizes)
        {
            var nd = rng.Next(0, 9);
            var ng = rng.Next(0, 7);
            var dts = Enumerable.Range(0, nd).Select(_ => MaskReference.RandomMask(rng, h, w)).ToArray();
            var gts = Enumerable.Range(0, ng).Select(_ => MaskReference.RandomMask(rng, h, w)).ToArray();
            var crowd = Enumerable.Range(0, ng).Select(_ => rng.Next(3) == 0).ToArray();
            var iou = new double[nd * ng];
            iou.AsSpan().Fill(double.NaN);
            MaskApi.Iou(
                dts.Select(m => MaskApi.Encode(m, h, w)).ToArray(), gts.Select(m => MaskApi.Encode(m, h, w)).ToArray(), crowd, iou);
            for (var d = 0; d < nd; d++)
                for (var g = 0; g < ng; g++)
                {
                    // Ratios of the same two integers: the doubles must agree exactly.
                    var expected = MaskReference.IouDense(dts[d], gts[g], crowd[g]);
                    Assert.True(expected.Equals(iou[d * ng + g]),
                        $"seed {seed}, {h}x{w}, dt {d}, gt {g} (crowd {crowd[g]}): {iou[d * ng + g]} vs {expected}");
                }
        }
    }

    [Fact]
    public void Iou_BlobsOnLargerImages_MatchDenseReference()
    {
        // Few runs per column and partial box overlaps: the case the column-window search is for.
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        const int h = 97, w = 131;
        var masks = new byte[24][];
        for (var i = 0; i < masks.Length; i++)
        {
            masks[i] = new byte[h * w];
            int cx = rng.Next(w), cy = rng.Next(h), rx = rng.Next(1, 40), ry = rng.Next(1, 40);
            for (var x = 0; x < w; x++)
                for (var y = 0; y < h; y++)
                    if ((double)(x - cx) * (x - cx) / (rx * rx) + (double)(y - cy) * (y - cy) / (ry * ry) <= 1)
                        masks[i][x * h + y] = 1;
        }
        var rles = masks.Select(m => MaskApi.Encode(m, h, w)).ToArray();
        var iou = new double[rles.Length * rles.Length];
        iou.AsSpan().Fill(double.NaN);
        MaskApi.Iou(rles, rles, [], iou);
        for (var d = 0; d < rles.Length; d++)
            for (var g = 0; g < rles.Length; g++)
                Assert.True(MaskReference.IouDense(masks[d], masks[g], false).Equals(iou[d * rles.Length + g]), $"seed {seed}, dt {d}, gt {g}");
    }

    [Fact]
    public void Iou_WithEmptyRunsOnOneSide_MatchesDenseReference()
    {
        // Empty runs in one list only: the full walk covers every pixel, and empty runs only widen the box,
        // so the result is still plain intersection over union.
        var seed = Random.Shared.Next();
        var rng = new Random(seed);
        for (var trial = 0; trial < 300; trial++)
        {
            var (h, w) = (rng.Next(1, 10), rng.Next(1, 10));
            var a = MaskReference.RandomMask(rng, h, w);
            var b = MaskReference.RandomMask(rng, h, w);
            var ra = new Rle(h, w, MaskReference.WithEmptyRunPairs(rng, MaskReference.EncodeDense(a)));
            var rb = MaskApi.Encode(b, h, w);
            var crowd = rng.Next(2) == 0;
            var context = $"seed {seed}, trial {trial}, {ra} with {rb}, crowd {crowd}";
            Assert.True(MaskReference.IouDense(a, b, crowd).Equals(MaskApi.Iou(ra, rb, crowd)),
                $"{context}, dt side: {MaskApi.Iou(ra, rb, crowd)} vs {MaskReference.IouDense(a, b, crowd)}");
            Assert.True(MaskReference.IouDense(b, a, crowd).Equals(MaskApi.Iou(rb, ra, crowd)),
                $"{context}, gt side: {MaskApi.Iou(rb, ra, crowd)} vs {MaskReference.IouDense(b, a, crowd)}");
        }
    }

    [Fact]
    public void Iou_CrowdRule_HandWorked()
    {
        // 4x4. dt = column 0 (4 pixels); gt = columns 0-1 (8 pixels). Intersection 4.
        var dt = MaskApi.Encode(MaskReference.MaskOf(4, 4, MaskReference.Block(0, 1, 0, 4)), 4, 4);
        var gt = MaskApi.Encode(MaskReference.MaskOf(4, 4, MaskReference.Block(0, 2, 0, 4)), 4, 4);
        var iou = new double[2];
        MaskApi.Iou([dt], [gt, gt], [false, true], iou);
        Assert.Equal(4.0 / 8.0, iou[0]);   // union 4 + 8 - 4 = 8
        Assert.Equal(4.0 / 4.0, iou[1]);   // crowd: union = area(dt) = 4
        // Crowd, the other way: dt = columns 0-1, gt = column 0: intersection 4 over area(dt) 8.
        Assert.Equal(0.5, MaskApi.Iou(gt, dt, isCrowd: true));
        // No intersection: 0, crowd or not.
        var far = MaskApi.Encode(MaskReference.MaskOf(4, 4, (3, 3)), 4, 4);
        Assert.Equal(0.0, MaskApi.Iou(far, dt, isCrowd: true));
    }

    [Fact]
    public void Iou_SizeMismatch_IsMinusOneOnlyWhereBoxesOverlap()
    {
        // COCO compares the boxes first and checks the sizes only for overlapping ones.
        var dt = MaskApi.Encode(MaskReference.MaskOf(4, 5, MaskReference.Block(0, 2, 0, 2)), 4, 5);
        var gtOverlapping = MaskApi.Encode(MaskReference.MaskOf(5, 4, MaskReference.Block(1, 3, 1, 3)), 5, 4);
        var gtApart = MaskApi.Encode(MaskReference.MaskOf(5, 4, MaskReference.Block(2, 4, 2, 4)), 5, 4);
        var iou = new double[2];
        iou.AsSpan().Fill(double.NaN);
        MaskApi.Iou([dt], [gtOverlapping, gtApart], [], iou);
        Assert.Equal(-1.0, iou[0]);
        Assert.Equal(0.0, iou[1]);
    }

    [Fact]
    public void Iou_EmptyRunsOnBothSides_StopTheWalk()
    {
        // 2x2. dt runs [1, 0, 0, 1, 2] = pixel 1 set; gt runs [1, 0, 0, 3] = pixels 1, 2, 3 set; true IoU 1/3.
        // COCO's walk: both first runs end at pixel 1, both cursors move to empty runs, and the walk stops
        // with intersection 0, so the IoU is 0. (Boxes: dt (0,0,1,2), gt (0,0,2,2), which overlap.)
        var dt = new Rle(2, 2, [1, 0, 0, 1, 2]);
        var gt = new Rle(2, 2, [1, 0, 0, 3]);
        Assert.Equal((0.0, 0.0, 1.0, 2.0), MaskApi.ToBox(dt));
        Assert.Equal((0.0, 0.0, 2.0, 2.0), MaskApi.ToBox(gt));
        Assert.Equal(0.0, MaskApi.Iou(dt, gt));
        // The same masks without empty runs.
        Assert.Equal(1.0 / 3.0, MaskApi.Iou(MaskApi.Encode(MaskApi.Decode(dt), 2, 2), MaskApi.Encode(MaskApi.Decode(gt), 2, 2)));
    }

    [Fact]
    public void Iou_EmptyLists_WriteNothing_AndBadShapesThrow()
    {
        var r = new Rle(2, 2, [4]);
        MaskApi.Iou([], [r], [], Span<double>.Empty);
        MaskApi.Iou([r], [], [], Span<double>.Empty);
        Assert.Contains("isCrowd has 1 entries for 2", Assert.Throws<ArgumentException>(() => MaskApi.Iou([r], [r, r], [true], new double[2])).Message);
        Assert.Contains("holds 3 values", Assert.Throws<ArgumentException>(() => MaskApi.Iou([r], [r, r], [], new double[3])).Message);
    }
}
