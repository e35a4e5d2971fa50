// Self-test checks of the element-wise and reduction ops (forward and gradients).
using Engine.Reference;

namespace Engine.Diagnostics;

public static partial class SelfTest
{
    // float32 ops vs double: a handful of ulps for transcendental functions (TensorPrimitives' vectorized
    // exp/log/tanh are within ~2 ulp ≈ 2.4e-7 relative), and the norm-wise error sits well below 1e-5.
    private const double ElementwiseTolerance = 1e-5;

    private static IEnumerable<SelfTestCheck> ElementwiseChecks()
    {
        foreach (var op in Enum.GetValues<UnaryOp>())
            yield return new SelfTestCheck(op.ToString().ToLowerInvariant(), (device, g) => UnaryCheck(op, device, g));
        foreach (var op in new[] { BinaryOp.Add, BinaryOp.Sub, BinaryOp.Mul, BinaryOp.Div, BinaryOp.Pow, BinaryOp.Maximum, BinaryOp.Minimum, BinaryOp.AddRelu })
            yield return new SelfTestCheck(op.ToString().ToLowerInvariant(), (device, g) => BinaryCheck(op, device, g));
        yield return new SelfTestCheck("where", WhereCheck);
        yield return new SelfTestCheck("compare", CompareCheck);
        yield return new SelfTestCheck("int64", Int64Check);
        yield return new SelfTestCheck("cast", CastCheck);
    }

    private static IEnumerable<SelfTestResult> UnaryCheck(UnaryOp op, Device device, Generator g)
    {
        var (lo, hi, a, b) = op switch
        {
            UnaryOp.Log or UnaryOp.Sqrt or UnaryOp.PowScalar or UnaryOp.Reciprocal => (0.2, 3.0, 1.7, 0.0),
            UnaryOp.Clamp => (-2.0, 2.0, -0.5, 0.8),
            _ => (-3.0, 3.0, 0.0, 0.0),
        };
        var name = op.ToString().ToLowerInvariant();
        var r = RefTensor.Random(g, OddShape(g, 33, 65), lo, hi);
        var u = RefTensor.Random(g, r.Shape);
        using var x = Upload(r, device, requiresGrad: op != UnaryOp.Sign);
        using var y = op switch
        {
            UnaryOp.Neg => x.Neg(), UnaryOp.Exp => x.Exp(), UnaryOp.Log => x.Log(), UnaryOp.Sqrt => x.Sqrt(),
            UnaryOp.Abs => x.Abs(), UnaryOp.Relu => x.Relu(), UnaryOp.Sigmoid => x.Sigmoid(), UnaryOp.Tanh => x.Tanh(),
            UnaryOp.PowScalar => x.Pow(a), UnaryOp.Clamp => x.Clamp(a, b), UnaryOp.Sign => x.Sign(),
            UnaryOp.Square => x.Square(), UnaryOp.Reciprocal => x.Reciprocal(), UnaryOp.Softplus => x.Softplus(),
            _ => throw new ArgumentOutOfRangeException(nameof(op)),
        };
        yield return Compare(name, "forward", device, r.Map(v => ElementwiseReference.Unary(op, v, a, b)), y, ElementwiseTolerance);
        if (op == UnaryOp.Sign) yield break;
        using var gy = Upload(u, device);
        y.Backward(gy);
        var expected = new RefTensor(r.Shape, r.Data.Select((v, i) => u.Data[i] * ElementwiseReference.UnaryDerivative(op, v, a, b)).ToArray());
        yield return Compare(name, "grad x", device, expected, x.Grad!, ElementwiseTolerance);
    }

    private static IEnumerable<SelfTestResult> BinaryCheck(BinaryOp op, Device device, Generator g)
    {
        var (lo, hi) = op is BinaryOp.Pow or BinaryOp.Div ? (0.3, 2.5) : (-2.0, 2.0);
        var name = op.ToString().ToLowerInvariant();
        var shape = OddShape(g, 17, 9, 33);
        var ra = RefTensor.Random(g, shape, lo, hi);
        var rb = RefTensor.Random(g, [shape[1], 1], lo, hi); // broadcast along dims 0 and 2
        using var a = Upload(ra, device, true);
        using var b = Upload(rb, device, true);
        using var y = op switch
        {
            BinaryOp.Add => a + b, BinaryOp.Sub => a - b, BinaryOp.Mul => a * b, BinaryOp.Div => a / b,
            BinaryOp.Pow => a.Pow(b), BinaryOp.Maximum => a.Maximum(b), BinaryOp.AddRelu => a.AddRelu(b), _ => a.Minimum(b),
        };
        yield return Compare(name, "forward", device, RefTensor.Zip(ra, rb, (x, z) => ElementwiseReference.Binary(op, x, z)), y, ElementwiseTolerance);
        var u = RefTensor.Random(g, y.ShapeArray());
        using var gy = Upload(u, device);
        y.Backward(gy);
        var ga = RefTensor.Zip(RefTensor.Zip(ra, rb, (x, z) => ElementwiseReference.BinaryDerivative(op, x, z).Da), u, (d, w) => d * w).SumTo(ra.Shape);
        var gb = RefTensor.Zip(RefTensor.Zip(ra, rb, (x, z) => ElementwiseReference.BinaryDerivative(op, x, z).Db), u, (d, w) => d * w).SumTo(rb.Shape);
        yield return Compare(name, "grad a", device, ga, a.Grad!, ElementwiseTolerance);
        // gradients summed over broadcast dims accumulate ~n float32 roundings
        yield return Compare(name, "grad b", device, gb, b.Grad!, 1e-4);
    }

