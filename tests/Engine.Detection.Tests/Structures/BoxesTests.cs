using Engine.Detection.Reference;
using Engine.Reference;
using Engine.Tests;

namespace Engine.Detection.Tests.Structures;

public class BoxesTests
{
    /// <summary>Random XYXY boxes, about one in six degenerate (zero width or height) or inverted.</summary>
    internal static double[] RandomBoxes(Generator g, int n, double extent = 100)
    {
        var b = new double[n * 4];
        for (var i = 0; i < n; i++)
        {
            var x = (float)(g.NextDouble() * extent);
            var y = (float)(g.NextDouble() * extent);
            var w = (float)(g.NextDouble() * extent / 3);
            var h = (float)(g.NextDouble() * extent / 3);
            var kind = g.NextInt64(6);
            if (kind == 0) w = 0;
            if (kind == 1) h = -h / 4;
            (b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]) = (x, y, (float)(x + w), (float)(y + h));
        }
        return b;
    }

    [Fact]
    public void HandWorkedAreaAndIou()
    {
        TestUtil.Fresh(out _);
        // a = (0,0)-(4,2): area 8; b = (2,1)-(6,5): area 16, overlap (2,1)-(4,2) = 2, union 22 → IoU 1/11;
        // c = (10,10)-(11,11) is disjoint from both (IoU 0); d = (1,1)-(1,5) is empty: intersection 0 → IoU 0, not NaN.
        using var a = Tensor.From(new float[] { 0, 0, 4, 2, 10, 10, 11, 11 }, 2, 4);
        using var b = Tensor.From(new float[] { 2, 1, 6, 5, 1, 1, 1, 5 }, 2, 4);
        using var area = Boxes.Area(a);
        Assert.Equal([8f, 1f], area.ToFloatArray());
        using var iou = Boxes.PairwiseIou(a, b);
        Assert.Equal([2, 2], iou.ShapeArray());
        Assert.Equal([1f / 11, 0f, 0f, 0f], iou.ToFloatArray());
    }

    [Fact]
    public void PairwiseIouMatchesReference()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (n, m) in new[] { (0, 5), (5, 0), (1, 1), (13, 29), (3, 9000), (257, 31) })
        {
            var a = RandomBoxes(g, n);
            var b = RandomBoxes(g, m);
            using var ta = Tensor.FromDoubles(a, [n, 4]);
            using var tb = TestUtil.NonContiguous(new RefTensor([m, 4], b));
            using var iou = Boxes.PairwiseIou(ta, tb);
            // float32 IoU of float32 coordinates below 134: a few ulps of relative error
            TestUtil.AssertClose(new RefTensor([n, m], BoxReference.PairwiseIou(a, b)), iou, $"pairwise IoU {n}×{m}", seed, 1e-6, 1e-5);
        }
    }

    [Fact]
    public void AreaClipScaleAndNonEmpty()
    {
        var g = TestUtil.Fresh(out var seed);
        var b = RandomBoxes(g, 41, 140);
        using var t = Tensor.FromDoubles(b, [41, 4]);
        using var area = Boxes.Area(t);
        TestUtil.AssertClose(Enumerable.Range(0, 41).Select(i => BoxReference.Area(b, i)).ToArray(), area.ToDoubleArray(), "area", seed, 1e-4, 1e-6);

        using var clipped = Boxes.Clip(t, height: 90, width: 110);
        var expectedClip = b.Select((v, k) => Math.Clamp(v, 0, k % 2 == 0 ? 110 : 90)).ToArray();
        TestUtil.AssertClose(expectedClip, clipped.ToDoubleArray(), "clip", seed, 0, 0);

        using var scaled = Boxes.Scale(t, 0.5, 3);
        TestUtil.AssertClose(b.Select((v, k) => v * (k % 2 == 0 ? 0.5 : 3)).ToArray(), scaled.ToDoubleArray(), "scale", seed, 1e-5, 1e-6);

        using var nonEmpty = Boxes.NonEmpty(t, threshold: 2);
        Assert.Equal(DType.UInt8, nonEmpty.DType);
        var expectedMask = Enumerable.Range(0, 41).Select(i => b[i * 4 + 2] - b[i * 4] > 2 && b[i * 4 + 3] - b[i * 4 + 1] > 2 ? 1.0 : 0.0).ToArray();
        Assert.Equal(expectedMask, nonEmpty.ToDoubleArray());
    }

    [Fact]
    public void AreaAndClipAreDifferentiable()
    {
        TestUtil.Fresh(out _);
        // area = (x2 - x1)(y2 - y1): d/dx1 = -(y2 - y1), d/dy1 = -(x2 - x1), d/dx2 = y2 - y1, d/dy2 = x2 - x1
        using var t = Tensor.From(new float[] { 1, 2, 4, 7 }, 1, 4).RequireGrad();
        using var area = Boxes.Area(t);
        using var s = area.Sum();
        s.Backward();
        Assert.Equal([-5f, -3f, 5f, 3f], t.Grad!.ToFloatArray());
        // clipped coordinates pass no gradient: x1 = -3 → 0 and x2 = 50 → 20 are clamped, y1 and y2 pass through
        using var u = Tensor.From(new float[] { -3, 2, 50, 7 }, 1, 4).RequireGrad();
        using var c = Boxes.Clip(u, 10, 20);
        using var cs = c.Sum();
        cs.Backward();
        Assert.Equal([0f, 1f, 0f, 1f], u.Grad!.ToFloatArray());
    }

    [Fact]
    public void BadShapesNameTheProblem()
    {
        TestUtil.Fresh(out _);
        using var five = Tensor.Zeros([3, 5]);
        var e = Assert.Throws<ArgumentException>(() => Boxes.Area(five));
        Assert.Contains("(R, 4)", e.Message);
        using var ok = Tensor.Zeros([3, 4]);
        e = Assert.Throws<ArgumentException>(() => Boxes.PairwiseIou(ok, five));
        Assert.Contains("b must be float32", e.Message);
    }
}
