using Engine.Reference;

namespace Engine.Tests.Ops;

public class PoolingTests
{
    // Max pooling and nearest upsampling copy input values, so forward results must be exact; backward sums
    // at most a few float32 gradients per element, a few ulps of O(1) values.
    private const double GradAtol = 1e-6, GradRtol = 1e-6;

    public static TheoryData<int, int, int, int, int, int> Windows => new()
    {
        { 3, 3, 2, 2, 1, 1 }, // ResNet stem
        { 1, 1, 2, 2, 0, 0 }, // FPN P6
        { 2, 2, 2, 2, 0, 0 },
        { 3, 3, 1, 1, 1, 1 }, // heavily overlapping
        { 3, 2, 1, 2, 1, 0 },
        { 2, 3, 2, 1, 0, 1 },
        { 5, 5, 3, 3, 2, 2 },
    };

    private static Pool2dWindow Window(int kh, int kw, int sh, int sw, int ph, int pw) => new(kh, kw, sh, sw, ph, pw);

    /// <summary>Random values, or small integers when <paramref name="ties"/> so that windows often hold equal maxima.</summary>
    private static RefTensor RandomMap(Generator g, int[] shape, bool ties) =>
        ties ? RefTensor.Random(g, shape, 0, 3).Map(Math.Floor) : RefTensor.Random(g, shape, -2, 2).Map(v => (double)(float)v);

    private static int[] RandomInput(Generator g, Pool2dWindow win) =>
    [
        1 + (int)g.NextInt64(3), 1 + (int)g.NextInt64(4),
        Math.Max(1, win.KernelH - 2 * win.PadH) + (int)g.NextInt64(10), Math.Max(1, win.KernelW - 2 * win.PadW) + (int)g.NextInt64(10),
    ];

    [Theory]
    [MemberData(nameof(Windows))]
    public void MaxPoolForwardMatchesReference(int kh, int kw, int sh, int sw, int ph, int pw)
    {
        var g = TestUtil.Fresh(out var seed);
        var win = Window(kh, kw, sh, sw, ph, pw);
        foreach (var ties in new[] { false, true })
            foreach (var strided in new[] { false, true })
            {
                var shape = RandomInput(g, win);
                var r = RandomMap(g, shape, ties);
                using var x = strided ? TestUtil.NonContiguous(r) : r.ToTensor();
                var (values, indices) = x.MaxPool2dWithIndices((kh, kw), (sh, sw), (ph, pw));
                using (values)
                using (indices)
                {
                    var (ev, ei) = PoolingReference.MaxPool2d(r, win);
                    var what = $"max_pool2d {ShapeUtil.Format(shape)} {win} ties={ties} strided={strided}";
                    TestUtil.AssertClose(ev, values, what, seed, 0, 0);
                    Assert.True(ei.SequenceEqual(indices.ToInt64Array()), $"{what}: indices differ (seed {seed})");
                }
            }
    }

    [Fact]
    public void MaxPoolOnALargeMapRunsRowsInParallel()
    {
        var g = TestUtil.Fresh(out var seed);
        var win = Window(3, 3, 2, 2, 1, 1);
        var r = RandomMap(g, [2, 16, 45, 37], ties: false);
        using var x = r.ToTensor().RequireGrad();
        using var y = x.MaxPool2d(3, 2, 1);
        var (ev, ei) = PoolingReference.MaxPool2d(r, win);
        TestUtil.AssertClose(ev, y, "max_pool2d large", seed, 0, 0);
        var u = RandomMap(g, y.ShapeArray(), ties: false);
        using var gy = u.ToTensor();
        y.Backward(gy);
        TestUtil.AssertClose(PoolingReference.MaxPool2dBackward(u, ei, r.Shape), x.Grad!, "max_pool2d large backward", seed, GradAtol, GradRtol);
    }

    [Fact]
    public void MaxPoolTiesGoToTheFirstElementAndOverlapsAccumulate()
    {
        // all-equal 3×3 map, 2×2 windows at stride 1: every window picks its top-left element (row-major first)
        using var x = Tensor.Ones([1, 1, 3, 3]).RequireGrad();
        var (values, indices) = x.MaxPool2dWithIndices((2, 2), (1, 1));
        using (values)
        using (indices)
        {
            Assert.Equal([0L, 1L, 3L, 4L], indices.ToInt64Array());
            using var s = values.Sum();
            s.Backward();
        }
        Assert.Equal([1.0, 1, 0, 1, 1, 0, 0, 0, 0], x.Grad!.ToDoubleArray());

        // 3×3 windows at stride 1 with padding 1 on a map whose maximum is the centre: all nine outputs pick it
        using var peak = Tensor.From([0f, 0f, 0f, 0f, 5f, 0f, 0f, 0f, 0f], 1, 1, 3, 3).RequireGrad();
        using var y = peak.MaxPool2d(3, 1, 1);
        Assert.All(y.ToDoubleArray(), v => Assert.Equal(5.0, v));
        using var sum = y.Sum();
        sum.Backward();
        Assert.Equal([0.0, 0, 0, 0, 9, 0, 0, 0, 0], peak.Grad!.ToDoubleArray());
    }

