// The element-wise kernels on a GPU against the double references (the engine's ElementwiseReference for
// forward values, BinaryBackwardReference for the two-gradient kernels): every op, odd sizes, an empty and a
// scalar shape, a size large enough for several grid-stride rounds, transposed, reversed, offset and
// stride-0 (expanded) inputs, broadcasting pairs, special values (NaN, ties, zeros), and outputs
// poisoned with NaN plus a guard element past the end.
using Engine.Cuda.Kernels;
using Engine.Reference;
using Engine.Tests;

namespace Engine.Cuda.Tests.Kernels;

public sealed class ElementwiseKernelsTests
{
    // float32 results against double: CUDA's single-precision functions used here are within 4 ulp
    // (about 5e-7 relative) of the exact value (CUDA C++ Programming Guide, "Mathematical Functions"
    // appendix, without --use_fast_math), and each op adds at most a few roundings of 6e-8 on top; 1e-5
    // relative keeps a margin of 20 while an indexing or formula error is O(1). The 1e-6 absolute term
    // covers cancellation in float, e.g. 1 - y·y for tanh near ±1, where y·y is rounded before the subtraction.
    private const double Absolute = 1e-6;
    private const double Relative = 1e-5;

    /// <summary>An input layout: the view's shape, strides and offset, and the length of the buffer behind it.</summary>
    private sealed record Layout(string Name, long[] Shape, long[] Strides, long Offset, long BufferLength)
    {
        public static Layout Dense(params long[] shape) =>
            new($"dense {ElementwiseLayout.Format(shape)}", shape, ElementwiseLayout.ContiguousStrides(shape), 0, Math.Max(1, shape.Aggregate(1L, (p, s) => p * s)));
    }

    private static IEnumerable<Layout> UnaryLayouts() =>
    [
        Layout.Dense(1), Layout.Dense(7), Layout.Dense(1023), Layout.Dense(3, 5, 7), Layout.Dense(1_000_003),
        Layout.Dense(0), Layout.Dense(4, 0, 3), Layout.Dense(),
        new("transposed (9, 5) of a dense (5, 9)", [9, 5], [1, 9], 0, 45),
        new("expanded (4, 6) from a row of 6", [4, 6], [0, 1], 0, 6),
        new("reversed (11) with offset", [11], [-1], 12, 13),
        new("every other element of (2, 15)", [2, 8], [15, 2], 0, 30),
    ];

    public static TheoryData<UnaryOp> UnaryOps => new(ElementwiseKernels.UnaryOps);
    public static TheoryData<BinaryOp> BinaryOps => new(ElementwiseKernels.BinaryOps);
    public static TheoryData<BinaryOp> BinaryBackwardOps => new(ElementwiseKernels.BinaryBackwardOps);

    [CudaTheory]
    [MemberData(nameof(UnaryOps))]
    public void UnaryForwardMatchesReference(UnaryOp op)
    {
        var random = new SeededRandom();
        foreach (var layout in UnaryLayouts())
        {
            var data = UnaryInputs(op, random, layout.BufferLength);
            var expected = StridedReference.Map(layout.Shape, [new StridedInput(data, layout.Strides, layout.Offset)],
                                                v => ElementwiseReference.Unary(op, v[0]));
            using var x = GpuContext.Upload(data);
            using var y = GpuContext.Poisoned(expected.Length);
            GpuContext.Elementwise.Unary(op, new DeviceView(x, layout.Shape, layout.Strides, layout.Offset), y);
            AssertClose(expected, y.ToArray(), $"{op} forward, {layout.Name}", random.Seed);
        }
    }

    private static IEnumerable<(string Name, Layout A, Layout B)> BinaryLayouts() =>
    [
        ("same shape", Layout.Dense(7), Layout.Dense(7)),
        ("(3, 1, 5) with (4, 5)", Layout.Dense(3, 1, 5), Layout.Dense(4, 5)),
        ("(2, 3, 4, 5) with a row (5)", Layout.Dense(2, 3, 4, 5), Layout.Dense(5)),
        ("scalar with (13)", Layout.Dense(), Layout.Dense(13)),
        ("column (6, 1) with row (1, 7)", Layout.Dense(6, 1), Layout.Dense(1, 7)),
        ("dense (6, 7) with transposed (6, 7)", Layout.Dense(6, 7), new("transposed", [6, 7], [1, 6], 0, 42)),
        ("large odd", Layout.Dense(1_000_003), Layout.Dense(1_000_003)),
        ("empty (0, 3) with (3)", Layout.Dense(0, 3), Layout.Dense(3)),
        ("reversed with offset", new("reversed", [9], [-1], 9, 10), Layout.Dense(1)),
    ];

