using Engine.Native;
using Engine.Nn;
using Engine.Reference;

namespace Engine.Tests.Nn;

public class LayerTests
{
    [Fact]
    public void Conv2dLayerComputesTheConvolutionAndNamesItsParameters()
    {
        var g = TestUtil.Fresh(out var seed);
        using var conv = new Conv2d(4, 6, 3, g, stride: 2, padding: 1, groups: 2, norm: new GroupNorm(3, 6), relu: true);
        Assert.Equal(["weight", "bias", "norm.weight", "norm.bias"], conv.NamedParameters().Select(p => p.Name).ToArray());
        var rx = RefTensor.Random(g, [2, 4, 9, 7]);
        using var x = rx.ToTensor();
        using var y = conv.Forward(x);
        var geo = Conv2dGeometry.Square(2, 4, 9, 7, 6, 3, stride: 2, pad: 1, groups: 2);
        var raw = new RefTensor([2, 6, geo.OutH, geo.OutW],
            ConvolutionReference.Forward(geo, rx.Data, conv.Weight.Value.ToDoubleArray(), conv.Bias!.Value.ToDoubleArray()));
        // GroupNorm(3 groups of 2 channels) with unit weight and zero bias, then relu
        var normalized = NormalizationReference.GroupNormForward(raw.Data, 2, 6, geo.OutH * geo.OutW, 3, null, null, 1e-5);
        TestUtil.AssertClose(new RefTensor(raw.Shape, normalized).Map(v => Math.Max(v, 0)), y, "conv+gn+relu", seed, 1e-4, 1e-4);
    }

    [Fact]
    public void LinearLayerMatchesTheReferenceAndItsInitBounds()
    {
        var g = TestUtil.Fresh(out var seed);
        using var fc = new Linear(37, 5, g);
        var bound = 1 / Math.Sqrt(37); // kaiming-uniform with a = √5 gives gain √(2/6) · √(3/37) = 1/√37
        Assert.All(fc.Weight.Value.ToDoubleArray(), v => Assert.InRange(Math.Abs(v), 0, bound));
        Assert.All(fc.Bias!.Value.ToDoubleArray(), v => Assert.InRange(Math.Abs(v), 0, bound));
        var rx = RefTensor.Random(g, [3, 2, 37]);
        using var x = rx.ToTensor();
        using var y = fc.Forward(x);
        var w = fc.Weight.Value.ToDoubleArray();
        var b = fc.Bias.Value.ToDoubleArray();
        var expected = new double[6 * 5];
        for (var r = 0; r < 6; r++)
            for (var o = 0; o < 5; o++)
            {
                var s = b[o];
                for (var i = 0; i < 37; i++) s += rx.Data[r * 37 + i] * w[o * 37 + i];
                expected[r * 5 + o] = s;
            }
        TestUtil.AssertClose(new RefTensor([3, 2, 5], expected), y, "linear", seed);
    }

    [Fact]
    public void MaxPoolLayerAndASmallConvNetTrain()
    {
        var g = new Generator(7);
        using var net = new Sequential(
            new Conv2d(1, 4, 3, g, padding: 1, relu: true),
            new MaxPool2d(2, 2),
            new Conv2d(4, 1, 1, g));
        // target: the 2×2 max-pool of the input, which the net can represent (identity conv, relu, pool, 1×1)
        using var x = Tensor.Rand([4, 1, 8, 8], g);
        using var target = x.MaxPool2d(2, 2);
        var optimizer = new Engine.Optim.Sgd(net.Parameters(), lr: 0.1, momentum: 0.9);
        double first = 0, last = 0;
        for (var step = 0; step < 60; step++)
        {
            using var scope = DisposeScope.Begin();
            optimizer.ZeroGrad();
            var loss = (net.Forward(x) - target).Square().Mean();
            loss.Backward();
            optimizer.Step();
            if (step == 0) first = loss.Item();
            last = loss.Item();
        }
        Assert.True(last < first / 10, $"loss went from {first} to {last}");
    }
}
