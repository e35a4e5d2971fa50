// Tests of the transforms: the resize-size rule on worked cases, exact box/polygon scaling, flip twice =
// identity, a filled rectangle staying under its box through resize + flip, clipping and dropping of
// degenerate boxes, normalization values in both channel orders, and padding to a multiple of 32.
using Engine.Data.Imaging;
using Engine.Data.Records;
using Engine.Data.Transforms;

namespace Engine.Data.Tests.Transforms;

public class TransformTests
{
    private static Sample MakeSample(Image image, params InstanceAnnotation[] instances) =>
        Sample.FromRecord(new DatasetRecord(1, "in-memory.jpg", image.Height, image.Width, instances), image);

    private static InstanceAnnotation Box(int cls, float x1, float y1, float x2, float y2) =>
        new(cls, [x1, y1, x2, y2], [[x1, y1, x2, y1, x2, y2, x1, y2]]);

    [Theory]
    // (h, w, short, max) → (h', w'):
    [InlineData(480, 640, 800, 1333, 800, 1067)]   // 800/480 = 5/3; 640·5/3 = 1066.67 → 1067
    [InlineData(100, 1000, 800, 1333, 133, 1333)]  // 1000·8 > 1333 → s = 1.333: 100·1.333 = 133.3 → 133
    [InlineData(160, 160, 128, 1333, 128, 128)]
    [InlineData(333, 500, 600, 1000, 600, 901)]    // 500·600/333 = 900.9 → 901
    [InlineData(300, 200, 100, 120, 120, 80)]      // long side capped: s = 120/300 = 0.4
    public void OutputSizeFollowsTheShortestEdgeRule(int h, int w, int shortEdge, int max, int eh, int ew) =>
        Assert.Equal((eh, ew), ResizeShortestEdge.OutputSize(h, w, shortEdge, max));

    [Fact]
    public void ResizeScalesBoxesAndPolygonsExactly()
    {
        var g = TestSupport.Fresh(out var seed);
        var image = TestSupport.NoiseImage(g, 50, 30);
        var sample = MakeSample(image, Box(2, 3.5f, 4.25f, 40, 29), Box(0, 0, 0, 50, 30));
        var resized = new ResizeShortestEdge([45], 1000).Apply(sample, g);
        Assert.Equal((75, 45), (resized.Image.Width, resized.Image.Height)); // scale 1.5 exactly
        Assert.Equal([5.25f, 6.375f, 60f, 43.5f], resized.Instances[0].BoxXyxy);
        Assert.Equal([0f, 0f, 75f, 45f], resized.Instances[1].BoxXyxy);
        Assert.Equal([5.25f, 6.375f, 60f, 6.375f, 60f, 43.5f, 5.25f, 43.5f], resized.Instances[0].Polygons[0]);
        Assert.Equal(2, resized.Instances[0].CategoryIndex);
        // The record's annotations are untouched.
        Assert.Equal([3.5f, 4.25f, 40f, 29f], sample.Record.Instances[0].BoxXyxy);

        // With non-uniform rounding each axis scales by its own ratio.
        var odd = new ResizeShortestEdge([17], 1000).Apply(sample, g);
        Assert.Equal((28, 17), (odd.Image.Width, odd.Image.Height)); // 50·17/30 = 28.33 → 28
        Assert.Equal(40f * (28f / 50f), odd.Instances[0].BoxXyxy[2], 5);
        Assert.Equal(29f * (17f / 30f), odd.Instances[0].BoxXyxy[3], 5);
        _ = seed;
    }

    [Fact]
    public void ResizeDrawsItsSizeFromTheList()
    {
        var image = Image.Create(40, 20);
        var sizes = new HashSet<int>();
        for (ulong s = 0; s < 64; s++)
            sizes.Add(new ResizeShortestEdge([10, 20, 30], 1000).Apply(MakeSample(image), new Generator(s)).Image.Height);
        Assert.Equal([10, 20, 30], sizes.Order());
    }

