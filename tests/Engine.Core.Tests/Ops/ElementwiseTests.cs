using Engine.Reference;

namespace Engine.Tests.Ops;

public class ElementwiseTests
{
    public static TheoryData<UnaryOp> UnaryOps => new(Enum.GetValues<UnaryOp>());

    private static (double Lo, double Hi, double A, double B) Domain(UnaryOp op) => op switch
    {
        UnaryOp.Log or UnaryOp.Sqrt or UnaryOp.PowScalar or UnaryOp.Reciprocal => (0.2, 3, 1.7, 0),
        UnaryOp.Clamp => (-2, 2, -0.5, 0.8),
        UnaryOp.Exp => (-3, 3, 0, 0),
        _ => (-3, 3, 0, 0),
    };

    private static Tensor Apply(UnaryOp op, Tensor x, double a, double b) => op switch
    {
        UnaryOp.Neg => x.Neg(),
        UnaryOp.Exp => x.Exp(),
        UnaryOp.Log => x.Log(),
        UnaryOp.Sqrt => x.Sqrt(),
        UnaryOp.Abs => x.Abs(),
        UnaryOp.Relu => x.Relu(),
        UnaryOp.Sigmoid => x.Sigmoid(),
        UnaryOp.Tanh => x.Tanh(),
        UnaryOp.PowScalar => x.Pow(a),
        UnaryOp.Clamp => x.Clamp(a, b),
        UnaryOp.Sign => x.Sign(),
        UnaryOp.Square => x.Square(),
        UnaryOp.Reciprocal => x.Reciprocal(),
        UnaryOp.Softplus => x.Softplus(),
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    [Theory]
    [MemberData(nameof(UnaryOps))]
    public void UnaryForwardMatchesReferenceOnEveryLength(UnaryOp op)
    {
        var g = TestUtil.Fresh(out var seed);
        var (lo, hi, a, b) = Domain(op);
        // every length 0..70 hits each SIMD remainder; plus a long one that runs in parallel pieces
        foreach (var n in Enumerable.Range(0, 71).Append(70_001))
        {
            var r = RefTensor.Random(g, [n], lo, hi);
            using var x = r.ToTensor();
            using var y = Apply(op, x, a, b);
            TestUtil.AssertClose(r.Map(v => ElementwiseReference.Unary(op, v, a, b)), y, $"{op} n={n}", seed);
        }
    }

    [Theory]
    [MemberData(nameof(UnaryOps))]
    public void UnaryOnStridedInput(UnaryOp op)
    {
        var g = TestUtil.Fresh(out var seed);
        var (lo, hi, a, b) = Domain(op);
        var r = RefTensor.Random(g, TestUtil.RandomShape(g, 3, 9), lo, hi);
        using var x = TestUtil.NonContiguous(r);
        Assert.False(x.IsContiguous && x.Numel > 1 && r.Shape[0] > 1 && r.Shape[^1] > 1);
        using var y = Apply(op, x, a, b);
        TestUtil.AssertClose(r.Map(v => ElementwiseReference.Unary(op, v, a, b)), y, $"{op} strided", seed);
    }

    [Theory]
    [MemberData(nameof(UnaryOps))]
    public void UnaryReferenceDerivativePassesGradcheck(UnaryOp op)
    {
        if (op == UnaryOp.Sign) return; // piecewise constant: derivative 0 almost everywhere, checked below
        var g = TestUtil.Fresh(out var seed);
        var (lo, hi, a, b) = Domain(op);
        var x = RefTensor.Random(g, [23], lo, hi).Data;
        // keep finite differences away from kinks (relu/abs at 0, clamp at its bounds)
        for (var i = 0; i < x.Length; i++)
            if (Math.Abs(x[i]) < 1e-3 || Math.Abs(x[i] - a) < 1e-3 || Math.Abs(x[i] - b) < 1e-3) x[i] += 0.01;
        var result = Gradcheck.Check(
            inp => inp[0].Select(v => ElementwiseReference.Unary(op, v, a, b)).ToArray(),
            (inp, u) => [inp[0].Select((v, i) => u[i] * ElementwiseReference.UnaryDerivative(op, v, a, b)).ToArray()],
            [x], g);
        Assert.True(result.Passed, $"{op}: {result} (seed {seed})");
    }

    [Theory]
    [MemberData(nameof(UnaryOps))]
    public void UnaryBackwardMatchesReferenceBackward(UnaryOp op)
    {
        var g = TestUtil.Fresh(out var seed);
        var (lo, hi, a, b) = Domain(op);
        var r = RefTensor.Random(g, TestUtil.RandomShape(g, 2, 11), lo, hi);
        var u = RefTensor.Random(g, r.Shape);
        using var x = r.ToTensor().RequireGrad();
        using var y = Apply(op, x, a, b);
        if (op == UnaryOp.Sign)
        {
            Assert.False(y.RequiresGrad);
            return;
        }
        using var gy = u.ToTensor();
        y.Backward(gy);
        var expected = new RefTensor(r.Shape, r.Data.Select((v, i) => u.Data[i] * ElementwiseReference.UnaryDerivative(op, v, a, b)).ToArray());
        TestUtil.AssertClose(expected, x.Grad!, $"{op} backward", seed);
    }

    public static TheoryData<BinaryOp> BinaryOps =>
        new(BinaryOp.Add, BinaryOp.Sub, BinaryOp.Mul, BinaryOp.Div, BinaryOp.Pow, BinaryOp.Maximum, BinaryOp.Minimum, BinaryOp.AddRelu);

    private static Tensor Apply(BinaryOp op, Tensor a, Tensor b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Sub => a - b,
        BinaryOp.Mul => a * b,
        BinaryOp.Div => a / b,
        BinaryOp.Pow => a.Pow(b),
        BinaryOp.Maximum => a.Maximum(b),
        BinaryOp.Minimum => a.Minimum(b),
        BinaryOp.AddRelu => a.AddRelu(b),
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    private static readonly (int[] A, int[] B)[] BroadcastCases =
    [
        ([5], [5]), ([3, 7], [7]), ([3, 1], [1, 7]), ([2, 3, 5], [3, 1]), ([1], [4, 1, 3]), ([], [3, 2]),
        ([4, 1, 6, 1], [5, 1, 1]), ([0, 3], [3]), ([2, 40_000], [1]), ([2, 1, 20_000], [2, 3, 1]),
    ];

    private static (double, double) BinaryDomain(BinaryOp op) => op is BinaryOp.Pow or BinaryOp.Div ? (0.3, 2.5) : (-2, 2);

    /// <summary>The activation gradients (from the upstream gradient g and the saved output y) are the float formulas of
    /// the backend contract, bit for bit, whatever path a row takes: vector lanes and the scalar tail (odd lengths),
    /// gathered strided runs, broadcast scalars, and special values (NaN, ±0, ±inf). Outputs start NaN-poisoned.</summary>
    [Theory]
    [InlineData(BinaryOp.ReluBackward)]
    [InlineData(BinaryOp.SigmoidBackward)]
    [InlineData(BinaryOp.TanhBackward)]
    public void ActivationBackwardIsTheFloatFormulaBitForBit(BinaryOp op)
    {
        var g = TestUtil.Fresh(out var seed);
        float[] special = [float.NaN, 0f, -0f, float.PositiveInfinity, float.NegativeInfinity, 1f, -1f, 1e-30f];
        float Draw() => g.NextInt64(6) == 0 ? special[g.NextInt64(special.Length)] : (float)(2.5 * (2 * g.NextDouble() - 1));
        static float Formula(BinaryOp op, float gv, float yv) => op switch
        {
            BinaryOp.ReluBackward => yv > 0 ? gv : 0f,
            BinaryOp.SigmoidBackward => gv * yv * (1f - yv),
            _ => gv * (1f - yv * yv),
        };
        int[][] shapes = [[1], [7], [8], [9], [33], [1003], [5, 17], [3, 2, 41]];
        foreach (var shape in shapes)
            foreach (var layout in new[] { "dense", "strided", "scalar g", "scalar y" })
            {
                var count = (int)ShapeUtil.Numel(shape);
                var gShape = layout == "scalar g" ? new[] { 1 } : shape;
                var yShape = layout == "scalar y" ? new[] { 1 } : shape;
                var gv = Enumerable.Range(0, (int)ShapeUtil.Numel(gShape)).Select(_ => Draw()).ToArray();
                var yv = Enumerable.Range(0, (int)ShapeUtil.Numel(yShape)).Select(_ => Draw()).ToArray();
                // strided: g read through a transposed view of its storage (rows of stride > 1, gathered per row)
                using var gStored = layout == "strided" ? TestUtil.NonContiguous(new RefTensor(gShape, [.. gv.Select(v => (double)v)])) : Tensor.From(gv, gShape);
                using var yt = Tensor.From(yv, yShape);
                // the backend takes operands already broadcast to the output's shape (stride 0 where a size was 1)
                using var gt = gStored.Reshape([.. Enumerable.Repeat(1, shape.Length - gShape.Length), .. gShape]).Expand(shape);
                using var ye = yt.Reshape([.. Enumerable.Repeat(1, shape.Length - yShape.Length), .. yShape]).Expand(shape);
                using var dst = Tensor.Full(shape, float.NaN);
                Backends.Cpu.Binary(op, gt, ye, dst);
                var actual = dst.ToFloatArray();
                for (var i = 0; i < count; i++)
                {
                    var expected = Formula(op, gv[gv.Length == 1 ? 0 : i], yv[yv.Length == 1 ? 0 : i]);
                    Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual[i]),
                                $"{op} {ShapeUtil.Format(shape)} {layout}: element {i} is {actual[i]:R}, the formula gives {expected:R} (seed {seed})");
                }
            }
    }