    private static IEnumerable<SelfTestResult> WhereCheck(Device device, Generator g)
    {
        var ra = RefTensor.Random(g, OddShape(g, 9, 41));
        var rb = RefTensor.Random(g, [ra.Shape[1]]);
        using var a = Upload(ra, device, true);
        using var b = Upload(rb, device, true);
        using var cond = a.Gt(0.0);
        using var y = Tensor.Where(cond, a, b);
        var c = ra.Map(v => v > 0 ? 1 : 0);
        yield return Compare("where", "forward", device, RefTensor.Zip(RefTensor.Zip(c, ra, (m, v) => m * v), RefTensor.Zip(c, rb, (m, v) => (1 - m) * v), (x, z) => x + z), y, 0);
        using var s = y.Sum();
        s.Backward();
        yield return Compare("where", "grad a", device, c, a.Grad!, 0);
        yield return Compare("where", "grad b", device, c.Map(m => 1 - m).SumTo(rb.Shape), b.Grad!, 1e-6);
    }

    private static IEnumerable<SelfTestResult> CompareCheck(Device device, Generator g)
    {
        // float32 on a grid of 1/4 (ties are common) with NaNs (every comparison false but ne), b broadcast along dims
        // 0 and 2; uint8 results, exact
        var shape = OddShape(g, 17, 9, 33);
        double Draw() => g.NextInt64(13) == 0 ? double.NaN : g.NextInt64(17) / 4.0 - 2;
        var ra = new RefTensor(shape, Enumerable.Range(0, (int)ShapeUtil.Numel(shape)).Select(_ => Draw()).ToArray());
        var rb = new RefTensor([shape[1], 1], Enumerable.Range(0, shape[1]).Select(_ => Draw()).ToArray());
        using var a = Upload(ra, device);
        using var b = Upload(rb, device);
        foreach (var op in new[] { BinaryOp.Eq, BinaryOp.Ne, BinaryOp.Lt, BinaryOp.Le, BinaryOp.Gt, BinaryOp.Ge })
        {
            using var y = op switch
            {
                BinaryOp.Eq => a.Eq(b), BinaryOp.Ne => a.Ne(b), BinaryOp.Lt => a.Lt(b),
                BinaryOp.Le => a.Le(b), BinaryOp.Gt => a.Gt(b), _ => a.Ge(b),
            };
            yield return Compare("compare", op.ToString().ToLowerInvariant(), device,
                                 RefTensor.Zip(ra, rb, (x, z) => ElementwiseReference.Binary(op, x, z)), y, 0);
        }
    }

    private static IEnumerable<SelfTestResult> Int64Check(Device device, Generator g)
    {
        // int64 arithmetic with negative operands (division floors, as for PyTorch's floor_divide), b broadcast and never
        // 0; |a|, |b| < 2^25 so that every product, and so the reference, is exact in double
        var shape = OddShape(g, 17, 9, 33);
        var ra = new RefTensor(shape, Enumerable.Range(0, (int)ShapeUtil.Numel(shape)).Select(_ => (double)(g.NextInt64(1L << 26) - (1L << 25))).ToArray());
        var rb = new RefTensor([shape[1], 1], Enumerable.Range(0, shape[1]).Select(_ =>
        {
            var v = 1 + g.NextInt64(g.NextInt64(2) == 0 ? 9 : 1L << 25);
            return (double)(g.NextInt64(2) == 0 ? v : -v);
        }).ToArray());
        using var a = UploadAs(ra, DType.Int64, device);
        using var b = UploadAs(rb, DType.Int64, device);
        foreach (var op in new[] { BinaryOp.Add, BinaryOp.Sub, BinaryOp.Mul, BinaryOp.Div, BinaryOp.Maximum, BinaryOp.Minimum })
        {
            using var y = op switch
            {
                BinaryOp.Add => a + b, BinaryOp.Sub => a - b, BinaryOp.Mul => a * b, BinaryOp.Div => a / b,
                BinaryOp.Maximum => a.Maximum(b), _ => a.Minimum(b),
            };
            yield return Compare("int64", op.ToString().ToLowerInvariant(), device, RefTensor.Zip(ra, rb, (x, z) => op switch
            {
                BinaryOp.Div => FloorDivide((long)x, (long)z),
                _ => ElementwiseReference.Binary(op, x, z),
            }), y, 0);
        }
    }

    private static double FloorDivide(long a, long b)
    {
        var q = a / b;
        return a % b != 0 && (a < 0) != (b < 0) ? q - 1 : q;
    }