    [Fact]
    public void FlipTwiceIsTheIdentity()
    {
        var g = TestSupport.Fresh(out _);
        var image = TestSupport.NoiseImage(g, 23, 11);
        var sample = MakeSample(image, Box(1, 2, 3, 10, 9), Box(4, 0, 0, 23, 11));
        var once = RandomHorizontalFlip.Flip(sample);
        Assert.Equal([13f, 3f, 21f, 9f], once.Instances[0].BoxXyxy); // x1' = 23 − 10, x2' = 23 − 2
        Assert.Equal(image[5, 0, 1], once.Image[5, 22, 1]);
        var twice = RandomHorizontalFlip.Flip(once);
        Assert.Equal(image.Data, twice.Image.Data);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(sample.Instances[i].BoxXyxy, twice.Instances[i].BoxXyxy);
            Assert.Equal(sample.Instances[i].Polygons[0], twice.Instances[i].Polygons[0]);
        }
    }

    [Fact]
    public void FlipProbabilityIsRespected()
    {
        var g = TestSupport.Fresh(out var seed);
        var sample = MakeSample(Image.Create(4, 4), Box(0, 0, 0, 1, 1));
        var flip = new RandomHorizontalFlip(0.3);
        var flipped = 0;
        const int n = 4000;
        for (var i = 0; i < n; i++)
            if (flip.Apply(sample, g).Instances[0].BoxXyxy[0] == 3) flipped++;
        // Binomial(4000, 0.3): σ ≈ 29; 5σ ≈ 145.
        Assert.InRange(flipped, 0.3 * n - 145, 0.3 * n + 145);
        Assert.Same(sample, new RandomHorizontalFlip(0).Apply(sample, g));
        _ = seed;
    }

    [Fact]
    public void FilledRectangleStaysUnderItsBoxAfterResizeAndFlip()
    {
        // A white rectangle covering pixels [20, 50) × [10, 40) of a black 100×60 image, annotated with exactly that box.
        var image = Image.Create(100, 60);
        for (var y = 10; y < 40; y++)
            for (var x = 20; x < 50; x++)
                for (var c = 0; c < 3; c++) image[y, x, c] = 255;
        var sample = MakeSample(image, Box(0, 20, 10, 50, 40));
        var pipeline = new TransformPipeline([new ResizeShortestEdge([90], 1000), new RandomHorizontalFlip(1)]);
        var result = pipeline.Apply(sample, new Generator(3));
        Assert.Equal((150, 90), (result.Image.Width, result.Image.Height));
        var box = result.Instances[0].BoxXyxy;
        Assert.Equal([75f, 15f, 120f, 60f], box); // x: 150 − 1.5·50 = 75, 150 − 1.5·20 = 120

        // Pixels more than one pixel inside the box are white, more than one outside black (bilinear blurs the edge by ≤ 1 px).
        double sx = 0, sy = 0, mass = 0;
        for (var y = 0; y < 90; y++)
            for (var x = 0; x < 150; x++)
            {
                var v = result.Image[y, x, 0];
                var inside = x >= box[0] + 1 && x + 1 <= box[2] - 1 && y >= box[1] + 1 && y + 1 <= box[3] - 1;
                var outside = x + 1 <= box[0] - 1 || x >= box[2] + 1 || y + 1 <= box[1] - 1 || y >= box[3] + 1;
                if (inside) Assert.True(v == 255, $"pixel ({x}, {y}) inside the box is {v}");
                if (outside) Assert.True(v == 0, $"pixel ({x}, {y}) outside the box is {v}");
                sx += v * (x + 0.5);
                sy += v * (y + 0.5);
                mass += v;
            }
        // The bright mass is centred on the box centre (97.5, 37.5) to within a tenth of a pixel.
        Assert.Equal(0.5 * (box[0] + box[2]), sx / mass, 0.1);
        Assert.Equal(0.5 * (box[1] + box[3]), sy / mass, 0.1);
    }

    [Fact]
    public void BoxesAreClippedAndDegenerateOnesDropped()
    {
        var sample = MakeSample(Image.Create(20, 10),
            Box(0, -5, -2, 8, 4),          // clipped to (0, 0, 8, 4)
            Box(1, 25, 2, 30, 6),          // entirely right of the image → zero width → dropped
            Box(2, 3, 3, 3.0005f, 8),      // width 5e-4 < 1e-3 → dropped
            Box(3, 3, 3, 3.01f, 8),        // width 1e-2 → kept
            new InstanceAnnotation(4, [float.NaN, 0, 5, 5], []));
        var result = new TransformPipeline([]).Apply(sample, new Generator(1));
        Assert.Equal([0, 3], result.Instances.Select(i => i.CategoryIndex));
        Assert.Equal([0f, 0f, 8f, 4f], result.Instances[0].BoxXyxy);
    }

    [Fact]
    public void NormalizeComputesPerChannelValuesInEitherOrder()
    {
        var g = TestSupport.Fresh(out var seed);
        var rgb = TestSupport.NoiseImage(g, 5, 3);
        foreach (var norm in new[] { Normalize.Detectron2Msra, Normalize.TorchVision, new Normalize(PixelOrder.Rgb, [1, 2, 3], [2, 4, 8]) })
            foreach (var source in new[] { rgb, rgb.WithOrder(PixelOrder.Bgr) })
            {
                var dst = new float[3 * 4 * 8];
                norm.WriteChw(source, dst, dstWidth: 8, dstPlane: 4 * 8);
                for (var c = 0; c < 3; c++)
                    for (var y = 0; y < 3; y++)
                        for (var x = 0; x < 5; x++)
                        {
                            // Channel c of the model's order is RGB channel c (RGB) or 2 − c (BGR).
                            var rgbChannel = norm.Order == PixelOrder.Rgb ? c : 2 - c;
                            var expected = (rgb[y, x, rgbChannel] - norm.Mean[c]) / norm.Std[c];
                            var actual = dst[c * 32 + y * 8 + x];
                            Assert.True(Math.Abs(actual - expected) <= 1e-4 + 1e-6 * Math.Abs(expected),
                                $"{norm.Order} from {source.Order}: ({c}, {y}, {x}) = {actual}, expected {expected} (seed {seed})");
                        }
            }
        Assert.Throws<ArgumentException>(() => new Normalize(PixelOrder.Rgb, [1, 2], [1, 1, 1]));
        Assert.Throws<ArgumentException>(() => new Normalize(PixelOrder.Rgb, [1, 2, 3], [1, 0, 1]));
    }

    [Fact]
    public void CollatePadsToAMultipleOf32AndStacksTargets()
    {
        var g = TestSupport.Fresh(out var seed);
        var a = MakeSample(TestSupport.NoiseImage(g, 65, 33), Box(3, 1, 2, 30, 20), Box(1, 5, 5, 9, 9));
        var b = MakeSample(TestSupport.NoiseImage(g, 20, 40));
        var norm = new Normalize(PixelOrder.Rgb, [10, 20, 30], [2, 2, 2]);
        using var batch = ImageBatch.Collate([a, b], norm, 32, index: 7);
        Assert.Equal([2, 3, 64, 96], batch.Images.ShapeArray()); // max h 40 → 64, max w 65 → 96
        Assert.Equal([(33, 65), (40, 20)], batch.ImageSizes);
        Assert.Equal(7, batch.Index);
        var pixels = batch.Images.ToFloatArray();
        for (var n = 0; n < 2; n++)
        {
            var img = n == 0 ? a.Image : b.Image;
            for (var c = 0; c < 3; c++)
                for (var y = 0; y < 64; y++)
                    for (var x = 0; x < 96; x++)
                    {
                        var v = pixels[((n * 3 + c) * 64 + y) * 96 + x];
                        var expected = y < img.Height && x < img.Width ? (img[y, x, c] - norm.Mean[c]) / 2.0 : 0.0;
                        Assert.True(Math.Abs(v - expected) <= 1e-4, $"image {n} ({c}, {y}, {x}) = {v}, expected {expected} (seed {seed})");
                    }
        }
        Assert.Equal([2, 4], batch.Boxes[0].ShapeArray());
        Assert.Equal([1f, 2, 30, 20, 5, 5, 9, 9], batch.Boxes[0].ToFloatArray());
        Assert.Equal([3L, 1], batch.Classes[0].ToInt64Array());
        Assert.Equal([0, 4], batch.Boxes[1].ShapeArray());
        Assert.Equal([0], batch.Classes[1].ShapeArray());

        using var unpadded = ImageBatch.Collate([b], norm, 1);
        Assert.Equal([1, 3, 40, 20], unpadded.Images.ShapeArray());
    }

    [Fact]
    public void DecodedSizeMustMatchTheRecord()
    {
        var record = new DatasetRecord(9, "a.jpg", 10, 20, []);
        var e = Assert.Throws<InvalidDataException>(() => Sample.FromRecord(record, Image.Create(20, 11)));
        Assert.Contains("a.jpg", e.Message);
    }
}
