using Engine.Reference;

namespace Engine.Tests.Ops;

public class SortingTests
{
    // Sorting moves values and reports positions: both must equal the reference exactly.
    private const double Exact = 0;

    /// <summary>float32-representable values drawn from a few levels (many ties), with NaN, ±inf, -0 and +0 mixed in.</summary>
    private static RefTensor Tied(Generator g, int[] shape, int levels)
    {
        var data = new double[ShapeUtil.Numel(shape)];
        for (var i = 0; i < data.Length; i++)
            data[i] = g.NextInt64(20) switch
            {
                0 => double.NaN,
                1 => double.PositiveInfinity,
                2 => double.NegativeInfinity,
                3 => -0.0,
                4 => 0.0,
                _ => (float)((g.NextInt64(levels) - levels / 2) * 0.37),
            };
        return new RefTensor(shape, data);
    }

    private static RefTensor Distinct(Generator g, int[] shape) => RefTensor.Random(g, shape, -10, 10).Map(v => (double)(float)v);

    /// <summary>int64 values in [-range, range) shifted by 2^40 so that every key byte is exercised, exact in double.</summary>
    private static RefTensor Int64Values(Generator g, int[] shape, long range) =>
        new(shape, Enumerable.Range(0, (int)ShapeUtil.Numel(shape)).Select(_ => (double)(g.NextInt64(2 * range) - range + (1L << 40) * (g.NextInt64(3) - 1))).ToArray());

    private static Tensor Input(RefTensor r, DType dtype, bool strided)
    {
        if (!strided || r.Shape.Length < 2) return r.ToTensor(dtype);
        var n = r.Shape.Length;
        var perm = Enumerable.Range(0, n).ToArray();
        (perm[0], perm[n - 1]) = (perm[n - 1], perm[0]);
        using var stored = r.Permute(perm).ToTensor(dtype);
        return stored.Permute(perm);
    }

    private static void CheckSort(RefTensor r, DType dtype, int dim, bool descending, bool strided, ulong seed)
    {
        using var x = Input(r, dtype, strided);
        var (v, i) = x.Sort(dim, descending);
        using (v)
        using (i)
        {
            var (ev, ei) = SortingReference.Sort(r, dim, descending);
            var what = $"sort {dtype.Name()}{ShapeUtil.Format(r.Shape)} dim {dim} {(descending ? "descending" : "ascending")}";
            Assert.Equal(dtype, v.DType);
            Assert.Equal(DType.Int64, i.DType);
            TestUtil.AssertClose(ei, i, what + " indices", seed, Exact, Exact);
            TestUtil.AssertClose(ev, v, what + " values", seed, Exact, Exact);
        }
    }

