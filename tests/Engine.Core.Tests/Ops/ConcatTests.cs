using Engine.Reference;

namespace Engine.Tests.Ops;

public class ConcatTests
{
    // Cat, stack and split only move values: on float32-representable inputs the engine must reproduce the
    // reference exactly.
    private const double Exact = 0;

    private static RefTensor Rand(Generator g, int[] shape) => RefTensor.Random(g, shape).Map(v => (double)(float)v);

    /// <summary>count random tensors sharing a shape except at dim, where sizes are in [0, 4] (0: empty).</summary>
    private static RefTensor[] CatInputs(Generator g, int[] baseShape, int dim, int count)
    {
        var inputs = new RefTensor[count];
        for (var i = 0; i < count; i++)
        {
            var s = (int[])baseShape.Clone();
            s[dim] = (int)g.NextInt64(5);
            inputs[i] = Rand(g, s);
        }
        return inputs;
    }

    [Fact]
    public void CatMatchesReferenceOnRandomShapesWithEmptyAndStridedInputs()
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 30; trial++)
        {
            var rank = 1 + (int)g.NextInt64(4);
            var shape = TestUtil.RandomShape(g, rank, 5);
            var dim = (int)g.NextInt64(rank);
            var inputs = CatInputs(g, shape, dim, 1 + (int)g.NextInt64(4));
            var tensors = inputs.Select((r, i) => i % 2 == 0 ? TestUtil.NonContiguous(r) : r.ToTensor()).ToArray();
            var negative = g.NextInt64(2) == 0;
            using var y = Tensor.Cat(tensors, negative ? dim - rank : dim);
            TestUtil.AssertClose(ConcatReference.Cat(inputs, dim), y, $"cat dim {dim} of {string.Join(" ", inputs.Select(r => ShapeUtil.Format(r.Shape)))}", seed, Exact, Exact);
            foreach (var t in tensors) t.Dispose();
        }
    }

    [Fact]
    public void CatOfIntegerAndAllEmptyTensors()
    {
        using var a = Tensor.From([1L, 2L, 3L], 3, 1);
        using var b = Tensor.From([4L, 5L, 6L], 3, 1);
        using var y = Tensor.Cat([a, b], 1);
        Assert.Equal(DType.Int64, y.DType);
        Assert.Equal([1L, 4L, 2L, 5L, 3L, 6L], y.ToInt64Array());
        using var e0 = Tensor.Zeros([0, 4]);
        using var e1 = Tensor.Zeros([0, 4]);
        using var e = Tensor.Cat([e0, e1], 0);
        Assert.Equal([0, 4], e.ShapeArray());
    }

    [Fact]
    public void CatReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        var shapes = new[] { new[] { 2, 3, 4 }, [2, 1, 4], [2, 0, 4], [2, 2, 4] };
        var result = Gradcheck.Check(
            inp => ConcatReference.Cat(inp.Select((d, i) => new RefTensor(shapes[i], d)).ToArray(), 1).Data,
            (inp, u) => ConcatReference.CatBackward(new RefTensor([2, 6, 4], u), shapes, 1).Select(r => r.Data).ToArray(),
            shapes.Select(s => RefTensor.Random(g, s).Data).ToArray(), g);
        Assert.True(result.Passed, $"cat: {result} (seed {seed})");
    }

    [Fact]
    public void CatBackwardMatchesReferenceBackward()
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 10; trial++)
        {
            var rank = 1 + (int)g.NextInt64(3);
            var shape = TestUtil.RandomShape(g, rank, 5);
            var dim = (int)g.NextInt64(rank);
            var inputs = CatInputs(g, shape, dim, 2 + (int)g.NextInt64(3));
            // the first input takes no gradient: the others must still get theirs
            var tensors = inputs.Select((r, i) => i == 0 ? r.ToTensor() : TestUtil.NonContiguous(r).RequireGrad()).ToArray();
            using var y = Tensor.Cat(tensors, dim);
            var u = Rand(g, y.ShapeArray());
            using var gy = u.ToTensor();
            y.Backward(gy);
            var expected = ConcatReference.CatBackward(u, inputs.Select(r => r.Shape).ToArray(), dim);
            Assert.Null(tensors[0].Grad);
            for (var i = 1; i < tensors.Length; i++)
                TestUtil.AssertClose(expected[i], tensors[i].Grad!, $"cat d/dx{i} dim {dim}", seed, Exact, Exact);
            foreach (var t in tensors) t.Dispose();
        }
    }

    [Fact]
    public void StackMatchesReferenceForwardAndBackward()
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 10; trial++)
        {
            var rank = (int)g.NextInt64(4);
            var shape = TestUtil.RandomShape(g, rank, 5);
            var count = 1 + (int)g.NextInt64(4);
            var dim = (int)g.NextInt64(rank + 1);
            var inputs = Enumerable.Range(0, count).Select(_ => Rand(g, shape)).ToArray();
            var tensors = inputs.Select(r => TestUtil.NonContiguous(r).RequireGrad()).ToArray();
            using var y = Tensor.Stack(tensors, dim);
            TestUtil.AssertClose(ConcatReference.Stack(inputs, dim), y, $"stack dim {dim} of {count}×{ShapeUtil.Format(shape)}", seed, Exact, Exact);
            var u = Rand(g, y.ShapeArray());
            using var gy = u.ToTensor();
            y.Backward(gy);
            var expected = ConcatReference.StackBackward(u, count, dim);
            for (var i = 0; i < count; i++) TestUtil.AssertClose(expected[i], tensors[i].Grad!, $"stack d/dx{i}", seed, Exact, Exact);
            foreach (var t in tensors) t.Dispose();
        }
    }

    [Fact]
    public void StackReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [3, 2];
        var result = Gradcheck.Check(
            inp => ConcatReference.Stack(inp.Select(d => new RefTensor(shape, d)).ToArray(), 1).Data,
            (inp, u) => ConcatReference.StackBackward(new RefTensor([3, 3, 2], u), 3, 1).Select(r => r.Data).ToArray(),
            [RefTensor.Random(g, shape).Data, RefTensor.Random(g, shape).Data, RefTensor.Random(g, shape).Data], g);
        Assert.True(result.Passed, $"stack: {result} (seed {seed})");
    }

    /// <summary>PyTorch's piece sizes: split by size gives ⌈n/size⌉ pieces, chunk splits by ⌈n/chunks⌉.</summary>
    private static int[] SizesOf(int n, int size) =>
        Enumerable.Range(0, (n + size - 1) / size).Select(p => Math.Min(size, n - p * size)).ToArray();

    [Fact]
    public void SplitAndChunkGivePiecesOfTheReference()
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 20; trial++)
        {
            var rank = 1 + (int)g.NextInt64(3);
            var shape = TestUtil.RandomShape(g, rank, 9);
            var dim = (int)g.NextInt64(rank);
            var n = shape[dim];
            var r = Rand(g, shape);
            using var x = TestUtil.NonContiguous(r);

            var size = 1 + (int)g.NextInt64(n + 1);
            CheckPieces(x.Split(size, dim), ConcatReference.Split(r, SizesOf(n, size), dim), $"split({size}) dim {dim} of {ShapeUtil.Format(shape)}");

            var chunks = 1 + (int)g.NextInt64(n + 2);
            var chunkPieces = x.Chunk(chunks, dim);
            Assert.True(chunkPieces.Length <= chunks, $"chunk({chunks}) gave {chunkPieces.Length} pieces (seed {seed})");
            CheckPieces(chunkPieces, ConcatReference.Split(r, SizesOf(n, (n + chunks - 1) / chunks), dim), $"chunk({chunks}) dim {dim}");

            var sizes = new int[1 + (int)g.NextInt64(4)];
            for (var left = n; left > 0; left--) sizes[g.NextInt64(sizes.Length)]++;
            CheckPieces(x.Split(sizes, dim), ConcatReference.Split(r, sizes, dim), $"split([{string.Join(", ", sizes)}]) dim {dim}");
        }

        void CheckPieces(Tensor[] pieces, RefTensor[] expected, string what)
        {
            Assert.True(pieces.Length == expected.Length, $"{what}: {pieces.Length} pieces, expected {expected.Length} (seed {seed})");
            for (var i = 0; i < pieces.Length; i++)
            {
                TestUtil.AssertClose(expected[i], pieces[i], $"{what} piece {i}", seed, Exact, Exact);
                pieces[i].Dispose();
            }
        }
    }

    [Fact]
    public void SplitOfEmptyDimAndChunkOfEmptyDim()
    {
        using var x = Tensor.Zeros([0, 3]);
        var pieces = x.Split(2, 0);
        Assert.Single(pieces);
        Assert.Equal([0, 3], pieces[0].ShapeArray());
        var chunks = x.Chunk(3, 0);
        Assert.Equal(3, chunks.Length);
        Assert.All(chunks, c => Assert.Equal([0, 3], c.ShapeArray()));
    }

    [Fact]
    public void SplitReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [3, 7];
        int[] sizes = [2, 0, 4, 1];
        var result = Gradcheck.Check(
            inp => ConcatReference.Split(new RefTensor(shape, inp[0]), sizes, 1).SelectMany(p => p.Data).ToArray(),
            (inp, u) =>
            {
                var grads = new RefTensor?[sizes.Length];
                var at = 0;
                for (var i = 0; i < sizes.Length; i++)
                {
                    grads[i] = new RefTensor([3, sizes[i]], u.Skip(at).Take(3 * sizes[i]).ToArray());
                    at += 3 * sizes[i];
                }
                return [ConcatReference.SplitBackward(grads, sizes, shape, 1).Data];
            },
            [RefTensor.Random(g, shape).Data], g);
        Assert.True(result.Passed, $"split: {result} (seed {seed})");
    }

    [Fact]
    public void SplitBackwardPadsPiecesAndMissingPiecesContributeZeros()
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 10; trial++)
        {
            var shape = TestUtil.RandomShape(g, 3, 6);
            var dim = (int)g.NextInt64(3);
            var r = Rand(g, shape);
            using var x = TestUtil.NonContiguous(r).RequireGrad();
            var size = 1 + (int)g.NextInt64(shape[dim]);
            var pieces = x.Split(size, dim);
            var sizes = SizesOf(shape[dim], size);
            // a random subset of the pieces feeds the loss Σ piece·u; the others receive no gradient
            var grads = new RefTensor?[pieces.Length];
            Tensor? loss = null;
            for (var i = 0; i < pieces.Length; i++)
            {
                if (g.NextInt64(3) == 0 && i > 0) continue;
                grads[i] = Rand(g, pieces[i].ShapeArray());
                using var u = grads[i]!.ToTensor();
                using var prod = pieces[i].Mul(u);
                var term = prod.Sum();
                if (loss is null) loss = term;
                else
                {
                    var sum = loss.Add(term);
                    loss.Dispose();
                    term.Dispose();
                    loss = sum;
                }
            }
            loss!.Backward();
            TestUtil.AssertClose(ConcatReference.SplitBackward(grads, sizes, shape, dim), x.Grad!, $"split({size}) dim {dim} backward", seed);
            loss.Dispose();
            foreach (var p in pieces) p.Dispose();
        }
    }

    [Fact]
    public void CatErrorsNameTheOpAndShapes()
    {
        using var a = Tensor.Zeros([2, 3]);
        using var b = Tensor.Zeros([2, 4]);
        using var c = Tensor.Zeros([2, 3], DType.Int64);
        var e = Assert.Throws<ArgumentException>(() => Tensor.Cat([a, b], 0));
        Assert.Contains("cat", e.Message);
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[2, 4]", e.Message);
        var e2 = Assert.Throws<ArgumentException>(() => Tensor.Cat([a, c], 0));
        Assert.Contains("int64", e2.Message);
        Assert.Throws<ArgumentException>(() => Tensor.Cat([], 0));
        var e3 = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Cat([a, a], 2));
        Assert.Contains("cat", e3.Message);
        var e4 = Assert.Throws<ArgumentException>(() => Tensor.Stack([a, b], 0));
        Assert.Contains("stack", e4.Message);
        Assert.Contains("[2, 4]", e4.Message);
        var e5 = Assert.Throws<ArgumentException>(() => a.Split([1, 1], 1));
        Assert.Contains("split", e5.Message);
        Assert.Contains("size 3", e5.Message);
    }
}
