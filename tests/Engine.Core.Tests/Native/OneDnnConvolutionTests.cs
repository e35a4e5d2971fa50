// Tests of the oneDNN convolutions (src/Engine.Core/Native/OneDnn.cs, native/conv2d.cpp) against
// ConvolutionReference: forward (with and without bias), backward-data, backward-weights and bias
// gradient under every layout policy, outputs poisoned with NaN; the weight-reorder cache proven
// through its counters; concurrent calls; empty batches; errors that name the call and the shapes.
// One collection: the layout policy is process-wide and these tests set it.
using Engine.Native;
using Engine.Reference;
using static Engine.Tests.Native.NativeTestData;

namespace Engine.Tests.Native;

[Collection("OneDnn")]
public class OneDnnConvolutionTests
{
    public static TheoryData<OneDnnLayoutPolicy> Policies =>
        [OneDnnLayoutPolicy.Auto, OneDnnLayoutPolicy.Blocked, OneDnnLayoutPolicy.Plain, OneDnnLayoutPolicy.Tuned];

    [Theory]
    [MemberData(nameof(Policies))]
    public void MatchesReference(OneDnnLayoutPolicy policy)
    {
        var seed = NewSeed();
        var rng = new Random(seed);
        var saved = OneDnn.LayoutPolicy;
        OneDnn.LayoutPolicy = policy;
        try
        {
            foreach (var g in ConvCases(rng))
                CheckAllPasses(g, rng, seed, weightKey: (ulong)rng.NextInt64(1, long.MaxValue));
        }
        finally
        {
            OneDnn.LayoutPolicy = saved;
        }
    }

    private static void CheckAllPasses(Conv2dGeometry g, Random rng, int seed, ulong weightKey)
    {
        var x = Uniform(rng, g.SrcLength);
        var w = Uniform(rng, g.WeightLength);
        var b = Uniform(rng, g.BiasLength);
        var dy = Uniform(rng, g.DstLength);
        var (xf, wf, bf, dyf) = (ToFloat(x), ToFloat(w), ToFloat(b), ToFloat(dy));
        // Compare against the reference on the float-rounded inputs, so only the computation is judged.
        (x, w, b, dy) = (ToDouble(xf), ToDouble(wf), ToDouble(bf), ToDouble(dyf));

        // Twice each: the second call runs the cached plan (and, under auto, the chosen variant).
        for (var repeat = 0; repeat < 2; repeat++)
        {
            var y = Poisoned(g.DstLength);
            OneDnn.Conv2dForward(g, xf, wf, bf, y, weightKey, 1);
            AssertClose($"forward+bias {g}", y, ConvolutionReference.Forward(g, x, w, b),
                        ConvolutionReference.Forward(g, Abs(x), Abs(w), Abs(b)), seed);

            y = Poisoned(g.DstLength);
            OneDnn.Conv2dForward(g, xf, wf, ReadOnlySpan<float>.Empty, y, weightKey, 1);
            AssertClose($"forward {g}", y, ConvolutionReference.Forward(g, x, w),
                        ConvolutionReference.Forward(g, Abs(x), Abs(w)), seed);

            var dx = Poisoned(g.SrcLength);
            OneDnn.Conv2dBackwardData(g, dyf, wf, dx, weightKey, 1);
            AssertClose($"backward-data {g}", dx, ConvolutionReference.BackwardData(g, dy, w),
                        ConvolutionReference.BackwardData(g, Abs(dy), Abs(w)), seed);

            var dw = Poisoned(g.WeightLength);
            var db = Poisoned(g.BiasLength);
            OneDnn.Conv2dBackwardWeights(g, xf, dyf, dw, db);
            AssertClose($"backward-weights {g}", dw, ConvolutionReference.BackwardWeights(g, x, dy),
                        ConvolutionReference.BackwardWeights(g, Abs(x), Abs(dy)), seed);
            AssertClose($"bias gradient {g}", db, ConvolutionReference.BiasGrad(g, dy),
                        ConvolutionReference.BiasGrad(g, Abs(dy)), seed);

            dw = Poisoned(g.WeightLength);
            OneDnn.Conv2dBackwardWeights(g, xf, dyf, dw, Span<float>.Empty);
            AssertClose($"backward-weights without bias {g}", dw, ConvolutionReference.BackwardWeights(g, x, dy),
                        ConvolutionReference.BackwardWeights(g, Abs(x), Abs(dy)), seed);
        }
    }

