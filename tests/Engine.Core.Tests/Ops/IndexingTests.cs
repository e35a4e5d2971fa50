using Engine.Reference;

namespace Engine.Tests.Ops;

public class IndexingTests
{
    // Selections copy values: exact on float32-representable inputs. Scatter-adds sum in float32 in index
    // order while the reference sums in double: a handful of terms of magnitude ≤ 1 stays within 1e-6.
    private const double Exact = 0;
    private const double SumAtol = 1e-6;
    private const double SumRtol = 1e-6;

    private static RefTensor Rand(Generator g, int[] shape) => RefTensor.Random(g, shape).Map(v => (double)(float)v);

    /// <summary>Whole numbers uniform in [0, n) (n ≥ 1), as a reference tensor.</summary>
    private static RefTensor RandIndex(Generator g, int[] shape, int n) =>
        new(shape, Enumerable.Range(0, (int)ShapeUtil.Numel(shape)).Select(_ => (double)g.NextInt64(n)).ToArray());

    /// <summary>The tensor of r with dtype, stored transposed (rank ≥ 2) or every other element (rank 1).</summary>
    private static Tensor Strided(RefTensor r, DType dtype)
    {
        var n = r.Shape.Length;
        if (n == 1)
        {
            var doubled = new RefTensor([2 * r.Shape[0]], r.Data.SelectMany(v => new[] { v, -1.0 }).ToArray());
            using var full = doubled.ToTensor(dtype);
            return full.Slice(0, 0, 2 * r.Shape[0], 2);
        }
        if (n == 0) return r.ToTensor(dtype);
        var perm = Enumerable.Range(0, n).ToArray();
        (perm[0], perm[n - 1]) = (perm[n - 1], perm[0]);
        using var stored = r.Permute(perm).ToTensor(dtype);
        return stored.Permute(perm);
    }

    private static Tensor Make(RefTensor r, DType dtype, bool strided) => strided ? Strided(r, dtype) : r.ToTensor(dtype);

    public static TheoryData<DType> ValueTypes => new(DType.Float32, DType.Int64, DType.Int32, DType.UInt8);

    /// <summary>Values exactly representable in every dtype under test.</summary>
    private static RefTensor Values(Generator g, int[] shape, DType dtype) =>
        dtype == DType.Float32 ? Rand(g, shape) : new RefTensor(shape, Enumerable.Range(0, (int)ShapeUtil.Numel(shape)).Select(_ => (double)g.NextInt64(200)).ToArray());

    // ---- index_select ----