    [Theory]
    [MemberData(nameof(Windows))]
    public void MaxPoolReferenceBackwardPassesGradcheck(int kh, int kw, int sh, int sw, int ph, int pw)
    {
        var g = TestUtil.Fresh(out var seed);
        var win = Window(kh, kw, sh, sw, ph, pw);
        int[] shape = [1, 2, win.KernelH + 3, win.KernelW + 2];
        // distinct values 0.05 apart, so a finite-difference step never changes which element wins
        var perm = g.Permutation((int)ShapeUtil.Numel(shape));
        var x = perm.Select(p => p * 0.05 - 1).ToArray();
        var result = Gradcheck.Check(
            inp => PoolingReference.MaxPool2d(new RefTensor(shape, inp[0]), win).Values.Data,
            (inp, u) =>
            {
                var (v, idx) = PoolingReference.MaxPool2d(new RefTensor(shape, inp[0]), win);
                return [PoolingReference.MaxPool2dBackward(new RefTensor(v.Shape, u), idx, shape).Data];
            },
            [x], g);
        Assert.True(result.Passed, $"{win}: {result} (seed {seed})");
    }

    [Theory]
    [MemberData(nameof(Windows))]
    public void MaxPoolBackwardMatchesReferenceBackward(int kh, int kw, int sh, int sw, int ph, int pw)
    {
        var g = TestUtil.Fresh(out var seed);
        var win = Window(kh, kw, sh, sw, ph, pw);
        foreach (var ties in new[] { false, true })
        {
            var r = RandomMap(g, RandomInput(g, win), ties);
            using var x = TestUtil.NonContiguous(r).RequireGrad();
            using var y = x.MaxPool2d((kh, kw), (sh, sw), (ph, pw));
            var u = RandomMap(g, y.ShapeArray(), ties: false);
            using var gy = TestUtil.NonContiguous(u);
            y.Backward(gy);
            var (_, ei) = PoolingReference.MaxPool2d(r, win);
            TestUtil.AssertClose(PoolingReference.MaxPool2dBackward(u, ei, r.Shape), x.Grad!, $"max_pool2d backward {ShapeUtil.Format(r.Shape)} {win} ties={ties}", seed, GradAtol, GradRtol);
        }
    }

    [Fact]
    public void PoolingAndUpsamplingOfAnEmptyBatchAreEmpty()
    {
        using var x = Tensor.Zeros([0, 3, 8, 8]).RequireGrad();
        using var y = x.MaxPool2d(3, 2, 1);
        Assert.Equal([0, 3, 4, 4], y.ShapeArray());
        using var up = y.UpsampleNearest2d(2);
        Assert.Equal([0, 3, 8, 8], up.ShapeArray());
        using var s = up.Sum();
        s.Backward();
        Assert.Equal([0, 3, 8, 8], x.Grad!.ShapeArray());
    }

    [Fact]
    public void OnlyTheResultsAreLeftInTheDisposeScope()
    {
        var g = TestUtil.Fresh(out _);
        using var x = TestUtil.NonContiguous(RandomMap(g, [2, 3, 7, 6], ties: false)).RequireGrad();
        using var scope = DisposeScope.Begin();
        var pooled = x.MaxPool2d(3, 2, 1);
        Assert.Equal(1, scope.Count);
        var up = pooled.UpsampleNearest2d(2);
        Assert.Equal(2, scope.Count);
        var (values, indices) = x.MaxPool2dWithIndices((2, 2), (2, 2));
        Assert.Equal(4, scope.Count);
        using (var s = up.Sum()) s.Backward();
        Assert.Equal(4, scope.Count);
    }

    [Fact]
    public void MaxPoolBadInputsAreClearErrors()
    {
        using var x = Tensor.Zeros([1, 2, 3, 3]);
        var e = Assert.Throws<ArgumentException>(() => x.MaxPool2d(6, 1, 1));
        Assert.Contains("MaxPool2d", e.Message);
        Assert.Contains("larger than the padded input 5x5", e.Message);
        Assert.Contains("[1, 2, 3, 3]", e.Message);
        e = Assert.Throws<ArgumentException>(() => x.MaxPool2d(3, 1, 2));
        Assert.Contains("padding ≤ kernel / 2", e.Message);
        e = Assert.Throws<ArgumentException>(() => x.MaxPool2d(3, 0, 1));
        Assert.Contains("stride", e.Message);
        using var flat = Tensor.Zeros([2, 3, 3]);
        e = Assert.Throws<ArgumentException>(() => flat.MaxPool2d(2, 2));
        Assert.Contains("(N, C, H, W)", e.Message);
        Assert.Contains("[2, 3, 3]", e.Message);
        using var ints = Tensor.Zeros([1, 1, 4, 4], DType.Int64);
        e = Assert.Throws<ArgumentException>(() => ints.MaxPool2d(2, 2));
        Assert.Contains("int64", e.Message);
    }