    [CudaTheory]
    [MemberData(nameof(BinaryOps))]
    public void BinaryForwardMatchesReference(BinaryOp op)
    {
        var random = new SeededRandom();
        foreach (var (name, layoutA, layoutB) in BinaryLayouts())
        {
            var (a, b) = BinaryInputs(op, random, layoutA.BufferLength, layoutB.BufferLength);
            var shape = ElementwiseLayout.BroadcastShape("test", layoutA.Shape, layoutB.Shape);
            var expected = StridedReference.Map(shape, [Aligned(a, layoutA, shape), Aligned(b, layoutB, shape)],
                                                v => ElementwiseReference.Binary(op, v[0], v[1]));
            using var deviceA = GpuContext.Upload(a);
            using var deviceB = GpuContext.Upload(b);
            using var output = GpuContext.Poisoned(expected.Length);
            GpuContext.Elementwise.Binary(op, View(deviceA, layoutA), View(deviceB, layoutB), output);
            AssertClose(expected, output.ToArray(), $"{op} forward, {name}", random.Seed);
        }
    }

    [CudaTheory]
    [MemberData(nameof(BinaryBackwardOps))]
    public void BinaryBackwardMatchesReference(BinaryOp op)
    {
        var random = new SeededRandom();
        foreach (var (name, layoutA, layoutB) in BinaryLayouts())
        {
            var (a, b) = BinaryInputs(op, random, layoutA.BufferLength, layoutB.BufferLength);
            var shape = ElementwiseLayout.BroadcastShape("test", layoutA.Shape, layoutB.Shape);
            var count = shape.Aggregate(1L, (p, s) => p * s);
            var gradOutput = random.Uniform(count, -2, 2);
            var inputs = new[] { new StridedInput(gradOutput, ElementwiseLayout.ContiguousStrides(shape)), Aligned(a, layoutA, shape), Aligned(b, layoutB, shape) };
            var expectedA = StridedReference.Map(shape, inputs, v => BinaryBackwardReference.Gradients(op, v[0], v[1], v[2]).Da);
            var expectedB = StridedReference.Map(shape, inputs, v => BinaryBackwardReference.Gradients(op, v[0], v[1], v[2]).Db);

            using var dy = GpuContext.Upload(gradOutput);
            using var deviceA = GpuContext.Upload(a);
            using var deviceB = GpuContext.Upload(b);
            using var gradA = GpuContext.Poisoned(count);
            using var gradB = GpuContext.Poisoned(count);
            GpuContext.Elementwise.BinaryBackward(op, DeviceView.Dense(dy, shape), View(deviceA, layoutA), View(deviceB, layoutB), gradA, gradB);
            AssertClose(expectedA, gradA.ToArray(), $"{op} backward da, {name}", random.Seed);
            AssertClose(expectedB, gradB.ToArray(), $"{op} backward db, {name}", random.Seed);
        }
    }

    [CudaFact]
    public void BadArgumentsAreRejectedWithTheOpAndShapes()
    {
        using var six = GpuContext.Device.Allocate<float>(6);
        using var four = GpuContext.Device.Allocate<float>(4);
        using var output = GpuContext.Device.Allocate<float>(6);
        var kernels = GpuContext.Elementwise;

        var broadcast = Assert.Throws<ArgumentException>(() =>
            kernels.Binary(BinaryOp.Add, DeviceView.Dense(six, 2, 3), DeviceView.Dense(four, 4), output));
        Assert.Contains("add_forward_kernel", broadcast.Message);
        Assert.Contains("(2, 3)", broadcast.Message);
        Assert.Contains("(4)", broadcast.Message);

        var small = Assert.Throws<ArgumentException>(() => kernels.Unary(UnaryOp.Exp, DeviceView.Dense(six, 6), four));
        Assert.Contains("exp_forward_kernel", small.Message);
        Assert.Contains("holds 4 elements", small.Message);

        var inPlace = Assert.Throws<ArgumentException>(() => kernels.Unary(UnaryOp.Relu, DeviceView.Dense(six, 6), six));
        Assert.Contains("in-place", inPlace.Message);

        var outside = Assert.Throws<ArgumentException>(() => new DeviceView(four, [2, 3]));
        Assert.Contains("outside the buffer of 4 elements", outside.Message);

        var mismatch = Assert.Throws<ArgumentException>(() =>
            kernels.BinaryBackward(BinaryOp.Pow, DeviceView.Dense(six, 6), DeviceView.Dense(six, 2, 3), DeviceView.Dense(four, 1), output, four));
        Assert.Contains("pow_backward_kernel", mismatch.Message);

        var unsupported = Assert.Throws<NotSupportedException>(() => kernels.Unary(UnaryOp.Softplus, DeviceView.Dense(six, 6), output));
        Assert.Contains("Softplus", unsupported.Message);
    }

