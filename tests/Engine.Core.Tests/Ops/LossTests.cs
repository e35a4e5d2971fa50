using Engine.Reference;

namespace Engine.Tests.Ops;

public class LossTests
{
    // Losses are sums of O(1..10) float32 terms accumulated partly in float: a few ulps (1.2e-7) per term over
    // at most a few hundred rows stays well inside 1e-5 relative; the absolute part covers values near 0.
    private const double LossAtol = 1e-5, LossRtol = 1e-5;
    // Gradients are differences of O(1) probabilities scaled by weights ≤ 2: absolute error a few ulps.
    private const double GradAtol = 1e-5, GradRtol = 1e-4;

    private const int Ignore = -100;

    public static TheoryData<Reduction, bool, double> CrossEntropyCases()
    {
        var data = new TheoryData<Reduction, bool, double>();
        foreach (var r in Enum.GetValues<Reduction>())
            foreach (var weighted in new[] { false, true })
                foreach (var eps in new[] { 0.0, 0.1 })
                    data.Add(r, weighted, eps);
        return data;
    }

    /// <summary>Targets in [0, c), about a fifth of them ignoreIndex.</summary>
    private static long[] RandomTargets(Generator g, int n, int c, double ignoreFraction = 0.2) =>
        Enumerable.Range(0, n).Select(_ => g.NextDouble() < ignoreFraction ? Ignore : g.NextInt64(c)).ToArray();

    private static double[] Rounded(double[] v) => v.Select(x => (double)(float)x).ToArray();

    private static RefTensor Rounded(RefTensor r) => new(r.Shape, Rounded(r.Data));

    private static Tensor Logits(double[] data, int n, int c, bool strided)
    {
        var r = new RefTensor([n, c], data);
        return strided ? TestUtil.NonContiguous(r) : r.ToTensor();
    }

    [Theory]
    [MemberData(nameof(CrossEntropyCases))]
    public void CrossEntropyForwardMatchesReference(Reduction reduction, bool weighted, double eps)
    {
        var g = TestUtil.Fresh(out var seed);
        // small odd sizes, one class, and one large batch of 1203 classes that runs rows in parallel
        var sizes = new List<(int N, int C)> { (1, 1), (3, 2), (300, 1203) };
        for (var k = 0; k < 5; k++) sizes.Add((1 + (int)g.NextInt64(13), 1 + (int)g.NextInt64(11)));
        foreach (var (n, c) in sizes)
        {
            var x = Rounded(RefTensor.Random(g, [n, c], -5, 5).Data);
            var t = RandomTargets(g, n, c);
            t[0] = g.NextInt64(c); // at least one row counts, so Mean is finite
            var w = weighted ? Rounded(RefTensor.Random(g, [c], 0.1, 2).Data) : null;
            using var logits = Logits(x, n, c, strided: n % 2 == 1);
            // odd batches read the targets through a strided view (column 0 of an (N, 2) tensor)
            using var pairs = Tensor.From(t.SelectMany(v => new[] { v, -7L }).ToArray(), n, 2);
            using var target = n % 2 == 1 ? pairs.Select(1, 0) : Tensor.From(t, n);
            using var weight = w is null ? null : Tensor.From(w.Select(v => (float)v).ToArray(), c);
            using var loss = Losses.CrossEntropy(logits, target, weight, Ignore, reduction, eps);
            var expected = LossReference.CrossEntropy(x, n, c, t, w, Ignore, reduction, eps);
            TestUtil.AssertClose(expected, loss.ToDoubleArray(), $"cross_entropy N={n} C={c} {reduction} weighted={weighted} ε={eps}", seed, LossAtol, LossRtol);
            Assert.Equal(reduction == Reduction.None ? [n] : Array.Empty<int>(), loss.ShapeArray());
        }
    }