    [Fact]
    public void WeightReordersAreCachedUntilTheVersionChanges()
    {
        var seed = NewSeed();
        var rng = new Random(seed);
        var saved = OneDnn.LayoutPolicy;
        // The blocked route computes with 16-channel-blocked weights, so the plain weights need a reorder.
        OneDnn.LayoutPolicy = OneDnnLayoutPolicy.Blocked;
        try
        {
            var g = Conv2dGeometry.Square(2, 32, 8, 7, 32, 3, pad: 1);
            var key = (ulong)rng.NextInt64(1, long.MaxValue);
            var x = ToFloat(Uniform(rng, g.SrcLength));
            var w = ToFloat(Uniform(rng, g.WeightLength));
            var totalBefore = OneDnn.Stats.WeightReorders;
            Assert.Equal(0ul, OneDnn.WeightReordersForKey(key));

            var first = Poisoned(g.DstLength);
            OneDnn.Conv2dForward(g, x, w, ReadOnlySpan<float>.Empty, first, key, 1);
            Assert.Equal(1ul, OneDnn.WeightReordersForKey(key));
            Assert.True(OneDnn.Stats.WeightReorders > totalBefore, $"the global counter did not move (seed {seed})");

            var second = Poisoned(g.DstLength);
            OneDnn.Conv2dForward(g, x, w, ReadOnlySpan<float>.Empty, second, key, 1);
            Assert.Equal(1ul, OneDnn.WeightReordersForKey(key));
            Assert.Equal(first, second);

            // Writing the weights without a new version keeps the cached copy: the documented contract.
            var w2 = ToFloat(Uniform(rng, g.WeightLength));
            var stale = Poisoned(g.DstLength);
            OneDnn.Conv2dForward(g, x, w2, ReadOnlySpan<float>.Empty, stale, key, 1);
            Assert.Equal(first, stale);
            Assert.Equal(1ul, OneDnn.WeightReordersForKey(key));

            // A new version: exactly one reorder, and the result follows the new weights.
            var fresh = Poisoned(g.DstLength);
            OneDnn.Conv2dForward(g, x, w2, ReadOnlySpan<float>.Empty, fresh, key, 2);
            Assert.Equal(2ul, OneDnn.WeightReordersForKey(key));
            AssertClose($"forward after version bump {g}", fresh,
                        ConvolutionReference.Forward(g, ToDouble(x), ToDouble(w2)),
                        ConvolutionReference.Forward(g, Abs(ToDouble(x)), Abs(ToDouble(w2))), seed);
            OneDnn.Conv2dForward(g, x, w2, ReadOnlySpan<float>.Empty, fresh, key, 2);
            Assert.Equal(2ul, OneDnn.WeightReordersForKey(key));

            // Key 0 never caches: every call reorders, and the per-key count of other keys is untouched.
            var before = OneDnn.Stats.WeightReorders;
            OneDnn.Conv2dForward(g, x, w2, ReadOnlySpan<float>.Empty, fresh, 0, 0);
            OneDnn.Conv2dForward(g, x, w2, ReadOnlySpan<float>.Empty, fresh, 0, 0);
            Assert.True(OneDnn.Stats.WeightReorders >= before + 2, $"key 0 should reorder on every call (seed {seed})");
            Assert.Equal(2ul, OneDnn.WeightReordersForKey(key));

            // Clearing the caches forces one new reorder for the same version.
            OneDnn.ClearCaches();
            OneDnn.Conv2dForward(g, x, w2, ReadOnlySpan<float>.Empty, fresh, key, 2);
            Assert.Equal(3ul, OneDnn.WeightReordersForKey(key));
            Assert.True(OneDnn.Stats.PrimitivesCreated > 0);
        }
        finally
        {
            OneDnn.LayoutPolicy = saved;
        }
    }

    [Fact]
    public void ConcurrentCallsOnOneGeometryAreIndependent()
    {
        var seed = NewSeed();
        var g = Conv2dGeometry.Square(1, 17, 9, 8, 20, 3, pad: 1, stride: 2);
        var inputs = Enumerable.Range(0, 6).Select(i =>
        {
            var rng = new Random(seed + i);
            return (X: ToFloat(Uniform(rng, g.SrcLength)), W: ToFloat(Uniform(rng, g.WeightLength)));
        }).ToArray();
        var outputs = inputs.Select(_ => Poisoned(g.DstLength)).ToArray();
        OneDnn.ClearCaches();   // every thread races on creating the plan and on the first (timing) call
        Parallel.For(0, inputs.Length, new ParallelOptions { MaxDegreeOfParallelism = 6 }, i =>
        {
            for (var repeat = 0; repeat < 3; repeat++)
                OneDnn.Conv2dForward(g, inputs[i].X, inputs[i].W, ReadOnlySpan<float>.Empty, outputs[i], (ulong)(1000 + i), 1);
        });
        for (var i = 0; i < inputs.Length; i++)
        {
            var (x, w) = (ToDouble(inputs[i].X), ToDouble(inputs[i].W));
            AssertClose($"thread {i} {g}", outputs[i], ConvolutionReference.Forward(g, x, w),
                        ConvolutionReference.Forward(g, Abs(x), Abs(w)), seed);
        }
    }

