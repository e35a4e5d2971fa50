// The normalized classifiers of section 1.8 against their double references: forward and the gradients of input,
// weights, bias and per-class scale, a zero input row (the normalization's eps case), and the initial scales.
using Engine.LongTail.Nn;
using Engine.LongTail.Reference;

namespace Engine.LongTail.Tests.Nn;

public class NormalizedClassifierTests
{
    [Fact]
    public void NormalizedLinearMatchesReference()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 9, d = 33, o = 17;
        using var layer = new NormalizedLinear(d, o, g);
        using (var bias = TestUtil.Float(TestUtil.Uniform(g, o, -1, 1), o))
        using (GradMode.NoGrad())
            layer.Bias!.Value.CopyFrom(bias);
        var x = TestUtil.Uniform(g, n * d, 0, 2);
        for (var j = 0; j < d; j++) x[4 * d + j] = 0; // a zero embedding row (after ReLU this happens)
        x = x.Select(v => (double)(float)v).ToArray();
        var w = layer.Weight.Value.ToDoubleArray();
        var b = layer.Bias!.Value.ToDoubleArray();
        var u = TestUtil.Uniform(g, n * o, -1, 1);
        using var scope = DisposeScope.Begin();
        var xt = TestUtil.Float(x, n, d).RequireGrad();
        var z = layer.Forward(xt);
        // τ = 20 times unit-vector dot products: values ≤ 20, float rounding ~1e-6 relative
        TestUtil.AssertClose(NormalizedClassifierReference.NormalizedLinear(x, n, w, o, d, b, 20, 1e-6), z.ToDoubleArray(), "forward", seed, 1e-4, 1e-4);
        z.Backward(TestUtil.Float(u, n, o));
        var (gx, gw, gb) = NormalizedClassifierReference.NormalizedLinearBackward(x, n, w, o, d, 20, 1e-6, u);
        TestUtil.AssertClose(gx, xt.Grad!.ToDoubleArray(), "input gradient", seed, 1e-3, 1e-3);
        // weights of norm ≈ 0.06 (N(0, 0.01²) over 33 inputs): gradients of order τ/0.06, so a looser absolute tolerance
        TestUtil.AssertClose(gw, layer.Weight.Grad!.ToDoubleArray(), "weight gradient", seed, 1e-2, 1e-3);
        TestUtil.AssertClose(gb, layer.Bias.Grad!.ToDoubleArray(), "bias gradient", seed, 1e-5, 1e-5);
        Assert.All(xt.Grad!.ToDoubleArray(), v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void CosineClassifierMatchesReference()
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 7, d = 1024, o = 13;
        using var layer = new CosineClassifier(d, o, g);
        var gain = layer.Gain.Value.ToDoubleArray();
        // g starts at the row norms of a default linear layer: sqrt(d·(1/d)/3) = 0.577 (section 1.8)
        Assert.All(gain, v => Assert.InRange(v, 0.52, 0.64));
        var x = TestUtil.Uniform(g, n * d, 0, 1).Select(v => (double)(float)v).ToArray();
        var v = layer.Direction.Value.ToDoubleArray();
        var u = TestUtil.Uniform(g, n * o, -1, 1);
        using var scope = DisposeScope.Begin();
        var xt = TestUtil.Float(x, n, d).RequireGrad();
        var z = layer.Forward(xt);
        TestUtil.AssertClose(NormalizedClassifierReference.Cosine(x, n, v, gain, o, d, 48, 1e-5), z.ToDoubleArray(), "forward", seed, 1e-4, 1e-4);
        z.Backward(TestUtil.Float(u, n, o));
        var (gx, gv, gg) = NormalizedClassifierReference.CosineBackward(x, n, v, gain, o, d, 48, 1e-5, u);
        TestUtil.AssertClose(gx, xt.Grad!.ToDoubleArray(), "input gradient", seed, 1e-4, 1e-3);
        TestUtil.AssertClose(gv, layer.Direction.Grad!.ToDoubleArray(), "direction gradient", seed, 1e-4, 1e-3);
        TestUtil.AssertClose(gg, layer.Gain.Grad!.ToDoubleArray(), "scale gradient", seed, 1e-4, 1e-4);
    }
}
