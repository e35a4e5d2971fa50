using Engine.Reference;

namespace Engine.Tests.Ops;

public class SoftmaxTests
{
    // float32 softmax against the double reference evaluated on the same (float-rounded) inputs: exp and the
    // row sum each add a few ulps (1.2e-7 relative), so 1e-5 relative leaves room for rows of ~1000 elements;
    // the absolute part covers probabilities that underflow towards 0.
    private const double ProbAtol = 1e-6, ProbRtol = 1e-5;
    // log_softmax = x − max − log Σ: absolute error a few ulps of the largest term (|x| ≤ 100 → ~1e-5).
    private const double LogAtol = 2e-5, LogRtol = 1e-5;

    public static TheoryData<bool> Modes => new(false, true);

    private static Tensor Apply(Tensor x, int dim, bool log) => log ? x.LogSoftmax(dim) : x.Softmax(dim);

    private static RefTensor Reference(RefTensor x, int dim, bool log) =>
        log ? SoftmaxReference.LogSoftmax(x, dim) : SoftmaxReference.Softmax(x, dim);

    private static RefTensor ReferenceBackward(RefTensor x, RefTensor g, int dim, bool log) =>
        log ? SoftmaxReference.LogSoftmaxBackward(x, g, dim) : SoftmaxReference.SoftmaxBackward(x, g, dim);

    /// <summary>The values a float32 tensor actually holds, so that the reference sees the same inputs.</summary>
    private static RefTensor Rounded(RefTensor r) => new(r.Shape, r.Data.Select(v => (double)(float)v).ToArray());

    private static void AssertMatches(RefTensor expected, Tensor actual, bool log, string what, ulong seed) =>
        TestUtil.AssertClose(expected, actual, what, seed, log ? LogAtol : ProbAtol, log ? LogRtol : ProbRtol);

