using Engine.Detection.Reference;
using Engine.Tests;

namespace Engine.Detection.Tests.Modeling;

public class Box2BoxTransformTests
{
    /// <summary>Sides in [10, 300]: size ratios stay below e^4.135 = 1000/16, so no delta is clamped.</summary>
    private static double[] PositiveBoxes(Generator g, int n)
    {
        var b = new double[n * 4];
        for (var i = 0; i < n; i++)
        {
            var x = (float)(g.NextDouble() * 500);
            var y = (float)(g.NextDouble() * 500);
            var w = (float)(10 + g.NextDouble() * 290);
            var h = (float)(10 + g.NextDouble() * 290);
            (b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]) = (x, y, (float)(x + w), (float)(y + h));
        }
        return b;
    }

    [Fact]
    public void HandWorkedDeltas()
    {
        TestUtil.Fresh(out _);
        // src (0,0)-(10,20): centre (5,10), size 10×20. target (2,4)-(22,24): centre (12,14), size 20×20.
        // weights (10,10,5,5): dx = 10·(12-5)/10 = 7, dy = 10·(14-10)/20 = 2, dw = 5·ln(20/10) = 5 ln 2, dh = 5·ln(20/20) = 0
        var coder = Box2BoxTransform.ForRoiHeads();
        using var src = Tensor.From(new float[] { 0, 0, 10, 20 }, 1, 4);
        using var target = Tensor.From(new float[] { 2, 4, 22, 24 }, 1, 4);
        using var d = coder.GetDeltas(src, target);
        TestUtil.AssertClose([7, 2, 5 * Math.Log(2), 0], d.ToDoubleArray(), "hand deltas", 0, 1e-6, 1e-6);
        using var back = coder.ApplyDeltas(d, src);
        TestUtil.AssertClose([2, 4, 22, 24], back.ToDoubleArray(), "hand decode", 0, 1e-5, 1e-6);
    }

    [Theory]
    [InlineData(10, 10, 5, 5)]
    [InlineData(1, 1, 1, 1)]
    public void MatchReferenceAndRoundTrip(double wx, double wy, double ww, double wh)
    {
        var g = TestUtil.Fresh(out var seed);
        var weights = new BoxCoderWeights(wx, wy, ww, wh);
        var coder = new Box2BoxTransform(weights);
        foreach (var n in new[] { 0, 1, 37 })
        {
            var src = PositiveBoxes(g, n);
            var target = PositiveBoxes(g, n);
            using var s = Tensor.FromDoubles(src, [n, 4]);
            using var t = Tensor.FromDoubles(target, [n, 4]);
            using var d = coder.GetDeltas(s, t);
            // float32 centres and logs of ratios of coordinates up to ~800: relative error a few 1e-7, times the weights
            TestUtil.AssertClose(BoxReference.Encode(src, target, weights), d.ToDoubleArray(), $"deltas n={n}", seed, 1e-4, 1e-5);
            using var back = coder.ApplyDeltas(d, s);
            TestUtil.AssertClose(target, back.ToDoubleArray(), $"round trip n={n}", seed, 1e-3, 1e-5);
        }
    }

    [Fact]
    public void ClassSpecificDeltasAndScaleClamp()
    {
        var g = TestUtil.Fresh(out var seed);
        var coder = Box2BoxTransform.ForRoiHeads();
        const int n = 23, k = 5;
        var boxes = PositiveBoxes(g, n);
        var deltas = new double[n * k * 4];
        for (var i = 0; i < deltas.Length; i++) deltas[i] = (float)(g.NextNormal() * 3);
        deltas[2] = 80; // dw / 5 = 16 > log(1000/16) ≈ 4.135: clamped
        using var b = Tensor.FromDoubles(boxes, [n, 4]);
        using var d = Tensor.FromDoubles(deltas, [n, k * 4]);
        using var decoded = coder.ApplyDeltas(d, b);
        Assert.Equal([n, k * 4], decoded.ShapeArray());
        var expected = BoxReference.Decode(deltas, boxes, coder.Weights, Box2BoxTransform.DefaultScaleClamp);
        // exp of a float32 argument ≤ 4.1 times sizes ≤ 300: relative error a few 1e-7 of values up to ~2e4
        TestUtil.AssertClose(expected, decoded.ToDoubleArray(), "decode", seed, 1e-3, 1e-5);
        var width = decoded.ToDoubleArray()[2] - decoded.ToDoubleArray()[0];
        Assert.InRange(width / (boxes[2] - boxes[0]), 1000.0 / 16 * 0.9999, 1000.0 / 16 * 1.0001);
    }

    [Fact]
    public void RejectsEmptySourcesAndGraphInputs()
    {
        TestUtil.Fresh(out _);
        var coder = Box2BoxTransform.ForRpn();
        using var src = Tensor.From(new float[] { 0, 0, 0, 5 }, 1, 4);
        using var target = Tensor.From(new float[] { 0, 0, 3, 5 }, 1, 4);
        var e = Assert.Throws<ArgumentException>(() => coder.GetDeltas(src, target));
        Assert.Contains("positive size", e.Message);
        using var live = Tensor.Zeros([1, 4]).RequireGrad();
        using var box = Tensor.From(new float[] { 0, 0, 3, 5 }, 1, 4);
        var e2 = Assert.Throws<InvalidOperationException>(() => coder.ApplyDeltas(live, box));
        Assert.Contains("Detach", e2.Message);
        using var bad = Tensor.Zeros([1, 6]);
        Assert.Throws<ArgumentException>(() => coder.ApplyDeltas(bad, box));
    }
}