    [Theory]
    [MemberData(nameof(BinaryOps))]
    public void BinaryForwardBroadcastsLikeTheReference(BinaryOp op)
    {
        var g = TestUtil.Fresh(out var seed);
        var (lo, hi) = BinaryDomain(op);
        foreach (var (sa, sb) in BroadcastCases)
        {
            var ra = RefTensor.Random(g, sa, lo, hi);
            var rb = RefTensor.Random(g, sb, lo, hi);
            using var a = TestUtil.NonContiguous(ra);
            using var b = rb.ToTensor();
            using var y = Apply(op, a, b);
            TestUtil.AssertClose(RefTensor.Zip(ra, rb, (x, z) => ElementwiseReference.Binary(op, x, z)), y, $"{op} {ShapeUtil.Format(sa)}⊕{ShapeUtil.Format(sb)}", seed);
            using var y2 = Apply(op, b, a);
            TestUtil.AssertClose(RefTensor.Zip(rb, ra, (x, z) => ElementwiseReference.Binary(op, x, z)), y2, $"{op} {ShapeUtil.Format(sb)}⊕{ShapeUtil.Format(sa)}", seed);
        }
    }

    [Theory]
    [MemberData(nameof(BinaryOps))]
    public void BinaryReferenceDerivativePassesGradcheck(BinaryOp op)
    {
        var g = TestUtil.Fresh(out var seed);
        var (lo, hi) = BinaryDomain(op);
        var a = RefTensor.Random(g, [17], lo, hi).Data;
        var b = RefTensor.Random(g, [17], lo, hi).Data;
        var result = Gradcheck.Check(
            inp => inp[0].Select((v, i) => ElementwiseReference.Binary(op, v, inp[1][i])).ToArray(),
            (inp, u) =>
            [
                inp[0].Select((v, i) => u[i] * ElementwiseReference.BinaryDerivative(op, v, inp[1][i]).Da).ToArray(),
                inp[0].Select((v, i) => u[i] * ElementwiseReference.BinaryDerivative(op, v, inp[1][i]).Db).ToArray(),
            ],
            [a, b], g);
        Assert.True(result.Passed, $"{op}: {result} (seed {seed})");
    }

