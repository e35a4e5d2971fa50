// Every CudaBackend primitive against the CpuBackend on the same fresh random inputs (the seed is in every
// failure message): odd sizes, empty tensors, strided and broadcast views, outputs poisoned with NaN before
// the call (PoisonAllocations), and the errors the GPU reports at the next synchronization. Tolerances:
// float32 results of the same formula in a different summation order agree to a few ulps of the largest
// partial sum, so 1e-5 absolute + 1e-5 relative; exact ops (copies, indexing, sorting, pooling forward)
// compare with 0; reductions and products of length L get L-scaled float32 rounding (1e-4).
using Engine.Cuda.Backend;
using Engine.Native;
using Engine.Tests;

namespace Engine.Cuda.Tests.Backend;

public sealed partial class CudaBackendTests
{
    private static readonly Lazy<IBackend> Shared = new(() =>
    {
        if (!CudaBackendRegistration.TryRegister(out var reason)) throw new InvalidOperationException($"no CUDA backend: {reason}");
        return Backends.For(Engine.Device.Cuda(0));
    });

    public CudaBackendTests() => EngineOptions.PoisonAllocations = true;

    private static IBackend Gpu => Shared.Value;
    /// <summary>cuda:0, with the backend registered first (inputs move there before <see cref="Gpu"/> is named).</summary>
    private static Device Cuda
    {
        get
        {
            _ = Shared.Value;
            return Engine.Device.Cuda(0);
        }
    }

    private static Generator Fresh(out ulong seed)
    {
        seed = (ulong)Random.Shared.NextInt64();
        return new Generator(seed);
    }

    /// <summary>Runs <paramref name="run"/> on the CPU with <paramref name="inputs"/> and on the GPU with copies of them,
    /// and compares every output.</summary>
    private static void Parity(string what, ulong seed, Tensor[] inputs, Func<IBackend, Device, Tensor[], Tensor[]> run,
                               double atol = 1e-5, double rtol = 1e-5)
    {
        var expected = run(Backends.Cpu, Engine.Device.Cpu, inputs);
        var onGpu = inputs.Select(t => t.To(Cuda)).ToArray();
        var actual = run(Gpu, Cuda, onGpu);
        Assert.Equal(expected.Length, actual.Length);
        for (var k = 0; k < expected.Length; k++)
        {
            Assert.True(expected[k].Shape.SequenceEqual(actual[k].Shape), $"{what}: output {k} shape (seed {seed})");
            Assert.Equal(Cuda, actual[k].Device);
            var (e, a) = (expected[k].ToDoubleArray(), actual[k].ToDoubleArray());
            for (var i = 0; i < e.Length; i++)
            {
                if (double.IsNaN(e[i]) && double.IsNaN(a[i])) continue;
                if (e[i] == a[i]) continue;
                if (!(Math.Abs(a[i] - e[i]) <= atol + rtol * Math.Abs(e[i])))
                    Assert.Fail($"{what}: output {k} element {i} is {a[i]:G9} on the GPU, {e[i]:G9} on the CPU (seed {seed})");
            }
        }
    }

    private static Tensor Out(Device d, ReadOnlySpan<int> shape, DType dtype = DType.Float32) => Tensor.Empty(shape, dtype, d);

    public static TheoryData<int[]> Shapes => new() { new[] { 0, 3 }, new[] { 1 }, new[] { 7, 13 }, new[] { 3, 5, 129 }, new[] { 2, 3, 4, 5 } };

