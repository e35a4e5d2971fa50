using Engine.Reference;

namespace Engine.Tests.Autograd;

public class AutogradTests
{
    [Fact]
    public void FanOutAccumulatesGradients()
    {
        using var x = Tensor.From([2f, -3f]).RequireGrad();
        // y = x*x + 3x + x  → dy/dx = 2x + 4
        using var a = x * x;
        using var b = x * 3.0;
        using var c = a + b;
        using var y = c + x;
        using var s = y.Sum();
        s.Backward();
        Assert.Equal([8.0, -2.0], x.Grad!.ToDoubleArray());
    }

    [Fact]
    public void LeafGradientsAccumulateAcrossBackwardCallsUntilZeroed()
    {
        using var x = Tensor.From([1f, 2f]).RequireGrad();
        for (var i = 0; i < 3; i++)
        {
            using var y = (x * 2.0).Sum();
            y.Backward();
        }
        Assert.Equal([6.0, 6.0], x.Grad!.ToDoubleArray());
        x.ZeroGrad();
        Assert.Null(x.Grad);
    }

    [Fact]
    public void SharedGradientTensorsAreNotAliasedBetweenLeaves()
    {
        // add's backward hands the same gradient to both inputs; in-place accumulation into one leaf's
        // gradient must not change the other's.
        using var a = Tensor.From([1f]).RequireGrad();
        using var b = Tensor.From([1f]).RequireGrad();
        using (var s = (a + b).Sum()) s.Backward();
        using (var s2 = (a * 5.0).Sum()) s2.Backward();
        Assert.Equal([6.0], a.Grad!.ToDoubleArray());
        Assert.Equal([1.0], b.Grad!.ToDoubleArray());
    }

    [Fact]
    public void NoGradAndDetachStopRecording()
    {
        using var x = Tensor.From([1f, 2f]).RequireGrad();
        using (GradMode.NoGrad())
        {
            using var y = x * 2.0;
            Assert.False(y.RequiresGrad);
        }
        using var d = x.Detach();
        Assert.False(d.RequiresGrad);
        using var z = (d * x).Sum();
        z.Backward();
        Assert.Equal([1.0, 2.0], x.Grad!.ToDoubleArray()); // gradient only through the non-detached factor
    }

    [Fact]
    public void SecondBackwardWithoutRetainGraphIsAClearError()
    {
        using var x = Tensor.From([1f]).RequireGrad();
        using var y = (x.Exp() * 2.0).Sum();
        y.Backward(retainGraph: true);
        y.Backward();
        Assert.Equal(4 * Math.E, x.Grad!.ToDoubleArray()[0], 5);
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("retainGraph", e.Message);
    }

    [Fact]
    public void InPlaceChangeOfASavedTensorIsDetected()
    {
        using var x = Tensor.From([1f, 2f]).RequireGrad();
        using var w = Tensor.From([3f, 4f]);
        using var y = (x * w).Sum();
        w.Fill(0);
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("modified in place", e.Message);
    }

    [Fact]
    public void InPlaceWriteToALeafThatRequiresGradIsRefused()
    {
        using var x = Tensor.From([1f]).RequireGrad();
        var e = Assert.Throws<InvalidOperationException>(() => x.Fill(2));
        Assert.Contains("NoGrad", e.Message);
        using (GradMode.NoGrad()) x.Fill(2);
        Assert.Equal([2.0], x.ToDoubleArray());
    }

    [Fact]
    public void BackwardOfANonScalarNeedsAnExplicitGradient()
    {
        using var x = Tensor.From([1f, 2f]).RequireGrad();
        using var y = x * 2.0;
        Assert.Throws<ArgumentException>(() => y.Backward());
        using var g = Tensor.From([1f, 10f]);
        y.Backward(g);
        Assert.Equal([2.0, 20.0], x.Grad!.ToDoubleArray());
    }

    [Fact]
    public void DisposedIntermediatesDoNotBreakBackward()
    {
        var g = TestUtil.Fresh(out var seed);
        var r = RefTensor.Random(g, [5], 0.5, 2);
        using var x = r.ToTensor().RequireGrad();
        Tensor y;
        using (var scope = DisposeScope.Begin())
        {
            var h = x.Log();
            var k = h * h;
            y = scope.Keep(k.Sum());
        }
        using (y) y.Backward();
        TestUtil.AssertClose(r.Map(v => 2 * Math.Log(v) / v), x.Grad!, "d/dx sum(log(x)^2)", seed);
    }

    [Fact]
    public void DeepChainsDoNotOverflowTheStack()
    {
        using var x = Tensor.From([1f]).RequireGrad();
        using var scope = DisposeScope.Begin();
        var y = x;
        for (var i = 0; i < 20_000; i++) y = y * 1.0;
        y.Sum().Backward();
        Assert.Equal([1.0], x.Grad!.ToDoubleArray());
    }

    [Fact]
    public void BackwardNeverTouchesDisposedForwardTensors()
    {
        // every binary op whose backward needs its inputs, with both inputs disposed before Backward()
        using var a = Tensor.From([1f, -2f, 3f]).RequireGrad();
        using var b = Tensor.From([2f, -2f, 0.5f]).RequireGrad();
        Tensor total;
        using (var scope = DisposeScope.Begin())
        {
            var ta = a * 1.0;
            var tb = b * 1.0;
            var y = ta.Maximum(tb) + ta.Minimum(tb) + ta * tb + ta / tb + Tensor.Where(ta.Gt(tb), ta, tb);
            total = scope.Keep(y.Sum());
        }
        using (total) total.Backward();
        // d/da: max+min contribute 1 in total per element (a split on the tie), + b + 1/b + [a > b]
        Assert.Equal([1 + 2 + 0.5 + 0, 1 - 2 - 0.5 + 0, 1 + 0.5 + 2 + 1], a.Grad!.ToDoubleArray());
    }
}