    // ---- nearest upsampling ----

    public static TheoryData<int, int, int, int> Resizes => new()
    {
        { 5, 7, 10, 14 },  // ×2 (FPN)
        { 3, 4, 9, 12 },   // ×3
        { 4, 5, 4, 5 },    // identity
        { 7, 5, 10, 3 },   // non-integer up, down
        { 2, 3, 82, 7 },   // a ratio where float32 scale arithmetic would round below an integer
        { 9, 11, 4, 6 },   // down in both (some inputs receive no gradient)
    };

    [Theory]
    [MemberData(nameof(Resizes))]
    public void UpsampleMatchesReferenceForwardAndBackward(int h, int w, int oh, int ow)
    {
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [1 + (int)g.NextInt64(3), 1 + (int)g.NextInt64(4), h, w];
        var r = RandomMap(g, shape, ties: false);
        using var x = TestUtil.NonContiguous(r).RequireGrad();
        using var y = x.UpsampleNearest2d(oh, ow);
        var what = $"upsample_nearest2d {ShapeUtil.Format(shape)} → {oh}x{ow}";
        TestUtil.AssertClose(PoolingReference.UpsampleNearest2d(r, oh, ow), y, what, seed, 0, 0);
        var u = RandomMap(g, y.ShapeArray(), ties: false);
        using var gy = TestUtil.NonContiguous(u);
        y.Backward(gy);
        // an input pixel sums up to 41 × 3 copies (2 → 82, 3 → 7) in float32: a few ulps per addition of |g| ≤ 2
        TestUtil.AssertClose(PoolingReference.UpsampleNearest2dBackward(u, shape), x.Grad!, what + " backward", seed, 2e-5, 1e-5);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void UpsampleByScaleMatchesReference(int scale)
    {
        var g = TestUtil.Fresh(out var seed);
        // 24 planes of 23 × 31 upsampled: enough rows to run in parallel
        int[] shape = [1, 24, 23, 31];
        var r = RandomMap(g, shape, ties: false);
        using var x = r.ToTensor().RequireGrad();
        using var y = x.UpsampleNearest2d(scale);
        TestUtil.AssertClose(PoolingReference.UpsampleNearest2d(r, 23 * scale, 31 * scale), y, $"upsample ×{scale}", seed, 0, 0);
        var u = RandomMap(g, y.ShapeArray(), ties: false);
        using var gy = u.ToTensor();
        y.Backward(gy);
        TestUtil.AssertClose(PoolingReference.UpsampleNearest2dBackward(u, shape), x.Grad!, $"upsample ×{scale} backward", seed, 1e-5, 1e-5);
    }

    [Fact]
    public void UpsampleByTwoCopiesEachPixelToATwoByTwoBlock()
    {
        using var x = Tensor.From([1f, 2f, 3f, 4f], 1, 1, 2, 2).RequireGrad();
        using var y = x.UpsampleNearest2d(2);
        Assert.Equal([1.0, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4], y.ToDoubleArray());
        using var s = y.Sum();
        s.Backward();
        Assert.Equal([4.0, 4, 4, 4], x.Grad!.ToDoubleArray());
    }

    [Fact]
    public void UpsampleReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (shape, oh, ow) in new[] { (new[] { 1, 2, 3, 2 }, 6, 5), (new[] { 2, 1, 4, 5 }, 3, 2) })
        {
            var result = Gradcheck.Check(
                inp => PoolingReference.UpsampleNearest2d(new RefTensor(shape, inp[0]), oh, ow).Data,
                (inp, u) => [PoolingReference.UpsampleNearest2dBackward(new RefTensor([shape[0], shape[1], oh, ow], u), shape).Data],
                [RefTensor.Random(g, shape).Data], g);
            Assert.True(result.Passed, $"{ShapeUtil.Format(shape)} → {oh}x{ow}: {result} (seed {seed})");
        }
    }

    [Fact]
    public void UpsampleBadInputsAreClearErrors()
    {
        using var x = Tensor.Zeros([1, 2, 3, 3]);
        var e = Assert.Throws<ArgumentException>(() => x.UpsampleNearest2d(0));
        Assert.Contains("UpsampleNearest2d", e.Message);
        Assert.Contains("scale", e.Message);
        e = Assert.Throws<ArgumentException>(() => x.UpsampleNearest2d(0, 4));
        Assert.Contains("0x4", e.Message);
        using var flat = Tensor.Zeros([2, 3, 3]);
        e = Assert.Throws<ArgumentException>(() => flat.UpsampleNearest2d(2));
        Assert.Contains("[2, 3, 3]", e.Message);
        using var empty = Tensor.Zeros([1, 1, 0, 3]);
        e = Assert.Throws<ArgumentException>(() => empty.UpsampleNearest2d(4, 4));
        Assert.Contains("[1, 1, 0, 3]", e.Message);
    }
}