    [Theory]
    [MemberData(nameof(CrossEntropyCases))]
    public void CrossEntropyReferenceBackwardPassesGradcheck(Reduction reduction, bool weighted, double eps)
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 6, c = 5;
        var t = RandomTargets(g, n, c, 0.3);
        t[0] = 2;
        var w = weighted ? RefTensor.Random(g, [c], 0.1, 2).Data : null;
        var x = RefTensor.Random(g, [n, c], -3, 3).Data;
        var result = Gradcheck.Check(
            inp => LossReference.CrossEntropy(inp[0], n, c, t, w, Ignore, reduction, eps),
            (inp, u) => [LossReference.CrossEntropyBackward(inp[0], n, c, t, w, Ignore, reduction, eps, u)],
            [x], g);
        Assert.True(result.Passed, $"{reduction} weighted={weighted} ε={eps}: {result} (seed {seed})");
    }

    [Theory]
    [MemberData(nameof(CrossEntropyCases))]
    public void CrossEntropyBackwardMatchesReferenceBackward(Reduction reduction, bool weighted, double eps)
    {
        var g = TestUtil.Fresh(out var seed);
        // the second size runs rows in parallel; the reference backward is O(N·C²) with smoothing, so C stays moderate
        foreach (var (n, c) in new[] { (1 + (int)g.NextInt64(17), 1 + (int)g.NextInt64(13)), (61, 401) })
        {
            var x = Rounded(RefTensor.Random(g, [n, c], -5, 5).Data);
            var t = RandomTargets(g, n, c);
            t[^1] = g.NextInt64(c);
            var w = weighted ? Rounded(RefTensor.Random(g, [c], 0.1, 2).Data) : null;
            using var logits = Logits(x, n, c, strided: true).RequireGrad();
            using var target = Tensor.From(t, n);
            using var weight = w is null ? null : Tensor.From(w.Select(v => (float)v).ToArray(), c);
            using var loss = Losses.CrossEntropy(logits, target, weight, Ignore, reduction, eps);
            var u = Rounded(RefTensor.Random(g, loss.ShapeArray()).Data);
            using var gy = Tensor.FromDoubles(u, loss.ShapeArray());
            loss.Backward(gy);
            var expected = LossReference.CrossEntropyBackward(x, n, c, t, w, Ignore, reduction, eps, u);
            TestUtil.AssertClose(new RefTensor([n, c], expected), logits.Grad!, $"cross_entropy backward N={n} C={c} {reduction} weighted={weighted} ε={eps}", seed, GradAtol, GradRtol);
        }
    }

    [Fact]
    public void CrossEntropyOfUniformLogitsIsLogC()
    {
        // equal logits give p = 1/C for every class, so −log p = log C whatever the target and smoothing
        using var logits = Tensor.Zeros([4, 7]);
        using var target = Tensor.From([0L, 3L, 6L, 2L], 4);
        using var loss = Losses.CrossEntropy(logits, target, labelSmoothing: 0.3);
        Assert.Equal(Math.Log(7), loss.Item(), 6);
    }

    [Fact]
    public void CrossEntropyWithEveryRowIgnoredIsNaNWithZeroGradient()
    {
        var g = TestUtil.Fresh(out var seed);
        var x = RefTensor.Random(g, [3, 4], -2, 2);
        using var logits = x.ToTensor().RequireGrad();
        using var target = Tensor.From([-1L, -1L, -1L], 3);
        using var mean = Losses.CrossEntropy(logits, target, ignoreIndex: -1);
        Assert.True(double.IsNaN(mean.Item()), $"mean over no rows should be NaN as in PyTorch, got {mean.Item()} (seed {seed})");
        mean.Backward();
        Assert.All(logits.Grad!.ToDoubleArray(), v => Assert.Equal(0.0, v));
        using var sum = Losses.CrossEntropy(logits, target, ignoreIndex: -1, reduction: Reduction.Sum);
        Assert.Equal(0.0, sum.Item());

        using var empty = Tensor.Zeros([0, 5]);
        using var noTargets = Tensor.Zeros([0], DType.Int64);
        using var emptyMean = Losses.CrossEntropy(empty, noTargets);
        Assert.True(double.IsNaN(emptyMean.Item()));
        using var emptyNone = Losses.CrossEntropy(empty, noTargets, reduction: Reduction.None);
        Assert.Equal([0], emptyNone.ShapeArray());
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.2)]
    public void CrossEntropyWithExtremeLogitsStaysFinite(double eps)
    {
        var g = TestUtil.Fresh(out var seed);
        const int n = 6, c = 9;
        // ±80 overflows exp in float32 unless the row max is subtracted; the true class is sometimes the smallest
        var x = Rounded(RefTensor.Random(g, [n, c], -1, 1).Data.Select(v => v < 0 ? -80.0 : 80.0 * v).ToArray());
        var t = Enumerable.Range(0, n).Select(i => (long)(i * 2 % c)).ToArray();
        x[0 * c + t[0]] = -80;
        x[1 * c + t[1]] = 80;
        using var logits = Tensor.FromDoubles(x, [n, c]).RequireGrad();
        using var target = Tensor.From(t, n);
        using var loss = Losses.CrossEntropy(logits, target, labelSmoothing: eps);
        Assert.True(double.IsFinite(loss.Item()), $"loss {loss.Item()} (seed {seed})");
        // losses reach ~160 here, so a few float32 ulps of 160 is ~1e-5 absolute
        TestUtil.AssertClose(LossReference.CrossEntropy(x, n, c, t, null, Ignore, Reduction.Mean, eps), loss.ToDoubleArray(), "extreme loss", seed, 1e-4, LossRtol);
        loss.Backward();
        var expected = LossReference.CrossEntropyBackward(x, n, c, t, null, Ignore, Reduction.Mean, eps, [1.0]);
        TestUtil.AssertClose(new RefTensor([n, c], expected), logits.Grad!, "extreme gradient", seed, GradAtol, GradRtol);
    }

    [Fact]
    public void CrossEntropyBadInputsAreClearErrors()
    {
        using var logits = Tensor.Zeros([4, 5]);
        using var floatTarget = Tensor.Zeros([4]);
        var e = Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(logits, floatTarget));
        Assert.Contains("CrossEntropy", e.Message);
        Assert.Contains("int64", e.Message);
        Assert.Contains("float32", e.Message);

        using var shortTarget = Tensor.Zeros([3], DType.Int64);
        e = Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(logits, shortTarget));
        Assert.Contains("[3]", e.Message);
        Assert.Contains("[4, 5]", e.Message);

        using var badValue = Tensor.From([0L, 4L, 5L, -100L], 4);
        e = Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(logits, badValue));
        Assert.Contains("target value 5", e.Message);
        Assert.Contains("row 2", e.Message);
        Assert.Contains("5 classes", e.Message);

        using var negative = Tensor.From([0L, -1L, 1L, 1L], 4);
        e = Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(logits, negative));
        Assert.Contains("target value -1", e.Message);

        using var target = Tensor.From([0L, 1L, 2L, 3L], 4);
        using var weight = Tensor.Ones([4]);
        e = Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(logits, target, weight));
        Assert.Contains("weight", e.Message);
        Assert.Contains("[5]", e.Message);

        using var flat = Tensor.Zeros([5]);
        e = Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(flat, target));
        Assert.Contains("[N, C]", e.Message);

        e = Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(logits, target, labelSmoothing: 1.5));
        Assert.Contains("labelSmoothing", e.Message);
    }

    [Theory]
    [InlineData(Reduction.None)]
    [InlineData(Reduction.Mean)]
    [InlineData(Reduction.Sum)]
    public void LossesLeaveOnlyTheirResultInTheDisposeScope(Reduction reduction)
    {
        var g = TestUtil.Fresh(out _);
        using var logits = RefTensor.Random(g, [6, 5]).ToTensor().RequireGrad();
        using var target = Tensor.From([0L, 4L, Ignore, 2L, 1L, 3L], 6);
        using var weight = Tensor.Ones([5]);
        using var probs = Tensor.Rand([6, 5], g);
        Func<Tensor>[] losses =
        [
            () => Losses.CrossEntropy(logits, target, weight, Ignore, reduction, 0.1),
            () => Losses.BinaryCrossEntropyWithLogits(logits, probs, weight, reduction),
            () => Losses.SmoothL1(logits, probs, 0.5, reduction),
            () => Losses.L1(logits, probs, reduction),
        ];
        foreach (var loss in losses)
        {
            using var scope = DisposeScope.Begin();
            var y = loss();
            Assert.Equal(1, scope.Count);
            using (var gy = Tensor.OnesLike(y)) y.Backward(gy);
            Assert.Equal(1, scope.Count);
            logits.ZeroGrad();
        }
    }

    // ---- binary cross-entropy with logits ----

    public static TheoryData<Reduction, int> BceCases()
    {
        var data = new TheoryData<Reduction, int>();
        foreach (var r in Enum.GetValues<Reduction>())
            for (var weightKind = 0; weightKind < 4; weightKind++) data.Add(r, weightKind);
        return data;
    }

    /// <summary>Weight shapes for logits (n, c): none, per class (c), per row (n, 1), full (n, c).</summary>
    private static int[]? WeightShape(int kind, int n, int c) => kind switch
    {
        0 => null,
        1 => [c],
        2 => [n, 1],
        _ => [n, c],
    };

    [Theory]
    [MemberData(nameof(BceCases))]
    public void BceWithLogitsMatchesReferenceForwardAndBackward(Reduction reduction, int weightKind)
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (n, c) in new[] { (1 + (int)g.NextInt64(9), 1 + (int)g.NextInt64(9)), (97, 101) })
        {
            var rx = Rounded(RefTensor.Random(g, [n, c], -6, 6));
            var rt = Rounded(RefTensor.Random(g, [n, c], 0, 1).Map(v => v < 0.3 ? 1 : v < 0.6 ? 0 : v));
            var ws = WeightShape(weightKind, n, c);
            var rw = ws is null ? null : Rounded(RefTensor.Random(g, ws, 0.2, 2));
            using var x = TestUtil.NonContiguous(rx).RequireGrad();
            using var t = rt.ToTensor().RequireGrad();
            using var w = rw?.ToTensor().RequireGrad();
            using var loss = Losses.BinaryCrossEntropyWithLogits(x, t, w, reduction);
            var elementwise = LossReference.BinaryCrossEntropyWithLogits(rx, rt, rw);
            var what = $"bce N={n} C={c} {reduction} weight {(ws is null ? "none" : ShapeUtil.Format(ws))}";
            TestUtil.AssertClose(LossReference.Reduce(elementwise, reduction), loss.ToDoubleArray(), what, seed, LossAtol, LossRtol);

            var u = Rounded(RefTensor.Random(g, loss.ShapeArray()).Data);
            using var gy = Tensor.FromDoubles(u, loss.ShapeArray());
            loss.Backward(gy);
            var (dx, dt, dw) = LossReference.BinaryCrossEntropyWithLogitsBackward(rx, rt, rw, LossReference.ReduceBackward([n, c], reduction, u));
            TestUtil.AssertClose(dx, x.Grad!, what + " d/dx", seed, GradAtol, GradRtol);
            TestUtil.AssertClose(dt, t.Grad!, what + " d/dt", seed, GradAtol, GradRtol);
            // d/dw sums losses of up to 101 elements per weight: a few ulps of that sum
            if (dw is not null) TestUtil.AssertClose(dw, w!.Grad!, what + " d/dw", seed, 1e-4, GradRtol);
        }
    }

    [Fact]
    public void BceReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [3, 4], wShape = [4];
        var result = Gradcheck.Check(
            inp => LossReference.BinaryCrossEntropyWithLogits(new RefTensor(shape, inp[0]), new RefTensor(shape, inp[1]), new RefTensor(wShape, inp[2])).Data,
            (inp, u) =>
            {
                var (dx, dt, dw) = LossReference.BinaryCrossEntropyWithLogitsBackward(
                    new RefTensor(shape, inp[0]), new RefTensor(shape, inp[1]), new RefTensor(wShape, inp[2]), new RefTensor(shape, u));
                return [dx.Data, dt.Data, dw!.Data];
            },
            [RefTensor.Random(g, shape, -4, 4).Data, RefTensor.Random(g, shape, 0, 1).Data, RefTensor.Random(g, wShape, 0.2, 2).Data], g);
        Assert.True(result.Passed, $"{result} (seed {seed})");
    }

    [Fact]
    public void BceWithExtremeLogitsStaysFinite()
    {
        var g = TestUtil.Fresh(out var seed);
        // log(σ(x)) in float32 is −inf for x ≤ −104 and log(1 − σ(x)) for x ≥ 17 unless the stable form is used
        var rx = new RefTensor([6], [-80, 80, -80, 80, 30, -30]);
        var rt = new RefTensor([6], [0, 1, 1, 0, 0, 1]);
        using var x = rx.ToTensor().RequireGrad();
        using var t = rt.ToTensor();
        using var loss = Losses.BinaryCrossEntropyWithLogits(x, t, reduction: Reduction.None);
        TestUtil.AssertClose(LossReference.BinaryCrossEntropyWithLogits(rx, rt, null), loss, "extreme bce", seed, LossAtol, LossRtol);
        using var s = loss.Sum();
        s.Backward();
        TestUtil.AssertClose(LossReference.BinaryCrossEntropyWithLogitsBackward(rx, rt, null, rx.Map(_ => 1)).Dx, x.Grad!, "extreme bce d/dx", seed, GradAtol, GradRtol);
    }

    [Fact]
    public void BceBadInputsAreClearErrors()
    {
        using var x = Tensor.Zeros([3, 4]);
        using var t = Tensor.Zeros([3, 5]);
        var e = Assert.Throws<ArgumentException>(() => Losses.BinaryCrossEntropyWithLogits(x, t));
        Assert.Contains("BinaryCrossEntropyWithLogits", e.Message);
        Assert.Contains("[3, 4]", e.Message);
        Assert.Contains("[3, 5]", e.Message);
        using var t2 = Tensor.Zeros([3, 4]);
        using var w = Tensor.Ones([2, 3, 4]);
        e = Assert.Throws<ArgumentException>(() => Losses.BinaryCrossEntropyWithLogits(x, t2, w));
        Assert.Contains("[2, 3, 4]", e.Message);
        using var ti = Tensor.Zeros([3, 4], DType.Int64);
        e = Assert.Throws<ArgumentException>(() => Losses.BinaryCrossEntropyWithLogits(x, ti));
        Assert.Contains("int64", e.Message);
    }

    // ---- smooth-L1 and L1 ----

    public static TheoryData<Reduction, double> SmoothL1Cases()
    {
        var data = new TheoryData<Reduction, double>();
        foreach (var r in Enum.GetValues<Reduction>())
            foreach (var beta in new[] { 0.0, 1.0 / 9, 1.0, 2.5 })
                data.Add(r, beta);
        return data;
    }

    [Theory]
    [MemberData(nameof(SmoothL1Cases))]
    public void SmoothL1MatchesReferenceForwardAndBackward(Reduction reduction, double beta)
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var shape in new[] { TestUtil.RandomShape(g, 2, 11), [517, 4], [0, 4] })
        {
            var ra = Rounded(RefTensor.Random(g, shape, -3, 3));
            var rb = Rounded(RefTensor.Random(g, shape, -3, 3));
            using var a = TestUtil.NonContiguous(ra).RequireGrad();
            using var b = rb.ToTensor().RequireGrad();
            using var loss = Losses.SmoothL1(a, b, beta, reduction);
            var what = $"smooth_l1 {ShapeUtil.Format(shape)} β={beta} {reduction}";
            TestUtil.AssertClose(LossReference.Reduce(LossReference.SmoothL1(ra, rb, beta), reduction), loss.ToDoubleArray(), what, seed, LossAtol, LossRtol);
            if (ra.Numel == 0) continue;
            var u = Rounded(RefTensor.Random(g, loss.ShapeArray()).Data);
            using var gy = Tensor.FromDoubles(u, loss.ShapeArray());
            loss.Backward(gy);
            var up = LossReference.ReduceBackward(shape, reduction, u);
            var da = RefTensor.Zip(up, LossReference.SmoothL1Derivative(ra, rb, beta), (p, q) => p * q);
            TestUtil.AssertClose(da, a.Grad!, what + " d/dinput", seed, GradAtol, GradRtol);
            TestUtil.AssertClose(da.Map(v => -v), b.Grad!, what + " d/dtarget", seed, GradAtol, GradRtol);
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.5)]
    [InlineData(1.0)]
    public void SmoothL1ReferenceDerivativePassesGradcheck(double beta)
    {
        var g = TestUtil.Fresh(out var seed);
        var a = RefTensor.Random(g, [19], -3, 3).Data;
        var b = RefTensor.Random(g, [19], -3, 3).Data;
        // keep finite differences off the kinks: d = 0 (L1) and |d| = β (where the second derivative jumps)
        for (var i = 0; i < a.Length; i++)
            while (Math.Abs(a[i] - b[i]) < 1e-3 || Math.Abs(Math.Abs(a[i] - b[i]) - beta) < 1e-3) a[i] += 0.01;
        var result = Gradcheck.Check(
            inp => LossReference.SmoothL1(new RefTensor([19], inp[0]), new RefTensor([19], inp[1]), beta).Data,
            (inp, u) =>
            {
                var d = LossReference.SmoothL1Derivative(new RefTensor([19], inp[0]), new RefTensor([19], inp[1]), beta).Data;
                return [d.Select((v, i) => u[i] * v).ToArray(), d.Select((v, i) => -u[i] * v).ToArray()];
            },
            [a, b], g);
        Assert.True(result.Passed, $"β={beta}: {result} (seed {seed})");
    }

    [Fact]
    public void L1IsSmoothL1WithZeroBetaAndHasZeroGradientAtEquality()
    {
        var g = TestUtil.Fresh(out var seed);
        var ra = Rounded(RefTensor.Random(g, [5, 7], -2, 2));
        var rb = Rounded(RefTensor.Random(g, [5, 7], -2, 2));
        rb.Data[4] = ra.Data[4];
        using var a = ra.ToTensor().RequireGrad();
        using var b = rb.ToTensor();
        using var loss = Losses.L1(a, b, Reduction.Sum);
        TestUtil.AssertClose(LossReference.Reduce(LossReference.SmoothL1(ra, rb, 0), Reduction.Sum), loss.ToDoubleArray(), "l1", seed, LossAtol, LossRtol);
        loss.Backward();
        TestUtil.AssertClose(LossReference.SmoothL1Derivative(ra, rb, 0), a.Grad!, "l1 d/dinput", seed, 0, 0);
        Assert.Equal(0.0, a.Grad!.ToDoubleArray()[4]);
        Assert.Null(b.Grad);
    }

    [Fact]
    public void RegressionLossBadInputsAreClearErrors()
    {
        using var a = Tensor.Zeros([4, 4]);
        using var b = Tensor.Zeros([4, 5]);
        var e = Assert.Throws<ArgumentException>(() => Losses.SmoothL1(a, b));
        Assert.Contains("SmoothL1", e.Message);
        Assert.Contains("[4, 5]", e.Message);
        e = Assert.Throws<ArgumentException>(() => Losses.L1(a, b));
        Assert.Contains("L1", e.Message);
        using var c = Tensor.Zeros([4, 4]);
        e = Assert.Throws<ArgumentException>(() => Losses.SmoothL1(a, c, beta: -1));
        Assert.Contains("beta", e.Message);
    }
}