    [Fact]
    public void EmptyBatchWritesZeroGradients()
    {
        var g = Conv2dGeometry.Square(0, 4, 5, 5, 6, 3, pad: 1);
        Assert.Equal(0, g.DstLength);
        OneDnn.Conv2dForward(g, [], new float[g.WeightLength], [], []);
        OneDnn.Conv2dBackwardData(g, [], new float[g.WeightLength], []);
        var dw = Poisoned(g.WeightLength);
        var db = Poisoned(g.BiasLength);
        OneDnn.Conv2dBackwardWeights(g, [], [], dw, db);
        Assert.All(dw, v => Assert.Equal(0f, v));
        Assert.All(db, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void GeometryErrorsNameTheShapesAndTheFix()
    {
        var e = Assert.Throws<ArgumentException>(() => Conv2dGeometry.Square(2, 8, 5, 5, 6, 3, groups: 3));
        Assert.Contains("groups=3", e.Message);
        Assert.Contains("CIn=8", e.Message);
        Assert.Contains("(2, 8, 5, 5)", e.Message);

        e = Assert.Throws<ArgumentException>(() => Conv2dGeometry.Square(1, 3, 4, 4, 3, 5));
        Assert.Contains("larger than the padded input", e.Message);
        Assert.Contains("5x5", e.Message);

        e = Assert.Throws<ArgumentException>(() => Conv2dGeometry.Square(1, 3, 4, 4, 3, 3, stride: 0));
        Assert.Contains("strides must be positive", e.Message);
    }

    [Fact]
    public void BufferLengthErrorsNameTheCallAndTheBuffer()
    {
        var g = Conv2dGeometry.Square(1, 3, 5, 5, 4, 3, pad: 1);
        var e = Assert.Throws<ArgumentException>(() =>
            OneDnn.Conv2dForward(g, new float[g.SrcLength - 1], new float[g.WeightLength], [], new float[g.DstLength]));
        Assert.Contains("OneDnn.Conv2dForward", e.Message);
        Assert.Contains("src has 74 elements", e.Message);
        Assert.Contains("needs exactly 75", e.Message);

        e = Assert.Throws<ArgumentException>(() =>
            OneDnn.Conv2dBackwardWeights(g, new float[g.SrcLength], new float[g.DstLength], new float[g.WeightLength], new float[3]));
        Assert.Contains("diffBias has 3 elements", e.Message);
    }

    [Fact]
    public unsafe void NativeErrorsNameTheCallAndTheDims()
    {
        // A descriptor that bypasses Conv2dGeometry: the native library must still refuse it.
        var desc = Conv2dGeometry.Square(1, 3, 5, 5, 4, 3, pad: 1).ToNative();
        desc.OutH = 7;
        var buffer = new float[1000];
        fixed (float* p = buffer)
        {
            var status = EngineNative.engine_conv2d_forward(&desc, p, p, null, p, 0, 0);
            var e = Assert.Throws<EngineNativeException>(() => EngineNative.Check(status, "engine_conv2d_forward"));
            Assert.Equal("engine_conv2d_forward", e.Call);
            Assert.StartsWith("engine_conv2d_forward: out_h x out_w must be 5x5", e.Message);
            Assert.Contains("c_in=3", e.Message);
            Assert.Contains("out=7x5", e.Message);

            desc.OutH = 5;
            desc.Groups = 2;
            status = EngineNative.engine_conv2d_backward_weights(&desc, p, p, p, null);
            e = Assert.Throws<EngineNativeException>(() => EngineNative.Check(status, "engine_conv2d_backward_weights"));
            Assert.Contains("groups must divide both c_in and c_out", e.Message);
            Assert.Contains("groups=2", e.Message);

            desc.Groups = 1;
            status = EngineNative.engine_conv2d_backward_data(&desc, p, p, null, 0, 0);
            e = Assert.Throws<EngineNativeException>(() => EngineNative.Check(status, "engine_conv2d_backward_data"));
            Assert.Contains("diff_src is NULL", e.Message);
        }
    }
}