    private static DeviceView View(DeviceBuffer<float> buffer, Layout layout) => new(buffer, layout.Shape, layout.Strides, layout.Offset);

    private static StridedInput Aligned(float[] data, Layout layout, long[] shape) =>
        new(data, ElementwiseLayout.BroadcastStrides("test", layout.Shape, layout.Strides, shape), layout.Offset);

    private static float[] UnaryInputs(UnaryOp op, SeededRandom random, long count)
    {
        var values = op switch
        {
            UnaryOp.Log or UnaryOp.Sqrt => random.Uniform(count, 1e-3, 20),
            UnaryOp.Exp => random.Uniform(count, -20, 20),
            UnaryOp.Sigmoid => random.Uniform(count, -40, 40),   // both saturated tails and the steep middle
            _ => random.Uniform(count, -5, 5),
        };
        // Kinks and special values: relu, abs and sign at ±0, relu of NaN (0, as the reference defines it).
        if (op is UnaryOp.Relu or UnaryOp.Abs or UnaryOp.Sign && count >= 3)
        {
            values[random.Random.Next((int)count)] = 0f;
            values[random.Random.Next((int)count)] = -0f;
            if (op == UnaryOp.Relu) values[random.Random.Next((int)count)] = float.NaN;
        }
        return values;
    }

    private static (float[] A, float[] B) BinaryInputs(BinaryOp op, SeededRandom random, long countA, long countB)
    {
        switch (op)
        {
            case BinaryOp.Div:
            {
                var b = random.Uniform(countB, 0.25, 4);
                for (var i = 0; i < b.Length; i += 2) b[i] = -b[i];
                return (random.Uniform(countA, -5, 5), b);
            }
            case BinaryOp.Pow:
            {
                var a = random.Uniform(countA, 0.1, 4);
                var b = random.Uniform(countB, -3, 3);
                // Negative bases with integer exponents, and the a = 0 cases of the backward convention.
                if (countA >= 4 && countB >= 4)
                {
                    a[0] = -1.5f; b[0] = 3f;
                    a[1] = -2f; b[1] = -2f;
                    a[2] = 0f; b[2] = 2f;
                    a[3] = 0f; b[3] = 0f;
                }
                return (a, b);
            }
            case BinaryOp.Maximum:
            case BinaryOp.Minimum:
            {
                // Small integers tie often, which exercises the split gradient; one NaN must propagate.
                float[] Integers(long n) => Enumerable.Range(0, (int)n).Select(_ => (float)random.Random.Next(-3, 4)).ToArray();
                var a = Integers(countA);
                var b = Integers(countB);
                if (countA >= 2) a[random.Random.Next((int)countA)] = float.NaN;
                return (a, b);
            }
            case BinaryOp.ReluBackward:
            {
                // a = ∂L/∂y; b = the relu input, with exact zeros at the kink.
                var b = random.Uniform(countB, -5, 5);
                if (countB >= 2) b[random.Random.Next((int)countB)] = 0f;
                return (random.Uniform(countA, -2, 2), b);
            }
            case BinaryOp.SigmoidBackward:
                return (random.Uniform(countA, -2, 2), random.Uniform(countB, 0, 1));    // b = σ(x) in (0, 1)
            case BinaryOp.TanhBackward:
                return (random.Uniform(countA, -2, 2), random.Uniform(countB, -1, 1));   // b = tanh(x) in (-1, 1)
            default:
                return (random.Uniform(countA, -5, 5), random.Uniform(countB, -5, 5));
        }
    }

    private static void AssertClose(double[] expected, float[] actual, string context, int seed)
    {
        Assert.True(actual.Length == expected.Length + 1, $"{context}: output buffer has {actual.Length} elements");
        for (var i = 0; i < expected.Length; i++)
        {
            var (e, a) = (expected[i], (double)actual[i]);
            var ok = double.IsNaN(e) ? double.IsNaN(a)
                   : double.IsInfinity(e) || Math.Abs(e) > float.MaxValue ? a == (float)e
                   : Math.Abs(a - e) <= Absolute + Relative * Math.Abs(e);
            Assert.True(ok, $"{context}: element {i} of {expected.Length} is {a:R}, reference {e:R} " +
                            $"(tolerance {Absolute} + {Relative}·|ref|; seed {seed})");
        }
        Assert.True(float.IsNaN(actual[^1]), $"{context}: the guard element past the {expected.Length} outputs was overwritten (seed {seed})");
    }
}