    [CudaTheory]
    [MemberData(nameof(Shapes))]
    public void FillAndCopyWithConversionIntoStridedViews(int[] shape)
    {
        var g = Fresh(out var seed);
        using var x = Tensor.Randn(shape, g, 0, 100);
        foreach (var dtype in new[] { DType.Float32, DType.Int32, DType.Int64, DType.UInt8 })
            Parity($"copy to {dtype}", seed, [x], (b, d, t) =>
            {
                var dense = Out(d, shape, dtype);
                b.Copy(t[0], dense);
                var filled = Out(d, [.. shape, 2], dtype);
                b.Fill(filled, 3);
                using var view = filled.Slice(-1, 1, 2); // every other element: a strided destination
                b.Fill(view, -7);
                return [dense, filled];
            }, 0, 0);
        if (shape.Length >= 2)
            Parity("copy of a transposed view", seed, [x], (b, d, t) =>
            {
                using var view = t[0].Transpose(0, 1);
                var y = Out(d, view.Shape, DType.Int64);
                b.Copy(view, y);
                return [y];
            }, 0, 0);
    }

    [CudaTheory]
    [MemberData(nameof(Shapes))]
    public void EveryUnaryOpOnStridedInput(int[] shape)
    {
        var g = Fresh(out var seed);
        using var x = Tensor.Rand(shape, g, 0.1, 3);
        using var signed = Tensor.Randn(shape, g, 0, 3);
        foreach (var op in Enum.GetValues<UnaryOp>())
            Parity($"unary {op}", seed, [op is UnaryOp.Log or UnaryOp.Sqrt or UnaryOp.PowScalar ? x : signed], (b, d, t) =>
            {
                var src = t[0].Rank >= 2 ? t[0].Transpose(0, t[0].Rank - 1) : t[0];
                var y = Out(d, src.Shape);
                b.Unary(op, src, y, op == UnaryOp.Clamp ? -1 : 1.7, 0.5);
                return [y];
            }, 1e-6, 2e-6);
    }

