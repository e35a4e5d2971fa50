// Tests of src/Engine.Core/Ops/Tensor.Convolution.cs (and the CPU backend's convolution primitives) against
// ConvolutionReference: forward and all three gradients on geometries that reach every branch (stride,
// padding, dilation, groups, depthwise, 1x1, a 7x7 stem, rectangular parameters, an empty batch), strided
// inputs and weights, only-the-needed-gradients, the weight-reorder cache through the shim's counters,
// and error messages. The reference backward itself is checked against finite differences in
// tests/Engine.Core.Tests/Reference/ConvolutionReferenceTests.cs.
using Engine.Native;
using Engine.Reference;

namespace Engine.Tests.Ops;

/// <summary>Float32 results of long sums against a double reference.</summary>
internal static class SumTolerance
{
    private const double Eps32 = 1.1920929e-7;

    /// <summary><paramref name="magnitude"/> is the same computation on absolute values (Σ|terms| per element).
    /// A float32 sum of K terms in any order is off by at most about K·eps·Σ|terms| (Higham, Accuracy and
    /// Stability of Numerical Algorithms, §3.1); oneDNN's blocked sums stay far below that, so 32·eps·Σ|terms|
    /// holds for the K used here (≤ 1000) while a missing or doubled term (≈ Σ|terms|/K) still fails.</summary>
    public static void AssertClose(double[] expected, double[] magnitude, Tensor actual, int[] shape, string what, ulong seed)
    {
        Assert.True(actual.Shape.SequenceEqual(shape),
            $"{what}: shape {ShapeUtil.Format(actual.Shape)}, expected {ShapeUtil.Format(shape)} (seed {seed})");
        var got = actual.ToDoubleArray();
        Assert.True(got.Length == expected.Length, $"{what}: {got.Length} elements, expected {expected.Length} (seed {seed})");
        for (var i = 0; i < expected.Length; i++)
        {
            var tolerance = 1e-6 + 32 * Eps32 * magnitude[i];
            var error = Math.Abs(got[i] - expected[i]);
            if (!(error <= tolerance))   // NaN (an unwritten, poisoned element) fails too
                Assert.Fail($"{what}: element {i} is {got[i]:G9}, reference {expected[i]:G9}, |error| {error:E2} > {tolerance:E2} " +
                            $"(seed {seed}, ENGINE_TEST_SEED={seed} replays)");
        }
    }

    public static double[] Abs(double[] v) => Array.ConvertAll(v, Math.Abs);
}

public class ConvolutionTests
{
    public sealed record Case(string Name, int N, int C, int H, int W, int O, int Kh, int Kw, (int, int) Stride,
                              (int, int) Padding, (int, int) Dilation, int Groups)
    {
        public Conv2dGeometry Geometry => new(N, C, H, W, O, Kh, Kw, Stride.Item1, Stride.Item2, Padding.Item1, Padding.Item2,
                                             Dilation.Item1, Dilation.Item2, Groups);

        public override string ToString() => Name;
    }