    private static IEnumerable<SelfTestResult> CastCheck(Device device, Generator g)
    {
        // dtype conversions with in-range values, strided sources: float32 → int64 truncates toward zero; int64 → float32
        // rounds to nearest (values beyond 2^24 included); float32 → uint8 truncates [0, 256); uint8 → float32 is exact
        var shape = OddShape(g, 9, 41);
        var n = (int)ShapeUtil.Numel(shape);
        RefTensor Values(Func<double> draw) => new(shape, Enumerable.Range(0, n).Select(_ => draw()).ToArray());
        var floats = Values(() => (float)((g.NextDouble() - 0.5) * 2000));
        var longs = Values(() => (double)(g.NextInt64(1L << 41) - (1L << 40)));
        var bytes = Values(() => (float)(g.NextDouble() * 255.99));
        foreach (var (part, source, from, to, expected) in new[]
                 {
                     ("float32 to int64", floats, DType.Float32, DType.Int64, floats.Map(Math.Truncate)),
                     ("int64 to float32", longs, DType.Int64, DType.Float32, longs.Map(v => (float)v)),
                     ("float32 to uint8", bytes, DType.Float32, DType.UInt8, bytes.Map(Math.Truncate)),
                     ("uint8 to float32", bytes.Map(Math.Truncate), DType.UInt8, DType.Float32, bytes.Map(Math.Truncate)),
                 })
        {
            // the source transposed in storage, so the conversion reads it with strides
            using var stored = UploadAs(new RefTensor([shape[1], shape[0]], Transpose(source.Data, shape[0], shape[1])), from, device);
            using var view = stored.Transpose(0, 1);
            using var y = view.To(to);
            yield return Compare("cast", part, device, expected, y, 0);
        }
    }

    /// <summary>The reference values as a tensor of <paramref name="dtype"/> on the device, converted on the host (an int64
    /// beyond 2^24 would not survive a float32 upload).</summary>
    private static Tensor UploadAs(RefTensor r, DType dtype, Device device)
    {
        using var host = dtype switch
        {
            DType.Int64 => Tensor.From(r.Data.Select(v => (long)v).ToArray(), r.Shape),
            DType.UInt8 => Tensor.From(r.Data.Select(v => (byte)v).ToArray(), r.Shape),
            _ => r.ToTensor(),
        };
        return host.To(device);
    }

    private static double[] Transpose(double[] data, int rows, int columns)
    {
        var t = new double[data.Length];
        for (var i = 0; i < rows; i++)
            for (var j = 0; j < columns; j++) t[j * rows + i] = data[i * columns + j];
        return t;
    }

    private static IEnumerable<SelfTestCheck> ReductionChecks()
    {
        yield return new SelfTestCheck("sum", (d, g) => SumCheck(d, g, mean: false));
        yield return new SelfTestCheck("mean", (d, g) => SumCheck(d, g, mean: true));
        yield return new SelfTestCheck("max", MaxCheck);
    }

    private static IEnumerable<SelfTestResult> SumCheck(Device device, Generator g, bool mean)
    {
        var name = mean ? "mean" : "sum";
        var r = RefTensor.Random(g, OddShape(g, 7, 129, 9));
        using var x = Upload(r, device, true);
        using var y = mean ? x.Mean([0, 2]) : x.Sum([0, 2]);
        var n = r.Shape[0] * r.Shape[2];
        var expected = r.Reduce([0, 2], v => mean ? v.Average() : v.Sum());
        yield return Compare(name, "forward", device, new RefTensor([r.Shape[1]], expected.Data), y, 1e-6);
        var u = RefTensor.Random(g, [r.Shape[1]]);
        using var gy = Upload(u, device);
        y.Backward(gy);
        var gx = RefTensor.Zip(new RefTensor([1, r.Shape[1], 1], u.Data), RefTensor.Zeros(r.Shape), (w, _) => mean ? w / n : w);
        yield return Compare(name, "grad x", device, gx, x.Grad!, 1e-6);
    }

    private static IEnumerable<SelfTestResult> MaxCheck(Device device, Generator g)
    {
        var r = RefTensor.Random(g, OddShape(g, 9, 65));
        using var x = Upload(r, device, true);
        var (v, i) = x.Max(1);
        using (v)
        using (i)
        {
            var expected = r.Reduce([1], vals => vals.Max());
            yield return Compare("max", "forward", device, new RefTensor([r.Shape[0]], expected.Data), v, 0);
            using var s = v.Sum();
            s.Backward();
            var grad = RefTensor.Zeros(r.Shape);
            for (var row = 0; row < r.Shape[0]; row++)
            {
                var best = 0;
                for (var k = 1; k < r.Shape[1]; k++)
                    if (r.Data[row * r.Shape[1] + k] > r.Data[row * r.Shape[1] + best]) best = k;
                grad.Data[row * r.Shape[1] + best] = 1;
            }
            yield return Compare("max", "grad x", device, grad, x.Grad!, 0);
        }
    }
}