    [CudaTheory]
    [MemberData(nameof(Shapes))]
    public void BinaryOpsBroadcastAndIntegerAndComparisons(int[] shape)
    {
        var g = Fresh(out var seed);
        using var a = Tensor.Rand(shape, g, 0.5, 2);
        var rowShape = shape.Select((s, i) => i == 0 ? 1 : s).ToArray();
        using var row = Tensor.Rand(rowShape, g, 0.5, 2);
        using var ia = Tensor.RandInt(shape, -50, 50, g);
        using var ib = Tensor.RandInt(shape, 1, 9, g);
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            var comparison = op is >= BinaryOp.Eq and <= BinaryOp.Ge;
            Parity($"binary {op} float", seed, [a, row], (b, d, t) =>
            {
                using var expanded = t[1].Expand(shape);
                var y = Out(d, shape, comparison ? DType.UInt8 : DType.Float32);
                b.Binary(op, t[0], expanded, y);
                return [y];
            }, 1e-6, 2e-6);
            if (op is BinaryOp.ReluBackward or BinaryOp.SigmoidBackward or BinaryOp.TanhBackward or BinaryOp.AddRelu) continue;
            Parity($"binary {op} int64", seed, [ia, ib], (b, d, t) =>
            {
                var y = Out(d, shape, comparison ? DType.UInt8 : DType.Int64);
                b.Binary(op == BinaryOp.Pow ? BinaryOp.Mul : op, t[0], t[1], y);
                return [y];
            }, 0, 0);
        }
    }

    [CudaTheory]
    [MemberData(nameof(Shapes))]
    public void WhereSelectsPerElement(int[] shape)
    {
        var g = Fresh(out var seed);
        using var cond = Tensor.RandInt(shape, 0, 2, g, DType.UInt8);
        using var a = Tensor.Randn(shape, g);
        using var bb = Tensor.RandInt(shape, -5, 5, g).To(DType.Float32);
        Parity("where", seed, [cond, a, bb], (b, d, t) =>
        {
            var y = Out(d, shape);
            b.Where(t[0], t[1], t[2], y);
            return [y];
        }, 0, 0);
    }

    [CudaTheory]
    [InlineData(1, 1, 1)]
    [InlineData(5, 1000, 1)]
    [InlineData(3, 17, 33)]
    [InlineData(0, 4, 1)]
    [InlineData(2, 0, 1)]
    public void ReductionsWithFirstIndexAndNaN(int outer, int n, int inner)
    {
        var g = Fresh(out var seed);
        using var x = Tensor.RandInt([outer, n, inner], -4, 4, g).To(DType.Float32); // ties on purpose
        Parity("sum", seed, [x], (b, d, t) =>
        {
            var v = Out(d, [outer, inner]);
            b.Reduce(ReduceOp.Sum, t[0], outer, n, inner, v, null);
            return [v];
        }, 1e-4, 1e-5);
        if (n == 0) return;
        var data = x.ToArray<float>();
        if (data.Length > 3) data[data.Length / 2] = float.NaN;
        using var withNaN = Tensor.From<float>(data, [outer, n, inner]);
        foreach (var op in new[] { ReduceOp.Max, ReduceOp.Min })
            foreach (var input in new[] { x, withNaN })
                Parity($"{op}", seed, [input], (b, d, t) =>
                {
                    var v = Out(d, [outer, inner]);
                    var i = Out(d, [outer, inner], DType.Int64);
                    b.Reduce(op, t[0], outer, n, inner, v, i);
                    return [v, i];
                }, 0, 0);
    }

    [CudaTheory]
    [InlineData(4, 10, 1)]
    [InlineData(3, 1203, 1)]
    [InlineData(2, 5, 7)]
    [InlineData(0, 3, 1)]
    public void SoftmaxForwardAndBackward(int outer, int n, int inner)
    {
        var g = Fresh(out var seed);
        using var x = Tensor.Randn([outer, n, inner], g, 0, 4);
        using var gy = Tensor.Randn([outer, n, inner], g);
        foreach (var log in new[] { false, true })
            Parity($"softmax log={log}", seed, [x, gy], (b, d, t) =>
            {
                var y = Out(d, [outer, n, inner]);
                b.Softmax(t[0], outer, n, inner, log, y);
                var gx = Out(d, [outer, n, inner]);
                b.SoftmaxBackward(y, t[1], outer, n, inner, log, gx);
                return [y, gx];
            }, 1e-5, 1e-4);
    }

    [CudaTheory]
    [InlineData(9, 5, false, 0.0)]
    [InlineData(33, 1204, true, 0.1)]
    [InlineData(0, 3, false, 0.0)]
    public void CrossEntropyForwardAndBackward(int rows, int classes, bool weighted, double smoothing)
    {
        var g = Fresh(out var seed);
        using var logits = Tensor.Randn([rows, classes], g, 0, 3);
        var targets = Enumerable.Range(0, rows).Select(_ => g.NextInt64(classes + 1) == classes ? -100L : g.NextInt64(classes)).ToArray();
        using var target = Tensor.From<long>(targets, [rows]);
        using var weight = Tensor.Rand([classes], g, 0.2, 2);
        using var gradRow = Tensor.Randn([rows], g);
        Parity("cross_entropy", seed, [logits, target, weight, gradRow], (b, d, t) =>
        {
            var w = weighted ? t[2] : null;
            var (loss, rw, lse) = (Out(d, [rows]), Out(d, [rows]), Out(d, [rows]));
            b.CrossEntropyForward(t[0], t[1], w, -100, smoothing, loss, rw, lse);
            var gx = Out(d, [rows, classes]);
            b.CrossEntropyBackward(t[0], t[1], w, lse, t[3], -100, smoothing, gx);
            return [loss, rw, lse, gx];
        }, 1e-5, 1e-4);
    }

    [CudaFact]
    public void BadTargetOrIndexIsReportedAtTheNextSynchronization()
    {
        using var logits = Tensor.Zeros([3, 4], DType.Float32, Cuda);
        using var target = Tensor.From<long>([1, 7, 2], [3], Cuda);
        var (loss, rw, lse) = (Out(Cuda, [3]), Out(Cuda, [3]), Out(Cuda, [3]));
        Gpu.CrossEntropyForward(logits, target, null, -100, 0, loss, rw, lse);
        var e = Assert.Throws<ArgumentException>(() => loss.ToArray<float>());
        Assert.Contains("target value 7 at row 1 is out of range for 4 classes", e.Message);
        using var x = Tensor.Zeros([5, 2], DType.Float32, Cuda);
        using var index = Tensor.From<long>([0, 5], [2], Cuda);
        var y = Out(Cuda, [2, 2]);
        Gpu.IndexSelect(x, 0, index, y);
        var ie = Assert.Throws<ArgumentOutOfRangeException>(() => y.ToArray<float>());
        Assert.Contains("index_select: index 5 (element 1 of the index tensor) is out of range for dim 0 of size 5", ie.Message);
        y.ToArray<float>(); // the record was cleared
        loss.Dispose(); rw.Dispose(); lse.Dispose(); y.Dispose();
    }

    [CudaTheory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void IndexSelectAddGatherScatter(int dim)
    {
        var g = Fresh(out var seed);
        int[] shape = [5, 6, 7];
        using var x = Tensor.Randn(shape, g);
        var k = 9;
        using var index = Tensor.RandInt([k], 0, shape[dim], g);
        var gatherShape = shape.Select((s, i) => i == dim ? 4 : s - 1).ToArray();
        using var gidx = Tensor.RandInt(gatherShape, 0, shape[dim], g);
        var srcShape = shape.Select((s, i) => i == dim ? k : s).ToArray();
        using var src = Tensor.Randn(srcShape, g);
        using var isrc = Tensor.RandInt(srcShape, -9, 9, g);
        Parity($"indexing dim {dim}", seed, [x, index, gidx, src, isrc], (b, d, t) =>
        {
            var sel = Out(d, srcShape);
            using (var view = t[0].Transpose(0, 2).Contiguous().Transpose(0, 2)) b.IndexSelect(view, dim, t[1], sel);
            var added = Tensor.Zeros(shape, DType.Float32, d);
            b.IndexAdd(added, dim, t[1], t[3]);
            var iadded = Tensor.Zeros(shape, DType.Int64, d);
            b.IndexAdd(iadded, dim, t[1], t[4]);
            var gathered = Out(d, gatherShape);
            b.Gather(t[0], dim, t[2], gathered);
            var scattered = Tensor.Zeros(shape, DType.Float32, d);
            b.ScatterAdd(scattered, dim, t[2], t[0]);
            return [sel, added, iadded, gathered, scattered];
        }, 1e-5, 1e-5);
    }

    [CudaTheory]
    [InlineData(new[] { 0 })]
    [InlineData(new[] { 1 })]
    [InlineData(new[] { 9, 17 })]
    [InlineData(new[] { 3, 1000, 7 })]
    public void NonzeroCoordinatesInRowMajorOrder(int[] shape)
    {
        var g = Fresh(out var seed);
        using var x = Tensor.RandInt(shape, 0, 3, g, DType.Int32); // about a third zeros
        Parity("nonzero", seed, [x], (b, d, t) =>
        {
            var count = b.CountNonzero(t[0]);
            var coords = Out(d, [(int)count, shape.Length], DType.Int64);
            b.Nonzero(t[0], coords);
            return [coords];
        }, 0, 0);
    }

    [CudaTheory]
    [InlineData(1, 1, 1)]
    [InlineData(4, 37, 3)]
    [InlineData(2, 2048, 1)]
    [InlineData(1, 5000, 2)]
    [InlineData(1, 2049, 1)]
    [InlineData(2, 20000, 3)]
    [InlineData(1, 150001, 1)]
    [InlineData(3, 0, 2)]
    public void SortAndTopKAreStableWithTiesAndNaN(int outer, int n, int inner)
    {
        var g = Fresh(out var seed);
        using var ints = Tensor.RandInt([outer, n, inner], -20, 20, g);
        var floats = ints.To(DType.Float32).ToArray<float>();
        for (var i = 0; i < floats.Length; i += 11) floats[i] = i % 3 == 0 ? float.NaN : -0.0f;
        using var x = Tensor.From<float>(floats, [outer, n, inner]);
        foreach (var input in new[] { x, ints })
            foreach (var descending in new[] { false, true })
                Parity($"sort {input.DType} descending={descending}", seed, [input], (b, d, t) =>
                {
                    var (v, i) = (Out(d, [outer, n, inner], input.DType), Out(d, [outer, n, inner], DType.Int64));
                    b.Sort(t[0], 1, descending, v, i);
                    var k = Math.Min(n, 5);
                    var (tv, ti) = (Out(d, [outer, k, inner], input.DType), Out(d, [outer, k, inner], DType.Int64));
                    using (var view = t[0].Transpose(1, 2).Contiguous().Transpose(1, 2)) b.TopK(view, 1, k, descending, tv, ti);
                    return [v, i, tv, ti];
                }, 0, 0);
    }

    [CudaTheory]
    [InlineData(3, 2, 1, 11, 13)]
    [InlineData(2, 2, 0, 8, 8)]
    [InlineData(1, 1, 0, 5, 4)]
    public void MaxPoolAndUpsampleForwardAndBackward(int kernel, int stride, int pad, int h, int w)
    {
        var g = Fresh(out var seed);
        using var x = Tensor.RandInt([2, 3, h, w], -5, 5, g).To(DType.Float32);
        var window = new Pool2dWindow(kernel, kernel, stride, stride, pad, pad);
        var (oh, ow) = (window.OutputH(h), window.OutputW(w));
        using var gy = Tensor.Randn([2, 3, oh, ow], g);
        using var gu = Tensor.Randn([2, 3, 2 * h + 1, 3 * w], g);
        Parity("max_pool2d", seed, [x, gy, gu], (b, d, t) =>
        {
            var (y, idx) = (Out(d, [2, 3, oh, ow]), Out(d, [2, 3, oh, ow], DType.Int64));
            b.MaxPool2d(t[0], window, y, idx);
            var gx = Out(d, [2, 3, h, w]);
            b.MaxPool2dBackward(t[1], idx, gx);
            var up = Out(d, [2, 3, 2 * h + 1, 3 * w]);
            b.UpsampleNearest2d(t[0], up);
            var gux = Out(d, [2, 3, h, w]);
            b.UpsampleNearest2dBackward(t[2], gux);
            return [y, idx, gx, up, gux];
        }, 1e-6, 1e-6);
    }

    public static TheoryData<MatmulGeometry> Geometries => new()
    {
        MatmulGeometry.Contiguous(1, 7, 5, 3),
        MatmulGeometry.Contiguous(3, 33, 17, 65, transA: true),
        MatmulGeometry.Contiguous(4, 9, 11, 13, transB: true, broadcastB: true),
        MatmulGeometry.Contiguous(2, 4, 6, 0),
        MatmulGeometry.Contiguous(0, 4, 6, 2),
        new MatmulGeometry(2, 3, 4, 5, false, false, 7, 6, 9, 30, 40, 40),
    };

    [CudaTheory]
    [MemberData(nameof(Geometries))]
    public void MatmulThroughCublas(MatmulGeometry geometry)
    {
        var g = Fresh(out var seed);
        using var a = Tensor.Randn([(int)Math.Max(geometry.ExtentA, 1)], g);
        using var bm = Tensor.Randn([(int)Math.Max(geometry.ExtentB, 1)], g);
        Parity($"matmul {geometry}", seed, [a, bm], (b, d, t) =>
        {
            var c = Tensor.Full([(int)Math.Max(geometry.ExtentC, 1)], 5, DType.Float32, d); // gaps between rows keep 5
            b.Matmul(geometry, t[0], t[1], c);
            return [c];
        }, 1e-4, 1e-4);
    }

    public static TheoryData<Conv2dGeometry> Convolutions => new()
    {
        Conv2dGeometry.Square(2, 3, 9, 11, 5, 3, stride: 1, pad: 1),
        Conv2dGeometry.Square(1, 8, 13, 13, 4, 3, stride: 2, pad: 2, dilation: 2, groups: 4),
        Conv2dGeometry.Square(3, 6, 7, 5, 6, 1),
        Conv2dGeometry.Square(0, 2, 5, 5, 3, 3, pad: 1),
    };

    [CudaTheory]
    [MemberData(nameof(Convolutions))]
    public void ConvolutionThroughCudnn(Conv2dGeometry geometry)
    {
        var g = Fresh(out var seed);
        using var x = Tensor.Randn([geometry.N, geometry.CIn, geometry.H, geometry.W], g);
        using var w = Tensor.Randn([geometry.COut, geometry.CInPerGroup, geometry.KernelH, geometry.KernelW], g, 0, 0.3);
        using var bias = Tensor.Randn([geometry.COut], g);
        using var dy = Tensor.Randn([geometry.N, geometry.COut, geometry.OutH, geometry.OutW], g);
        Parity($"conv2d {geometry}", seed, [x, w, bias, dy], (b, d, t) =>
        {
            var y = Out(d, dy.Shape);
            b.Conv2dForward(geometry, t[0], t[1], t[2], y, cacheWeight: true);
            var dx = Out(d, x.Shape);
            b.Conv2dBackwardData(geometry, t[3], t[1], dx, cacheWeight: true);
            var (dw, db) = (Out(d, w.Shape), Out(d, [geometry.COut]));
            b.Conv2dBackwardWeights(geometry, t[0], t[3], dw, db);
            return [y, dx, dw, db];
        }, 1e-4, 1e-4);
    }

    /// <summary>The backend convolves through the graph API by default (ConvolutionThroughCudnn above); the legacy engine,
    /// still chosen with ConvolutionApi = Legacy and the graph engine's fallback for bias and plan-less passes, is held to
    /// the same shapes and tolerances here, on its own.</summary>
    [CudaTheory]
    [MemberData(nameof(Convolutions))]
    public void ConvolutionThroughCudnnLegacyApi(Conv2dGeometry geometry)
    {
        var backend = (CudaBackend)Gpu;
        using var engine = new CudnnConvolution(backend.CudaDevice, backend.Stream, backend.Memory, allowTf32: false);
        EngineParity(engine, geometry, $"legacy conv2d {geometry}", 1e-4, 1e-4);
        if (geometry.N > 0) Assert.Contains("legacy API", engine.Describe());
    }

    [CudaFact]
    public void AllocatorReportsAllocatedReservedAndPeak()
    {
        // a backend of its own, so its pool counts only this test's block: tests of other classes run beside this one
        // and allocate through the shared backend's pool
        using var backend = new CudaBackend(((CudaBackend)Gpu).CudaDevice);
        backend.Synchronize();
        var before = backend.Memory.Stats;
        backend.Memory.ResetPeak();
        var block = backend.Memory.Allocate(4L << 20);
        var during = backend.Memory.Stats;
        Assert.Equal(before.Allocated + (4L << 20), during.Allocated);
        Assert.True(during.Reserved >= during.Allocated, during.ToString());
        Assert.True(during.Peak >= during.Allocated, during.ToString());
        backend.Memory.Free(block, 4L << 20);
        backend.Synchronize();
        var after = backend.Memory.Stats;
        Assert.Equal(before.Allocated, after.Allocated);
        Assert.Equal(during.Peak, after.Peak);
        // the pool keeps the freed block cached: reserved does not drop below what was in use
        Assert.True(after.Reserved >= during.Allocated || !backend.Memory.StreamOrdered, after.ToString());
    }

    [CudaFact]
    public void EventsTimeWorkOnTheStream()
    {
        var backend = (CudaBackend)Gpu;
        using var start = new CudaEvent(backend.CudaDevice, timing: true);
        using var end = new CudaEvent(backend.CudaDevice, timing: true);
        using var x = Tensor.Zeros([1 << 22], DType.Float32, Cuda);
        start.Record(backend.Stream);
        backend.Fill(x, 2);
        end.Record(backend.Stream);
        end.Synchronize();
        Assert.True(end.IsComplete);
        Assert.InRange(CudaEvent.ElapsedMilliseconds(start, end), 0f, 10_000f);
    }
}