    [Fact]
    public void SortMatchesReferenceWithTiesNaNInfinitiesAndSignedZeros()
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 24; trial++)
        {
            var rank = 1 + (int)g.NextInt64(3);
            var shape = TestUtil.RandomShape(g, rank, 9);
            var dim = (int)g.NextInt64(rank);
            shape[dim] = trial % 3 == 0 ? 40 + (int)g.NextInt64(60) : shape[dim]; // both insertion and radix lines
            if (trial == 23) shape[0] = 0;
            CheckSort(Tied(g, shape, 1 + (int)g.NextInt64(6)), DType.Float32, dim, trial % 2 == 0, trial % 4 < 2, seed);
        }
    }

    [Fact]
    public void SortMatchesReferenceOnInt64Keys()
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 12; trial++)
        {
            var rank = 1 + (int)g.NextInt64(2);
            var shape = TestUtil.RandomShape(g, rank, 7);
            var dim = (int)g.NextInt64(rank);
            shape[dim] = trial % 2 == 0 ? 30 + (int)g.NextInt64(300) : shape[dim];
            CheckSort(Int64Values(g, shape, trial % 3 == 0 ? 3 : 1L << 33), DType.Int64, dim, trial % 2 == 1, trial % 4 < 2, seed);
        }
    }

    [Fact]
    public void SortOfLongLinesAndOfManyRows()
    {
        var g = TestUtil.Fresh(out var seed);
        // 30 011 scores (the detection case); 300 rows of 131 run in parallel
        CheckSort(Tied(g, [30_011], 1000), DType.Float32, 0, descending: true, strided: false, seed);
        CheckSort(Distinct(g, [300, 131]), DType.Float32, 1, descending: false, strided: true, seed);
    }

    [Fact]
    public void SortIsStableWithManyTiesInBothDirections()
    {
        var g = TestUtil.Fresh(out var seed);
        foreach (var n in new[] { 17, 5_003 })
        {
            var values = Enumerable.Range(0, n).Select(_ => (float)g.NextInt64(3)).ToArray();
            using var x = Tensor.From(values);
            foreach (var descending in new[] { false, true })
            {
                var (v, i) = x.Sort(descending: descending);
                var sv = v.ToFloatArray();
                var si = i.ToInt64Array();
                v.Dispose();
                i.Dispose();
                for (var j = 1; j < n; j++)
                {
                    if (descending ? sv[j - 1] < sv[j] : sv[j - 1] > sv[j]) Assert.Fail($"n={n}: out of order at {j} (seed {seed})");
                    if (sv[j - 1] == sv[j] && si[j - 1] > si[j])
                        Assert.Fail($"n={n} descending={descending}: tie at {j} has positions {si[j - 1]}, {si[j]} (seed {seed})");
                }
                Assert.Equal(Enumerable.Range(0, n).Select(k => (long)k), si.Order());
            }
        }
    }

    [Fact]
    public void ArgSortGivesTheSortPositions()
    {
        var g = TestUtil.Fresh(out var seed);
        var r = Tied(g, [5, 33], 4);
        using var x = r.ToTensor();
        using var a = x.ArgSort(1, descending: true);
        TestUtil.AssertClose(SortingReference.Sort(r, 1, true).Indices, a, "argsort", seed, Exact, Exact);
    }

    private static void CheckTopK(RefTensor r, DType dtype, int k, int dim, bool largest, bool strided, ulong seed)
    {
        using var x = Input(r, dtype, strided);
        var (v, i) = x.TopK(k, dim, largest);
        using (v)
        using (i)
        {
            var (ev, ei) = SortingReference.TopK(r, k, dim, largest);
            var what = $"topk k={k} {dtype.Name()}{ShapeUtil.Format(r.Shape)} dim {dim} {(largest ? "largest" : "smallest")}";
            TestUtil.AssertClose(ei, i, what + " indices", seed, Exact, Exact);
            TestUtil.AssertClose(ev, v, what + " values", seed, Exact, Exact);
        }
    }

    [Fact]
    public void TopKMatchesReferenceWithTies()
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 30; trial++)
        {
            var rank = 1 + (int)g.NextInt64(3);
            var shape = TestUtil.RandomShape(g, rank, 7);
            var dim = (int)g.NextInt64(rank);
            // long lines with small k take the selection path; short ones the full sort
            if (trial % 2 == 0) shape[dim] = 130 + (int)g.NextInt64(400);
            var n = shape[dim];
            var k = trial % 2 == 0 ? (int)g.NextInt64(n / 4 + 1) : (int)g.NextInt64(n + 1);
            CheckTopK(Tied(g, shape, 1 + (int)g.NextInt64(8)), DType.Float32, k, dim, trial % 3 != 0, trial % 4 < 2, seed);
        }
    }

    [Fact]
    public void TopKMatchesReferenceOnInt64KeysAndLongLines()
    {
        var g = TestUtil.Fresh(out var seed);
        for (var trial = 0; trial < 8; trial++)
        {
            var n = 200 + (int)g.NextInt64(2000);
            CheckTopK(Int64Values(g, [2, n], trial % 2 == 0 ? 5 : 1L << 35), DType.Int64, (int)g.NextInt64(n / 4), 1, trial % 3 != 0, trial % 2 == 0, seed);
        }
        // the detection case: 2000 of ~200k scores, with ties at the threshold; and many rows in parallel
        CheckTopK(Tied(g, [200_003], 5000), DType.Float32, 2000, 0, largest: true, strided: false, seed);
        CheckTopK(Distinct(g, [64, 700]), DType.Float32, 9, 1, largest: true, strided: true, seed);
    }

    [Fact]
    public void SelectionReferenceBackwardPassesGradcheck()
    {
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [3, 8];
        var x0 = Distinct(g, shape).Data;
        foreach (var (k, largest) in new[] { (8, false), (3, true), (2, false) })
        {
            var (_, idx) = SortingReference.TopK(new RefTensor(shape, x0), k, 1, largest);
            // distinct values keep the order fixed under the ±1e-6 perturbations
            var result = Gradcheck.Check(
                inp => SortingReference.TopK(new RefTensor(shape, inp[0]), k, 1, largest).Values.Data,
                (inp, u) => [SortingReference.SelectionBackward(new RefTensor([3, k], u), shape, 1, idx).Data],
                [(double[])x0.Clone()], g);
            Assert.True(result.Passed, $"topk k={k}: {result} (seed {seed})");
        }
    }

    [Fact]
    public void SortAndTopKBackwardMatchReferenceBackward()
    {
        var g = TestUtil.Fresh(out var seed);
        int[] shape = [4, 37, 3];
        var r = Distinct(g, shape);
        using var x = Input(r, DType.Float32, strided: true).RequireGrad();
        var (sv, si) = x.Sort(1, descending: true);
        var (tv, ti) = x.TopK(5, 1, largest: false);
        var us = Distinct(g, shape);
        var ut = Distinct(g, [4, 5, 3]);
        using (sv)
        using (si)
        using (tv)
        using (ti)
        using (var gs = us.ToTensor())
        using (var gt = ut.ToTensor())
        using (var a = sv.Mul(gs))
        using (var b = tv.Mul(gt))
        using (var sa = a.Sum())
        using (var sb = b.Sum())
        using (var loss = sa.Add(sb))
        {
            loss.Backward();
            var expected = SortingReference.SelectionBackward(us, shape, 1, SortingReference.Sort(r, 1, true).Indices).Data
                .Zip(SortingReference.SelectionBackward(ut, shape, 1, SortingReference.TopK(r, 5, 1, false).Indices).Data, (p, q) => p + q).ToArray();
            // each input element receives at most two float32-rounded products
            TestUtil.AssertClose(new RefTensor(shape, expected), x.Grad!, "sort + topk backward", seed, 1e-5, 1e-5);
        }
    }

    [Fact]
    public void ErrorsNameTheOpKDimAndSize()
    {
        using var x = Tensor.Zeros([3, 4]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => x.TopK(5, 1));
        Assert.Contains("topk", e.Message);
        Assert.Contains("k = 5", e.Message);
        Assert.Contains("size 4", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => x.TopK(-1));
        using var bytes = Tensor.Zeros([3], DType.UInt8);
        var e2 = Assert.Throws<ArgumentException>(() => bytes.Sort());
        Assert.Contains("sort", e2.Message);
        Assert.Contains("uint8", e2.Message);
        using var scalar = Tensor.Scalar(1f);
        Assert.Throws<ArgumentException>(() => scalar.Sort());
        var e3 = Assert.Throws<ArgumentOutOfRangeException>(() => x.Sort(2));
        Assert.Contains("sort", e3.Message);
    }
}
