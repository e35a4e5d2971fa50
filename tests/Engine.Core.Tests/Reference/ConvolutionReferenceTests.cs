// Tests of src/Engine.Core/Reference/ConvolutionReference.cs: a hand-worked forward case, and the
// reference backward (data, weights, bias) against central finite differences in double.
using Engine.Native;
using Engine.Reference;
using Engine.Tests.Native;

namespace Engine.Tests.Reference;

public class ConvolutionReferenceTests
{
    [Fact]
    public void ForwardMatchesHandWorkedExample()
    {
        // x = [[1,2,3],[4,5,6],[7,8,9]], 2x2 kernel of ones: each output sums a 2x2 window.
        var g = Conv2dGeometry.Square(1, 1, 3, 3, 1, 2);
        var y = ConvolutionReference.Forward(g, [1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 1, 1]);
        Assert.Equal([12.0, 16, 24, 28], y);

        // Padding 1, stride 2, bias 0.5: corners see one 2x2 window of the zero-padded image.
        g = Conv2dGeometry.Square(1, 1, 3, 3, 1, 2, stride: 2, pad: 1);
        y = ConvolutionReference.Forward(g, [1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 1, 1], [0.5]);
        Assert.Equal([1.5, 5.5, 11.5, 28.5], y);
    }

    [Fact]
    public void GroupsKeepChannelsApart()
    {
        // Two groups of one channel each, 1x1 weights 2 and 3: output channel g sees only input channel g.
        var g = Conv2dGeometry.Square(1, 2, 1, 2, 2, 1, groups: 2);
        var y = ConvolutionReference.Forward(g, [1, 2, 10, 20], [2, 3]);
        Assert.Equal([2.0, 4, 30, 60], y);
    }

    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        var seed = NativeTestData.NewSeed();
        var rng = new Random(seed);
        foreach (var g in NativeTestData.ConvCases(rng).Where(c => c.SrcLength + c.WeightLength <= 2500))
        {
            var x = NativeTestData.Uniform(rng, g.SrcLength);
            var w = NativeTestData.Uniform(rng, g.WeightLength);
            var b = NativeTestData.Uniform(rng, g.BiasLength);
            var r = NativeTestData.Uniform(rng, g.DstLength);   // L = Σ r·y, so ∂L/∂y = r

            double Loss(double[] xs, double[] ws, double[] bs)
            {
                var y = ConvolutionReference.Forward(g, xs, ws, bs);
                var sum = 0.0;
                for (var i = 0; i < y.Length; i++) sum += r[i] * y[i];
                return sum;
            }

            var dx = ConvolutionReference.BackwardData(g, r, w);
            var dw = ConvolutionReference.BackwardWeights(g, x, r);
            var db = ConvolutionReference.BiasGrad(g, r);
            CheckAgainstFiniteDifferences($"dx {g}", x, dx, () => Loss(x, w, b), seed);
            CheckAgainstFiniteDifferences($"dw {g}", w, dw, () => Loss(x, w, b), seed);
            CheckAgainstFiniteDifferences($"db {g}", b, db, () => Loss(x, w, b), seed);
        }
    }

    /// <summary>Central differences over every element of <paramref name="parameter"/>. L is linear in each
    /// parameter, so the difference quotient has no truncation error; what is left is the rounding of L
    /// (≈ 1e-16·Σ|terms| / h with h = 1e-3), far below the 1e-8 + 1e-8·|g| tolerance.</summary>
    internal static void CheckAgainstFiniteDifferences(string what, double[] parameter, double[] gradient, Func<double> loss, int seed)
    {
        const double h = 1e-3;
        for (var i = 0; i < parameter.Length; i++)
        {
            var saved = parameter[i];
            parameter[i] = saved + h;
            var plus = loss();
            parameter[i] = saved - h;
            var minus = loss();
            parameter[i] = saved;
            var numeric = (plus - minus) / (2 * h);
            var tolerance = 1e-8 + 1e-8 * Math.Abs(numeric);
            if (!(Math.Abs(numeric - gradient[i]) <= tolerance))
                Assert.Fail($"{what}: element {i} analytic {gradient[i]:R}, finite difference {numeric:R} (seed {seed})");
        }
    }
}
