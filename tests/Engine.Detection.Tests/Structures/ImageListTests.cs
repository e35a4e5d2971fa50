// Tests of the padded image batch: sizes rounded up to the divisibility, images at the top-left, padding
// filled, per-image sizes kept, and bad inputs rejected with a message.
using Engine.Tests;

namespace Engine.Detection.Tests.Structures;

public class ImageListTests
{
    [Fact]
    public void PadsToTheDivisibilityAndKeepsSizes()
    {
        var g = TestUtil.Fresh(out var seed);
        using var a = Tensor.Rand([3, 5, 7], g);
        using var b = Tensor.Rand([3, 9, 4], g);
        using var list = ImageList.FromTensors([a, b], sizeDivisibility: 8, padValue: -1);
        Assert.Equal([2, 3, 16, 8], list.Tensor.ShapeArray());
        Assert.Equal([(5, 7), (9, 4)], list.ImageSizes);
        Assert.Equal(list.ImageSizes, list.OriginalSizes);
        var v = list.Tensor.ToFloatArray();
        var av = a.ToFloatArray();
        var bv = b.ToFloatArray();
        for (var c = 0; c < 3; c++)
            for (var y = 0; y < 16; y++)
                for (var x = 0; x < 8; x++)
                {
                    var ea = y < 5 && x < 7 ? av[(c * 5 + y) * 7 + x] : -1f;
                    var eb = y < 9 && x < 4 ? bv[(c * 9 + y) * 4 + x] : -1f;
                    Assert.True(ea == v[((0 * 3 + c) * 16 + y) * 8 + x], $"image 0 at ({c},{y},{x}), seed {seed}");
                    Assert.True(eb == v[((1 * 3 + c) * 16 + y) * 8 + x], $"image 1 at ({c},{y},{x}), seed {seed}");
                }
    }

    [Fact]
    public void RejectsMixedChannelCounts()
    {
        using var a = Tensor.Zeros([3, 4, 4]);
        using var b = Tensor.Zeros([1, 4, 4]);
        var e = Assert.Throws<ArgumentException>(() => ImageList.FromTensors([a, b]));
        Assert.Contains("same C", e.Message);
    }
}