    [Theory]
    [MemberData(nameof(BinaryOps))]
    public void BinaryBackwardSumsOverBroadcastDims(BinaryOp op)
    {
        var g = TestUtil.Fresh(out var seed);
        var (lo, hi) = BinaryDomain(op);
        foreach (var (sa, sb) in BroadcastCases.Take(8))
        {
            var ra = RefTensor.Random(g, sa, lo, hi);
            var rb = RefTensor.Random(g, sb, lo, hi);
            using var a = ra.ToTensor().RequireGrad();
            using var b = rb.ToTensor().RequireGrad();
            using var y = Apply(op, a, b);
            var u = RefTensor.Random(g, y.ShapeArray());
            using var gy = u.ToTensor();
            y.Backward(gy);
            var da = RefTensor.Zip(ra, rb, (x, z) => ElementwiseReference.BinaryDerivative(op, x, z).Da);
            var db = RefTensor.Zip(ra, rb, (x, z) => ElementwiseReference.BinaryDerivative(op, x, z).Db);
            var ga = RefTensor.Zip(da, u, (d, w) => d * w).SumTo(sa);
            var gb = RefTensor.Zip(db, u, (d, w) => d * w).SumTo(sb);
            TestUtil.AssertClose(ga, a.Grad!, $"{op} d/da {ShapeUtil.Format(sa)}⊕{ShapeUtil.Format(sb)}", seed);
            TestUtil.AssertClose(gb, b.Grad!, $"{op} d/db {ShapeUtil.Format(sa)}⊕{ShapeUtil.Format(sb)}", seed);
        }
    }