    [Theory]
    [MemberData(nameof(ValueTypes))]
    public void IndexSelectMatchesReference(DType dtype)
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 25; trial++)
        {
            var rank = 1 + (int)g.NextInt64(4);
            var shape = TestUtil.RandomShape(g, rank, 6);
            var dim = (int)g.NextInt64(rank);
            if (trial % 7 == 6) shape[(dim + 1) % rank] = 0; // empty input (when another dim is zeroed)
            var r = Values(g, shape, dtype);
            var index = shape[dim] == 0 ? new RefTensor([0], []) : RandIndex(g, [(int)g.NextInt64(9)], shape[dim]);
            using var x = Make(r, dtype, trial % 2 == 1);
            using var i = Make(index, DType.Int64, trial % 3 == 1);
            using var y = x.IndexSelect(dim - (trial % 4 == 0 ? rank : 0), i);
            Assert.Equal(dtype, y.DType);
            TestUtil.AssertClose(IndexingReference.IndexSelect(r, dim, index), y, $"index_select dim {dim} of {ShapeUtil.Format(shape)}", seed, Exact, Exact);
        }
    }

    [Fact]
    public void IndexSelectReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [3, 4, 2];
        var index = new RefTensor([6], [1, 3, 1, 0, 1, 3]); // repeats accumulate
        var result = Gradcheck.Check(
            inp => IndexingReference.IndexSelect(new RefTensor(shape, inp[0]), 1, index).Data,
            (inp, u) => [IndexingReference.IndexSelectBackward(new RefTensor([3, 6, 2], u), shape, 1, index).Data],
            [RefTensor.Random(g, shape).Data], g);
        Assert.True(result.Passed, $"index_select: {result} (seed {seed})");
    }

    [Fact]
    public void IndexSelectBackwardMatchesReferenceBackward()
    {
        var g = TestUtil.Fresh(out var seed);
        // the last case is large enough (inner 9000 × 7) for the index-add to split inner positions across threads
        foreach (var (shape, dim, k) in new (int[], int, int)[] { ([5, 3, 4], 1, 9), ([7], 0, 20), ([2, 9, 3], 0, 5), ([2, 9, 3], 2, 1), ([4, 9000], 0, 7) })
        {
            var r = Rand(g, shape);
            var index = RandIndex(g, [k], shape[dim]);
            using var x = TestUtil.NonContiguous(r).RequireGrad();
            using var i = index.ToTensor(DType.Int64);
            using var y = x.IndexSelect(dim, i);
            var u = Rand(g, y.ShapeArray());
            using var gy = TestUtil.NonContiguous(u);
            y.Backward(gy);
            TestUtil.AssertClose(IndexingReference.IndexSelectBackward(u, shape, dim, index), x.Grad!,
                $"index_select backward dim {dim} of {ShapeUtil.Format(shape)}", seed, SumAtol, SumRtol);
        }
    }

    // ---- gather ----

    [Theory]
    [MemberData(nameof(ValueTypes))]
    public void GatherMatchesReference(DType dtype)
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 25; trial++)
        {
            var rank = 1 + (int)g.NextInt64(3);
            var shape = TestUtil.RandomShape(g, rank, 6);
            var dim = (int)g.NextInt64(rank);
            var ishape = shape.Select((s, d) => d == dim ? (int)g.NextInt64(8) : 1 + (int)g.NextInt64(s)).ToArray();
            var r = Values(g, shape, dtype);
            var index = RandIndex(g, ishape, shape[dim]);
            using var x = Make(r, dtype, trial % 2 == 1);
            using var i = Make(index, DType.Int64, trial % 3 == 1);
            using var y = x.Gather(dim, i);
            TestUtil.AssertClose(IndexingReference.Gather(r, dim, index), y,
                $"gather dim {dim} of {ShapeUtil.Format(shape)} at {ShapeUtil.Format(ishape)}", seed, Exact, Exact);
        }
    }

    [Fact]
    public void GatherReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [3, 4];
        var index = RandIndex(g, [2, 6], 4); // 6 > 4 positions per row: repeats are certain
        var result = Gradcheck.Check(
            inp => IndexingReference.Gather(new RefTensor(shape, inp[0]), 1, index).Data,
            (inp, u) => [IndexingReference.GatherBackward(new RefTensor([2, 6], u), shape, 1, index).Data],
            [RefTensor.Random(g, shape).Data], g);
        Assert.True(result.Passed, $"gather: {result} (seed {seed})");
    }

    [Fact]
    public void GatherBackwardMatchesReferenceBackward()
    {
        var g = TestUtil.Fresh(out var seed);
        // the last case puts 5 × 12000 scatter targets on 3 rows: inner positions are split across threads
        foreach (var (shape, ishape, dim) in new (int[], int[], int)[] { ([4, 5], [3, 7], 1), ([5, 2, 3], [9, 2, 2], 0), ([3, 12000], [5, 12000], 0) })
        {
            var r = Rand(g, shape);
            var index = RandIndex(g, ishape, shape[dim]);
            using var x = TestUtil.NonContiguous(r).RequireGrad();
            using var i = Strided(index, DType.Int64);
            using var y = x.Gather(dim, i);
            var u = Rand(g, ishape);
            using var gy = u.ToTensor();
            y.Backward(gy);
            TestUtil.AssertClose(IndexingReference.GatherBackward(u, shape, dim, index), x.Grad!,
                $"gather backward dim {dim} of {ShapeUtil.Format(shape)}", seed, SumAtol, SumRtol);
        }
    }

    // ---- scatter_add ----

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Int64)]
    [InlineData(DType.Int32)]
    public void ScatterAddMatchesReference(DType dtype)
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 25; trial++)
        {
            var rank = 1 + (int)g.NextInt64(3);
            var shape = TestUtil.RandomShape(g, rank, 6);
            var dim = (int)g.NextInt64(rank);
            var ishape = shape.Select((s, d) => d == dim ? (int)g.NextInt64(8) : 1 + (int)g.NextInt64(s)).ToArray();
            var sshape = ishape.Select(s => s + (int)g.NextInt64(2)).ToArray(); // src may be larger than index
            var rx = Values(g, shape, dtype);
            var rs = Values(g, sshape, dtype);
            var index = RandIndex(g, ishape, shape[dim]);
            using var x = Make(rx, dtype, trial % 2 == 0);
            using var s = Make(rs, dtype, trial % 3 == 0);
            using var i = Make(index, DType.Int64, trial % 2 == 1);
            using var y = x.ScatterAdd(dim, i, s);
            TestUtil.AssertClose(IndexingReference.ScatterAdd(rx, dim, index, rs), y,
                $"scatter_add dim {dim} into {ShapeUtil.Format(shape)} at {ShapeUtil.Format(ishape)}", seed, SumAtol, SumRtol);
            TestUtil.AssertClose(rx, x, "scatter_add leaves its input unchanged", seed, Exact, Exact);
        }
    }

    [Fact]
    public void ScatterAddReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [4, 3];
        int[] sshape = [6, 4];
        var index = RandIndex(g, [5, 3], 4);
        var result = Gradcheck.Check(
            inp => IndexingReference.ScatterAdd(new RefTensor(shape, inp[0]), 0, index, new RefTensor(sshape, inp[1])).Data,
            (inp, u) =>
            {
                var (dx, ds) = IndexingReference.ScatterAddBackward(new RefTensor(shape, u), 0, index, sshape);
                return [dx.Data, ds.Data];
            },
            [RefTensor.Random(g, shape).Data, RefTensor.Random(g, sshape).Data], g);
        Assert.True(result.Passed, $"scatter_add: {result} (seed {seed})");
    }

    [Fact]
    public void ScatterAddBackwardMatchesReferenceBackward()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (shape, ishape, sshape, dim) in new (int[], int[], int[], int)[] { ([4, 3], [5, 3], [6, 4], 0), ([2, 5, 3], [2, 7, 2], [2, 7, 2], 1) })
        {
            var rx = Rand(g, shape);
            var rs = Rand(g, sshape);
            var index = RandIndex(g, ishape, shape[dim]);
            using var x = TestUtil.NonContiguous(rx).RequireGrad();
            using var s = TestUtil.NonContiguous(rs).RequireGrad();
            using var i = index.ToTensor(DType.Int64);
            using var y = x.ScatterAdd(dim, i, s);
            var u = Rand(g, shape);
            using var gy = u.ToTensor();
            y.Backward(gy);
            var (dx, ds) = IndexingReference.ScatterAddBackward(u, dim, index, sshape);
            TestUtil.AssertClose(dx, x.Grad!, $"scatter_add d/dx dim {dim}", seed, Exact, Exact);
            TestUtil.AssertClose(ds, s.Grad!, $"scatter_add d/dsrc dim {dim}", seed, Exact, Exact);
        }
    }

    // ---- nonzero, masks ----

    [Theory]
    [MemberData(nameof(ValueTypes))]
    public void NonzeroMatchesReference(DType dtype)
    {
        var g = TestUtil.Fresh(out var seed);
        // shapes include empty, zero-dimensional and one large enough to be counted and filled in parallel pieces
        int[][] shapes = [[0], [1], [], [7], [3, 0, 2], [5, 6], [2, 3, 4, 5], [3, 22_001]];
        foreach (var shape in shapes)
        {
            var mostlyZero = Values(g, shape, dtype).Map(v => g.NextInt64(3) == 0 ? v : 0);
            if (dtype == DType.Float32 && mostlyZero.Numel > 2) mostlyZero.Data[1] = double.NaN; // NaN is nonzero
            using var x = Make(mostlyZero, dtype, shape.Length >= 2);
            using var nz = x.Nonzero();
            Assert.Equal(DType.Int64, nz.DType);
            TestUtil.AssertClose(IndexingReference.Nonzero(mostlyZero), nz, $"nonzero {dtype.Name()}{ShapeUtil.Format(shape)}", seed, Exact, Exact);
        }
    }

    [Fact]
    public void IndexFromMaskSelectsRows()
    {
        var g = TestUtil.Fresh(out var seed);
        var boxes = Rand(g, [11, 4]);
        var keep = new RefTensor([11], Enumerable.Range(0, 11).Select(_ => (double)g.NextInt64(2)).ToArray());
        using var b = boxes.ToTensor();
        using var k = keep.ToTensor(DType.UInt8);
        using var rows = Tensor.IndexFromMask(k);
        var expectedRows = new RefTensor([(int)keep.Data.Sum()], keep.Data.Select((v, i) => (v, i)).Where(p => p.v != 0).Select(p => (double)p.i).ToArray());
        TestUtil.AssertClose(expectedRows, rows, "IndexFromMask", seed, Exact, Exact);
        using var kept = b.IndexSelect(0, rows);
        TestUtil.AssertClose(IndexingReference.IndexSelect(boxes, 0, expectedRows), kept, "rows kept by mask", seed, Exact, Exact);
    }

    [Fact]
    public void MaskedSelectMatchesReferenceForwardAndBackward()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var (shape, mshape) in new[] { (new[] { 4, 5 }, new[] { 4, 5 }), ([3, 1, 4], [2, 1]), ([6], [6]), ([0, 3], [3]) })
        {
            var r = Rand(g, shape);
            var mask = new RefTensor(mshape, Enumerable.Range(0, (int)ShapeUtil.Numel(mshape)).Select(_ => (double)g.NextInt64(2)).ToArray());
            using var x = TestUtil.NonContiguous(r).RequireGrad();
            using var m = mask.ToTensor(DType.UInt8);
            using var y = x.MaskedSelect(m);
            TestUtil.AssertClose(IndexingReference.MaskedSelect(r, mask), y, $"masked_select {ShapeUtil.Format(shape)} by {ShapeUtil.Format(mshape)}", seed, Exact, Exact);
            if (y.Numel == 0) continue;
            var u = Rand(g, y.ShapeArray());
            using var gy = u.ToTensor();
            y.Backward(gy);
            TestUtil.AssertClose(IndexingReference.MaskedSelectBackward(u, shape, mask), x.Grad!, "masked_select backward", seed, SumAtol, SumRtol);
        }
    }

    [Fact]
    public void MaskedSelectReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [3, 1];
        var mask = new RefTensor([3, 4], [1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1]);
        var selected = (int)mask.Data.Sum();
        var result = Gradcheck.Check(
            inp => IndexingReference.MaskedSelect(new RefTensor(shape, inp[0]), mask).Data,
            (inp, u) => [IndexingReference.MaskedSelectBackward(new RefTensor([selected], u), shape, mask).Data],
            [RefTensor.Random(g, shape).Data], g);
        Assert.True(result.Passed, $"masked_select: {result} (seed {seed})");
    }

    // ---- errors ----

    [Fact]
    public void OutOfRangeAndNegativeIndicesNameOpValueDimAndSize()
    {
        using var x = Tensor.Zeros([4, 3]);
        using var bad = Tensor.From([0L, 5L]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => x.IndexSelect(0, bad));
        Assert.Contains("index_select", e.Message);
        Assert.Contains("index 5", e.Message);
        Assert.Contains("dim 0", e.Message);
        Assert.Contains("size 4", e.Message);

        using var negative = Tensor.From([-1L], 1, 1);
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => x.Gather(1, negative));
        Assert.Contains("gather", e2.Message);
        Assert.Contains("index -1", e2.Message);
        Assert.Contains("dim 1", e2.Message);
        Assert.Contains("size 3", e2.Message);
        Assert.Contains("negative", e2.Message);

        using var src = Tensor.Ones([1, 1]);
        using var far = Tensor.From([4L], 1, 1);
        var e3 = Assert.Throws<ArgumentOutOfRangeException>(() => x.ScatterAdd(0, far, src));
        Assert.Contains("scatter_add", e3.Message);
        Assert.Contains("index 4", e3.Message);
    }

    [Fact]
    public void WrongIndexDtypeAndShapesAreClearErrors()
    {
        using var x = Tensor.Zeros([4, 3]);
        using var i32 = Tensor.From([0, 1]);
        var e = Assert.Throws<ArgumentException>(() => x.IndexSelect(0, i32));
        Assert.Contains("index_select", e.Message);
        Assert.Contains("int64", e.Message);
        Assert.Contains("int32", e.Message);

        using var wide = Tensor.Zeros([2, 5], DType.Int64);
        var e2 = Assert.Throws<ArgumentException>(() => x.Gather(0, wide));
        Assert.Contains("gather", e2.Message);
        Assert.Contains("[2, 5]", e2.Message);
        Assert.Contains("[4, 3]", e2.Message);

        using var index = Tensor.Zeros([2, 3], DType.Int64);
        using var intSrc = Tensor.Zeros([2, 3], DType.Int64);
        var e3 = Assert.Throws<ArgumentException>(() => x.ScatterAdd(0, index, intSrc));
        Assert.Contains("scatter_add", e3.Message);
        Assert.Contains("int64", e3.Message);

        using var index2d = Tensor.Zeros([2, 1], DType.Int64);
        var e4 = Assert.Throws<ArgumentException>(() => x.IndexSelect(0, index2d));
        Assert.Contains("1-D", e4.Message);

        using var mask = Tensor.Zeros([4, 3]);
        var e5 = Assert.Throws<ArgumentException>(() => x.MaskedSelect(mask));
        Assert.Contains("masked_select", e5.Message);
        Assert.Contains("uint8", e5.Message);
    }
}