    [Theory]
    [MemberData(nameof(Modes))]
    public void ForwardMatchesReferenceOnEveryDim(bool log)
    {
        var g = TestUtil.Fresh(out var seed);
        for (var rank = 1; rank <= 4; rank++)
            for (var dim = -rank; dim < rank; dim++)
            {
                var r = Rounded(RefTensor.Random(g, TestUtil.RandomShape(g, rank, 9), -4, 4));
                using var x = r.ToTensor();
                using var y = Apply(x, dim, log);
                AssertMatches(Reference(r, dim, log), y, log, $"{(log ? "log_softmax" : "softmax")} {ShapeUtil.Format(r.Shape)} dim {dim}", seed);
                using var xs = TestUtil.NonContiguous(r);
                using var ys = Apply(xs, dim, log);
                AssertMatches(Reference(r, dim, log), ys, log, $"strided {ShapeUtil.Format(r.Shape)} dim {dim}", seed);
            }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void LargeRowsAndWideInnerBlocksRunInParallelPieces(bool log)
    {
        var g = TestUtil.Fresh(out var seed);
        // rows of 1203 classes in parallel; inner sizes of 1103 (prime) and 2053 split into column chunks whose last
        // one is partial on any core count
        foreach (var (shape, dim) in new[] { (new[] { 41, 1203 }, 1), (new[] { 2, 9, 1103 }, 1), (new[] { 11, 2053 }, 0), (new[] { 2100, 17 }, 0) })
        {
            var r = Rounded(RefTensor.Random(g, shape, -6, 6));
            using var x = r.ToTensor();
            using var y = Apply(x, dim, log);
            AssertMatches(Reference(r, dim, log), y, log, $"{ShapeUtil.Format(shape)} dim {dim}", seed);
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void EmptyAndScalarInputs(bool log)
    {
        foreach (var shape in new[] { new[] { 0, 5 }, [4, 0], [2, 0, 3] })
            for (var dim = 0; dim < shape.Length; dim++)
            {
                using var x = Tensor.Zeros(shape);
                using var y = Apply(x, dim, log);
                Assert.Equal(shape, y.ShapeArray());
            }
        using var s = Tensor.Scalar(3.5f);
        using var ys = Apply(s, -1, log);
        Assert.Equal(log ? 0.0 : 1.0, ys.Item());
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void ReferenceBackwardPassesGradcheck(bool log)
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (shape, dim) in new[] { (new[] { 3, 5 }, 1), (new[] { 2, 4, 3 }, 1), (new[] { 4, 3 }, 0), (new[] { 7 }, 0) })
        {
            var x = RefTensor.Random(g, shape, -3, 3).Data;
            var result = Gradcheck.Check(
                inp => Reference(new RefTensor(shape, inp[0]), dim, log).Data,
                (inp, u) => [ReferenceBackward(new RefTensor(shape, inp[0]), new RefTensor(shape, u), dim, log).Data],
                [x], g);
            Assert.True(result.Passed, $"{ShapeUtil.Format(shape)} dim {dim}: {result} (seed {seed})");
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void BackwardMatchesReferenceBackward(bool log)
    {
        var g = TestUtil.Fresh(out var seed);
        for (var rank = 1; rank <= 3; rank++)
            for (var dim = 0; dim < rank; dim++)
            {
                var r = Rounded(RefTensor.Random(g, TestUtil.RandomShape(g, rank, 8), -4, 4));
                var u = Rounded(RefTensor.Random(g, r.Shape));
                using var x = TestUtil.NonContiguous(r).RequireGrad();
                using var y = Apply(x, dim, log);
                using var gy = TestUtil.NonContiguous(u);
                y.Backward(gy);
                // gradients are differences of O(1) terms: absolute error a few ulps of the row sum
                TestUtil.AssertClose(ReferenceBackward(r, u, dim, log), x.Grad!, $"backward {ShapeUtil.Format(r.Shape)} dim {dim}", seed, 1e-5, 1e-4);
            }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void ExtremeLogitsStayFinite(bool log)
    {
        var g = TestUtil.Fresh(out var seed);
        // ±80 overflows exp in float32 (exp(89) = inf) unless the row max is subtracted
        var r = Rounded(RefTensor.Random(g, [5, 9], -1, 1).Map(v => v * 80));
        r.Data[3] = 80;
        r.Data[12] = -80;
        using var x = r.ToTensor().RequireGrad();
        using var y = Apply(x, 1, log);
        Assert.All(y.ToDoubleArray(), v => Assert.True(double.IsFinite(v), $"non-finite output (seed {seed})"));
        // log_softmax reaches −160 here; its absolute error is a few ulps of 160
        TestUtil.AssertClose(Reference(r, 1, log), y, "extreme forward", seed, log ? 1e-4 : ProbAtol, ProbRtol);
        var u = Rounded(RefTensor.Random(g, r.Shape));
        using var gy = u.ToTensor();
        y.Backward(gy);
        Assert.All(x.Grad!.ToDoubleArray(), v => Assert.True(double.IsFinite(v), $"non-finite gradient (seed {seed})"));
        TestUtil.AssertClose(ReferenceBackward(r, u, 1, log), x.Grad!, "extreme backward", seed, 1e-5, 1e-4);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void OnlyTheResultIsLeftInTheDisposeScope(bool log)
    {
        var g = TestUtil.Fresh(out _);
        using var x = TestUtil.NonContiguous(RefTensor.Random(g, [4, 6, 3])).RequireGrad();
        using var scope = DisposeScope.Begin();
        var y = Apply(x, 1, log);
        Assert.Equal(1, scope.Count);
        using (var gy = TestUtil.NonContiguous(RefTensor.Random(g, [4, 6, 3]))) y.Backward(gy);
        Assert.Equal(1, scope.Count);
    }

    [Fact]
    public void BadInputsAreClearErrors()
    {
        using var i = Tensor.Zeros([2, 3], DType.Int64);
        var e = Assert.Throws<ArgumentException>(() => i.Softmax(1));
        Assert.Contains("softmax", e.Message);
        Assert.Contains("int64", e.Message);
        using var x = Tensor.Zeros([2, 3]);
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => x.LogSoftmax(2));
        Assert.Contains("log_softmax", e2.Message);
        Assert.Contains("rank 2", e2.Message);
    }
}