    /// <summary>AddRelu is Add then Relu bit for bit (NaN kept, −0 to +0), in values and gradients, on every broadcast
    /// case and on a row long enough for the vectorized path.</summary>
    [Fact]
    public void AddReluIsAddThenReluBitForBit()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (sa, sb) in BroadcastCases.Append(([3, 1000], [3, 1000])))
        {
            var ra = RefTensor.Random(g, sa, -2, 2);
            var rb = RefTensor.Random(g, sb, -2, 2);
            using var a0 = ra.ToTensor();
            using var b0 = rb.ToTensor();
            // exact zeros of the sum (−0 + −0 = −0, 1.5 − 1.5 = +0), a NaN and an infinity where there is room
            var av = a0.ToFloatArray();
            var bv = b0.ToFloatArray();
            if (av.Length >= 4 && bv.Length == av.Length)
            {
                (av[0], bv[0]) = (-0f, -0f);
                (av[1], bv[1]) = (1.5f, -1.5f);
                (av[2], av[3]) = (float.NaN, float.NegativeInfinity);
            }
            using var a = Tensor.From(av, sa).RequireGrad();
            using var b = Tensor.From(bv, sb).RequireGrad();
            using var a2 = Tensor.From(av, sa).RequireGrad();
            using var b2 = Tensor.From(bv, sb).RequireGrad();
            using var fused = a.AddRelu(b);
            using var sum = a2.Add(b2);
            using var separate = sum.Relu();
            var what = $"{ShapeUtil.Format(sa)}⊕{ShapeUtil.Format(sb)} (seed {seed})";
            Assert.True(Bits(separate).SequenceEqual(Bits(fused)), $"values differ, {what}");
            using var u = RefTensor.Random(g, fused.ShapeArray()).ToTensor();
            fused.Backward(u);
            separate.Backward(u);
            Assert.True(Bits(a2.Grad!).SequenceEqual(Bits(a.Grad!)), $"gradient of a differs, {what}");
            Assert.True(Bits(b2.Grad!).SequenceEqual(Bits(b.Grad!)), $"gradient of b differs, {what}");
        }

        static int[] Bits(Tensor t) => t.ToFloatArray().Select(BitConverter.SingleToInt32Bits).ToArray();
    }

    [Fact]
    public void AddReluNeedsFloatOperands()
    {
        using var a = Tensor.From<long>([1, -2], [2]);
        var e = Assert.Throws<ArgumentException>(() => a.AddRelu(a));
        Assert.Contains("add_relu", e.Message);
    }

    [Fact]
    public void MaximumSplitsGradientOnTies()
    {
        using var a = Tensor.From([1f, 2f, 3f]).RequireGrad();
        using var b = Tensor.From([1f, 5f, 0f]).RequireGrad();
        using var y = a.Maximum(b);
        using var s = y.Sum();
        s.Backward();
        Assert.Equal([0.5, 0, 1], a.Grad!.ToDoubleArray());
        Assert.Equal([0.5, 1, 0], b.Grad!.ToDoubleArray());
    }

    [Fact]
    public void ComparisonsGiveUInt8AndWorkOnIntegers()
    {
        using var a = Tensor.From([1L, 5L, 3L]);
        using var b = Tensor.From([2L, 5L, 1L]);
        using var lt = a.Lt(b);
        using var eq = a.Eq(b);
        using var sum = a + b;
        Assert.Equal(DType.UInt8, lt.DType);
        Assert.Equal([1, 0, 0], lt.ToDoubleArray());
        Assert.Equal([0, 1, 0], eq.ToDoubleArray());
        Assert.Equal([3L, 10L, 4L], sum.ToInt64Array());
    }

    [Fact]
    public void WhereAndMaskedFillRouteGradients()
    {
        var g = TestUtil.Fresh(out var seed);
        var ra = RefTensor.Random(g, [4, 5]);
        var rb = RefTensor.Random(g, [5]);
        using var a = ra.ToTensor().RequireGrad();
        using var b = rb.ToTensor().RequireGrad();
        using var cond = a.Gt(0.0);
        using var y = Tensor.Where(cond, a, b);
        var c = ra.Map(v => v > 0 ? 1 : 0);
        TestUtil.AssertClose(RefTensor.Zip(RefTensor.Zip(c, ra, (m, v) => m * v), RefTensor.Zip(c, rb, (m, v) => (1 - m) * v), (x, z) => x + z), y, "where", seed);
        using var s = y.Sum();
        s.Backward();
        TestUtil.AssertClose(c, a.Grad!, "where d/da", seed);
        TestUtil.AssertClose(c.Map(m => 1 - m).SumTo([5]), b.Grad!, "where d/db", seed);

        using var filled = a.MaskedFill(cond, -7);
        TestUtil.AssertClose(ra.Map(v => v > 0 ? -7 : v), filled, "masked_fill", seed);
    }

    [Fact]
    public void MismatchedShapesNameTheOpAndShapes()
    {
        using var a = Tensor.Zeros([2, 3]);
        using var b = Tensor.Zeros([4]);
        var e = Assert.Throws<ArgumentException>(() => a + b);
        Assert.Contains("add", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[4]", e.Message);
    }

    [Fact]
    public void MismatchedDtypesAndDisposedTensorsAreClearErrors()
    {
        using var a = Tensor.Zeros([3]);
        using var i = Tensor.Zeros([3], DType.Int64);
        var e = Assert.Throws<ArgumentException>(() => a * i);
        Assert.Contains("mul", e.Message);
        Assert.Contains("int64", e.Message);
        var d = Tensor.Ones([2]);
        d.Dispose();
        var e2 = Assert.Throws<ObjectDisposedException>(() => a.Slice(0, 0, 2) + d);
        Assert.Contains("disposed", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => i.Exp());
        Assert.Contains("exp", e3.Message);
    }

    [Fact]
    public void NaNPropagatesThroughReluSignAndMaximum()
    {
        using var x = Tensor.From([float.NaN, -1f, 2f]);
        using var relu = x.Relu();
        using var sign = x.Sign();
        using var zero = Tensor.Zeros([3]);
        using var max = x.Maximum(zero);
        Assert.True(double.IsNaN(relu.ToDoubleArray()[0]));
        Assert.True(double.IsNaN(sign.ToDoubleArray()[0]));
        Assert.True(double.IsNaN(max.ToDoubleArray()[0]));
        Assert.Equal([0.0, 2.0], relu.ToDoubleArray().Skip(1));
        Assert.True(double.IsNaN(ElementwiseReference.Unary(UnaryOp.Relu, double.NaN)));
        Assert.True(double.IsNaN(ElementwiseReference.Unary(UnaryOp.Sign, double.NaN)));
    }
}
