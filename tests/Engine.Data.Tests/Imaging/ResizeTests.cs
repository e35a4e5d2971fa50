// Tests of Imaging/Resize.cs against the double reference ResizeReference, on random images of odd
// sizes, up- and down-scaling, one-pixel images, and every size along a sweep.
using Engine.Data.Imaging;
using Engine.Data.Reference;

namespace Engine.Data.Tests.Imaging;

public class ResizeTests
{
    // The fast path blends in float32 and the reference in double; both round half up, so they can differ by one
    // level only where the exact value lies within float rounding (~1e-5 of a level) of a .5 boundary.
    private const int Tolerance = 1;

    [Theory]
    [InlineData(37, 23, 80, 51, 3)]
    [InlineData(160, 160, 97, 53, 3)]
    [InlineData(1, 1, 5, 3, 3)]
    [InlineData(9, 4, 1, 1, 1)]
    [InlineData(640, 480, 1067, 800, 3)] // large enough to run rows in parallel
    [InlineData(13, 7, 13, 21, 1)]
    public void MatchesReference(int w, int h, int ow, int oh, int channels)
    {
        var g = TestSupport.Fresh(out var seed);
        var src = TestSupport.NoiseImage(g, w, h, channels);
        var fast = Resize.Bilinear(src, ow, oh);
        var reference = ResizeReference.Bilinear(src.Data, w, h, channels, ow, oh);
        Compare(reference, fast.Data, $"{w}×{h}→{ow}×{oh}×{channels} (seed {seed})");
    }

    [Fact]
    public void RandomSizesMatchReference()
    {
        var g = TestSupport.Fresh(out var seed);
        for (var trial = 0; trial < 40; trial++)
        {
            int w = 1 + (int)g.NextInt64(40), h = 1 + (int)g.NextInt64(40), ow = 1 + (int)g.NextInt64(60), oh = 1 + (int)g.NextInt64(60);
            var src = TestSupport.NoiseImage(g, w, h);
            Compare(ResizeReference.Bilinear(src.Data, w, h, 3, ow, oh), Resize.Bilinear(src, ow, oh).Data, $"trial {trial} {w}×{h}→{ow}×{oh} (seed {seed})");
        }
    }

    [Fact]
    public void SameSizeIsACopyAndConstantStaysConstant()
    {
        var g = TestSupport.Fresh(out _);
        var src = TestSupport.NoiseImage(g, 17, 9);
        var same = Resize.Bilinear(src, 17, 9);
        Assert.NotSame(src.Data, same.Data);
        Assert.Equal(src.Data, same.Data);

        var flat = new Image(11, 7, 3, Enumerable.Repeat((byte)173, 11 * 7 * 3).ToArray());
        Assert.All(Resize.Bilinear(flat, 29, 4).Data, v => Assert.Equal(173, v));
    }

    [Fact]
    public void RejectsEmptyTarget() =>
        Assert.Throws<ArgumentException>(() => Resize.Bilinear(Image.Create(4, 4), 0, 3));

    private static void Compare(byte[] expected, byte[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= Tolerance, $"{what}: byte {i} is {actual[i]}, reference {expected[i]}");
    }
}