    public static TheoryData<Case> Cases =>
    [
        new("3x3 pad 1, odd sizes", 2, 3, 7, 6, 5, 3, 3, (1, 1), (1, 1), (1, 1), 1),
        new("3x3 stride 2 pad 1, dropped remainder", 2, 5, 10, 9, 7, 3, 3, (2, 2), (1, 1), (1, 1), 1),
        new("padding 2 without stride", 1, 4, 5, 6, 3, 3, 3, (1, 1), (2, 2), (1, 1), 1),
        new("dilation 2", 2, 3, 9, 8, 4, 3, 3, (1, 1), (2, 2), (2, 2), 1),
        new("groups 2", 2, 6, 7, 7, 4, 3, 3, (1, 1), (1, 1), (1, 1), 2),
        new("depthwise", 2, 5, 8, 7, 5, 3, 3, (2, 2), (1, 1), (1, 1), 5),
        new("1x1", 3, 7, 5, 6, 9, 1, 1, (1, 1), (0, 0), (1, 1), 1),
        new("1x1 stride 2", 2, 8, 9, 9, 5, 1, 1, (2, 2), (0, 0), (1, 1), 1),
        new("7x7 stem stride 2 pad 3", 1, 3, 21, 19, 8, 7, 7, (2, 2), (3, 3), (1, 1), 1),
        new("rectangular stride/padding/dilation", 2, 3, 8, 9, 4, 3, 2, (1, 2), (2, 0), (2, 1), 1),
        new(">16 channels, groups 4, dilation 2", 1, 20, 7, 6, 24, 3, 3, (2, 2), (1, 1), (2, 2), 4),
        new("empty batch", 0, 4, 5, 5, 6, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    ];

    private static Tensor Run(Case c, Tensor x, Tensor w, Tensor? b) =>
        c.Stride.Item1 == c.Stride.Item2 && c.Padding.Item1 == c.Padding.Item2 && c.Dilation.Item1 == c.Dilation.Item2
            ? Tensor.Conv2d(x, w, b, c.Stride.Item1, c.Padding.Item1, c.Dilation.Item1, c.Groups)
            : Tensor.Conv2d(x, w, b, c.Stride, c.Padding, c.Dilation, c.Groups);

    private static int[] InputShape(Conv2dGeometry g) => [g.N, g.CIn, g.H, g.W];
    private static int[] WeightShape(Conv2dGeometry g) => [g.COut, g.CInPerGroup, g.KernelH, g.KernelW];
    private static int[] OutputShape(Conv2dGeometry g) => [g.N, g.COut, g.OutH, g.OutW];

    /// <summary>Random values rounded to float32, so that the reference judges only the computation.</summary>
    private static double[] Values(Generator gen, int[] shape)
    {
        using var t = RefTensor.Random(gen, shape).ToTensor();
        return t.ToDoubleArray();
    }

    /// <summary>The values of a contiguous (N, C, H, W) array as a non-contiguous view: stored NHWC, permuted back.</summary>
    private static Tensor ChannelsLastView(double[] values, int[] shape)
    {
        var nhwc = new RefTensor(shape, values).Permute([0, 2, 3, 1]);
        using var stored = nhwc.ToTensor();
        return stored.Permute(0, 3, 1, 2);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ForwardMatchesReference(Case c)
    {
        var gen = TestUtil.Fresh(out var seed);
        var g = c.Geometry;
        var (x, w, b) = (Values(gen, InputShape(g)), Values(gen, WeightShape(g)), Values(gen, [g.COut]));
        using var xt = Tensor.FromDoubles(x, InputShape(g));
        using var wt = Tensor.FromDoubles(w, WeightShape(g));
        using var bt = Tensor.FromDoubles(b, [g.COut]);

        using var y = Run(c, xt, wt, bt);
        SumTolerance.AssertClose(ConvolutionReference.Forward(g, x, w, b),
            ConvolutionReference.Forward(g, SumTolerance.Abs(x), SumTolerance.Abs(w), SumTolerance.Abs(b)),
            y, OutputShape(g), $"forward+bias {g}", seed);

        using var y0 = Run(c, xt, wt, null);
        SumTolerance.AssertClose(ConvolutionReference.Forward(g, x, w),
            ConvolutionReference.Forward(g, SumTolerance.Abs(x), SumTolerance.Abs(w)),
            y0, OutputShape(g), $"forward {g}", seed);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BackwardMatchesReference(Case c)
    {
        var gen = TestUtil.Fresh(out var seed);
        var g = c.Geometry;
        var (x, w, b, dy) = (Values(gen, InputShape(g)), Values(gen, WeightShape(g)), Values(gen, [g.COut]), Values(gen, OutputShape(g)));
        using var xt = Tensor.FromDoubles(x, InputShape(g)).RequireGrad();
        using var wt = Tensor.FromDoubles(w, WeightShape(g)).RequireGrad();
        using var bt = Tensor.FromDoubles(b, [g.COut]).RequireGrad();
        using var y = Run(c, xt, wt, bt);
        using var gy = Tensor.FromDoubles(dy, OutputShape(g));
        y.Backward(gy);

        var (ax, aw, ady) = (SumTolerance.Abs(x), SumTolerance.Abs(w), SumTolerance.Abs(dy));
        SumTolerance.AssertClose(ConvolutionReference.BackwardData(g, dy, w), ConvolutionReference.BackwardData(g, ady, aw),
            xt.Grad!, InputShape(g), $"grad input {g}", seed);
        SumTolerance.AssertClose(ConvolutionReference.BackwardWeights(g, x, dy), ConvolutionReference.BackwardWeights(g, ax, ady),
            wt.Grad!, WeightShape(g), $"grad weight {g}", seed);
        SumTolerance.AssertClose(ConvolutionReference.BiasGrad(g, dy), ConvolutionReference.BiasGrad(g, ady),
            bt.Grad!, [g.COut], $"grad bias {g}", seed);
    }

    [Fact]
    public void StridedInputAndWeightGiveTheSameResultsAsContiguousOnes()
    {
        var gen = TestUtil.Fresh(out var seed);
        var g = Conv2dGeometry.Square(2, 6, 9, 7, 10, 3, stride: 2, pad: 1, groups: 2);
        var (x, w, dy) = (Values(gen, InputShape(g)), Values(gen, WeightShape(g)), Values(gen, OutputShape(g)));
        using var xt = ChannelsLastView(x, InputShape(g)).RequireGrad();
        using var wt = ChannelsLastView(w, WeightShape(g)).RequireGrad();
        Assert.False(xt.IsContiguous);
        Assert.False(wt.IsContiguous);
        using var y = Tensor.Conv2d(xt, wt, null, stride: 2, padding: 1, groups: 2);
        var (ax, aw, ady) = (SumTolerance.Abs(x), SumTolerance.Abs(w), SumTolerance.Abs(dy));
        SumTolerance.AssertClose(ConvolutionReference.Forward(g, x, w), ConvolutionReference.Forward(g, ax, aw),
            y, OutputShape(g), $"forward, channels-last views {g}", seed);

        using var gy = ChannelsLastView(dy, OutputShape(g));   // a strided upstream gradient too
        y.Backward(gy);
        SumTolerance.AssertClose(ConvolutionReference.BackwardData(g, dy, w), ConvolutionReference.BackwardData(g, ady, aw),
            xt.Grad!, InputShape(g), $"grad input, channels-last views {g}", seed);
        SumTolerance.AssertClose(ConvolutionReference.BackwardWeights(g, x, dy), ConvolutionReference.BackwardWeights(g, ax, ady),
            wt.Grad!, WeightShape(g), $"grad weight, channels-last views {g}", seed);
    }

    [Fact]
    public void OnlyTheGradientsThatAreNeededAreComputed()
    {
        var gen = TestUtil.Fresh(out var seed);
        var g = Conv2dGeometry.Square(2, 4, 6, 5, 3, 3, pad: 1);
        var (x, w, b, dy) = (Values(gen, InputShape(g)), Values(gen, WeightShape(g)), Values(gen, [g.COut]), Values(gen, OutputShape(g)));
        var (ax, aw, ady) = (SumTolerance.Abs(x), SumTolerance.Abs(w), SumTolerance.Abs(dy));
        using var gy = Tensor.FromDoubles(dy, OutputShape(g));

        // Frozen weights (a frozen backbone stage): only the input gradient.
        using (var xt = Tensor.FromDoubles(x, InputShape(g)).RequireGrad())
        using (var wt = Tensor.FromDoubles(w, WeightShape(g)))
        using (var bt = Tensor.FromDoubles(b, [g.COut]))
        using (var y = Tensor.Conv2d(xt, wt, bt, padding: 1))
        {
            y.Backward(gy);
            Assert.Null(wt.Grad);
            Assert.Null(bt.Grad);
            SumTolerance.AssertClose(ConvolutionReference.BackwardData(g, dy, w), ConvolutionReference.BackwardData(g, ady, aw),
                xt.Grad!, InputShape(g), "grad input alone", seed);
        }

        // The first layer: the image needs no gradient, the weight does.
        using (var xt = Tensor.FromDoubles(x, InputShape(g)))
        using (var wt = Tensor.FromDoubles(w, WeightShape(g)).RequireGrad())
        using (var y = Tensor.Conv2d(xt, wt, null, padding: 1))
        {
            y.Backward(gy);
            Assert.Null(xt.Grad);
            SumTolerance.AssertClose(ConvolutionReference.BackwardWeights(g, x, dy), ConvolutionReference.BackwardWeights(g, ax, ady),
                wt.Grad!, WeightShape(g), "grad weight alone", seed);
        }

        // Only the bias is trained.
        using (var xt = Tensor.FromDoubles(x, InputShape(g)))
        using (var wt = Tensor.FromDoubles(w, WeightShape(g)))
        using (var bt = Tensor.FromDoubles(b, [g.COut]).RequireGrad())
        using (var y = Tensor.Conv2d(xt, wt, bt, padding: 1))
        {
            y.Backward(gy);
            Assert.Null(wt.Grad);
            SumTolerance.AssertClose(ConvolutionReference.BiasGrad(g, dy), ConvolutionReference.BiasGrad(g, ady),
                bt.Grad!, [g.COut], "grad bias alone", seed);
        }

        // Nothing requires grad: no graph.
        using (var xt = Tensor.FromDoubles(x, InputShape(g)))
        using (var wt = Tensor.FromDoubles(w, WeightShape(g)))
        using (var y = Tensor.Conv2d(xt, wt, null, padding: 1))
            Assert.False(y.RequiresGrad);
    }

    [Fact]
    public void EmptyBatchGivesEmptyOutputAndZeroWeightGradients()
    {
        using var x = Tensor.Zeros([0, 4, 5, 5]).RequireGrad();
        using var w = Tensor.Ones([6, 4, 3, 3]).RequireGrad();
        using var b = Tensor.Ones([6]).RequireGrad();
        using var y = Tensor.Conv2d(x, w, b, stride: 2, padding: 1);
        Assert.Equal([0, 6, 3, 3], y.ShapeArray());
        using var gy = Tensor.Zeros([0, 6, 3, 3]);
        y.Backward(gy);
        Assert.Equal([0, 4, 5, 5], x.Grad!.ShapeArray());
        Assert.All(w.Grad!.ToDoubleArray(), v => Assert.Equal(0.0, v));
        Assert.All(b.Grad!.ToDoubleArray(), v => Assert.Equal(0.0, v));
    }

    [Fact]
    public void BadArgumentsNameConv2dTheShapesAndTheFix()
    {
        using var x = Tensor.Zeros([2, 6, 8, 8]);
        using var w = Tensor.Zeros([4, 3, 3, 3]);

        using (var x3 = Tensor.Zeros([6, 8, 8]))
        {
            var e = Assert.Throws<ArgumentException>(() => Tensor.Conv2d(x3, w));
            Assert.Contains("conv2d: input must be 4-D (N, C, H, W), got [6, 8, 8]", e.Message);
            Assert.Contains("Unsqueeze(0)", e.Message);
        }
        using (var w2 = Tensor.Zeros([4, 27]))
        {
            var e = Assert.Throws<ArgumentException>(() => Tensor.Conv2d(x, w2));
            Assert.Contains("conv2d: weight must be 4-D", e.Message);
            Assert.Contains("[4, 27]", e.Message);
        }
        {
            // C = 6 but weight (4, 3, 3, 3) with groups 1 expects C = 3.
            var e = Assert.Throws<ArgumentException>(() => Tensor.Conv2d(x, w));
            Assert.Contains("conv2d: input has C = 6 channels", e.Message);
            Assert.Contains("expects C = 3", e.Message);
            Assert.Contains("input [2, 6, 8, 8], weight [4, 3, 3, 3]", e.Message);
            Assert.Contains("input channels / groups", e.Message);
            using var y = Tensor.Conv2d(x, w, groups: 2);   // the fix
            Assert.Equal([2, 4, 6, 6], y.ShapeArray());
        }
        using (var w5 = Tensor.Zeros([5, 3, 3, 3]))
        {
            var e = Assert.Throws<ArgumentException>(() => Tensor.Conv2d(x, w5, groups: 2));
            Assert.Contains("groups = 2 must divide the weight's O = 5", e.Message);
        }
        using (var xi = Tensor.Zeros([2, 6, 8, 8], DType.Int32))
        {
            var e = Assert.Throws<ArgumentException>(() => Tensor.Conv2d(xi, w, groups: 2));
            Assert.Contains("conv2d: input has dtype int32, conv2d needs float32", e.Message);
            Assert.Contains("To(DType.Float32)", e.Message);
        }
        using (var b = Tensor.Zeros([3]))
        {
            var e = Assert.Throws<ArgumentException>(() => Tensor.Conv2d(x, w, b, groups: 2));
            Assert.Contains("conv2d: bias must be 1-D with O = 4 elements", e.Message);
            Assert.Contains("bias [3]", e.Message);
        }
        using (var big = Tensor.Zeros([4, 3, 11, 11]))
        {
            var e = Assert.Throws<ArgumentException>(() => Tensor.Conv2d(x, big, groups: 2));
            Assert.StartsWith("conv2d: input [2, 6, 8, 8], weight [4, 3, 11, 11]", e.Message);
            Assert.Contains("larger than the padded input", e.Message);
        }
        {
            var e = Assert.Throws<ArgumentException>(() => Tensor.Conv2d(x, w, null, stride: 0, groups: 2));
            Assert.StartsWith("conv2d:", e.Message);
            Assert.Contains("strides must be positive", e.Message);
        }
    }
}

/// <summary>The shim's weight-reorder cache through the tensor op. In the "OneDnn" collection because the layout
/// policy is process-wide and the native tests set it too.</summary>
[Collection("OneDnn")]
public class ConvolutionWeightCacheTests
{
    [Fact]
    public void ReorderedWeightsAreReusedUntilTheParameterIsWritten()
    {
        var gen = TestUtil.Fresh(out var seed);
        var saved = OneDnn.LayoutPolicy;
        // The blocked route computes with channel-blocked weights, so plain (O, C, kh, kw) weights need a reorder.
        OneDnn.LayoutPolicy = OneDnnLayoutPolicy.Blocked;
        try
        {
            var g = Conv2dGeometry.Square(2, 32, 8, 7, 32, 3, pad: 1);
            using var x = Tensor.Randn([g.N, g.CIn, g.H, g.W], gen).RequireGrad();
            using var w = Tensor.Randn([g.COut, g.CIn, g.KernelH, g.KernelW], gen, std: 0.1).RequireGrad();
            var key = (ulong)w.Storage.Id;
            var start = OneDnn.WeightReordersForKey(key);

            using var y1 = Tensor.Conv2d(x, w, null, padding: 1);
            Assert.Equal(start + 1, OneDnn.WeightReordersForKey(key));
            using var y2 = Tensor.Conv2d(x, w, null, padding: 1);
            Assert.True(start + 1 == OneDnn.WeightReordersForKey(key), $"the second forward reordered the weights again (seed {seed})");
            Assert.Equal(y1.ToFloatArray(), y2.ToFloatArray());

            // Backward-data wants the weights in its own layout: one more reorder, then none on a second backward.
            using var gy = Tensor.Randn(y1.ShapeArray(), gen);
            y1.Backward(gy);
            var afterBackward = OneDnn.WeightReordersForKey(key);
            Assert.True(afterBackward <= start + 2, $"backward-data reordered {afterBackward - start - 1} times (seed {seed})");
            y2.Backward(gy);
            Assert.Equal(afterBackward, OneDnn.WeightReordersForKey(key));

            // An optimizer-style in-place update bumps the storage version: exactly one new reorder, and the
            // result follows the new weights.
            using (GradMode.NoGrad())
            using (var step = Tensor.Randn(w.ShapeArray(), gen, std: 0.1))
                w.AddInPlace(step, -1);
            using var y3 = Tensor.Conv2d(x, w, null, padding: 1);
            Assert.Equal(afterBackward + 1, OneDnn.WeightReordersForKey(key));
            var (xs, ws) = (x.ToDoubleArray(), w.ToDoubleArray());
            SumTolerance.AssertClose(ConvolutionReference.Forward(g, xs, ws),
                ConvolutionReference.Forward(g, SumTolerance.Abs(xs), SumTolerance.Abs(ws)), y3, [g.N, g.COut, g.OutH, g.OutW],
                "forward after the weight update", seed);
            using var y4 = Tensor.Conv2d(x, w, null, padding: 1);
            Assert.Equal(afterBackward + 1, OneDnn.WeightReordersForKey(key));

            // A strided view of the same storage is copied for the call and must neither use nor fill the
            // parameter's cache entry: with O = C the transposed weight fits the same geometry, so a wrongly
            // shared key would return the untransposed weights.
            using var wd = w.Detach();
            using var wT = wd.Permute(1, 0, 2, 3);
            using var y5 = Tensor.Conv2d(x, wT, null, padding: 1);
            Assert.Equal(afterBackward + 1, OneDnn.WeightReordersForKey(key));
            var wts = wT.ToDoubleArray();
            SumTolerance.AssertClose(ConvolutionReference.Forward(g, xs, wts),
                ConvolutionReference.Forward(g, SumTolerance.Abs(xs), SumTolerance.Abs(wts)), y5, [g.N, g.COut, g.OutH, g.OutW],
                "forward with a transposed view of the weight", seed);
        }
        finally
        {
            OneDnn.LayoutPolicy = saved;
        }
    }

    [Fact]
    public void FreeingAWeightDropsItsCachedCopies()
    {
        var saved = OneDnn.LayoutPolicy;
        OneDnn.LayoutPolicy = OneDnnLayoutPolicy.Blocked;
        try
        {
            var g = TestUtil.Fresh(out _);
            using var x = Tensor.Randn([1, 16, 9, 9], g);
            var w = Tensor.Randn([16, 16, 3, 3], g);
            var key = (ulong)w.Storage.Id;
            using (var y = Tensor.Conv2d(x, w, null, padding: 1)) { }
            Assert.Equal(1UL, OneDnn.WeightReordersForKey(key));
            var cachedBefore = OneDnn.Stats.CachedWeights;
            w.Dispose();
            Assert.Equal(cachedBefore - 1, OneDnn.Stats.CachedWeights);
        }
        finally
        {
            OneDnn.LayoutPolicy = saved;
        }
    }
}

